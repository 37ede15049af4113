from __future__ import annotations

from pathlib import Path

import pytest

from eventcoder.training.authoring import AuthoringError, Schema, corpus_statistics, main, parse_line, stratified_split

REPO = Path(__file__).resolve().parent.parent
SCHEMA = Schema.load(REPO / "data" / "schema.json")


def test_markup_becomes_offsets_roles_types_countries_and_stance() -> None:
    line = ("THREATEN/violence | [Kataib Hezbollah](INITIATOR, REB, IRQ) warned it would strike "
            "[US forces](TARGET, MIL, USA, AGAINST) again.")
    record = parse_line(line, SCHEMA)
    text = record["text"]
    assert text == "Kataib Hezbollah warned it would strike US forces again."
    assert record["event_type"] == "THREATEN" and record["mode"] == "violence"
    first, second = record["actors"]
    assert text[first["start"]:first["end"]] == "Kataib Hezbollah"
    assert text[second["start"]:second["end"]] == "US forces"
    assert (first["role"], first["type"], first["country"]) == ("INITIATOR", "REB", "IRQ")
    assert (second["role"], second["type"], second["country"]) == ("TARGET", "MIL", "USA")
    assert record["stance"] == [{"target": "Kataib Hezbollah", "stance": "NONE"},
                                {"target": "US forces", "stance": "AGAINST"}]


def test_attributes_in_any_order_and_dash_means_no_country() -> None:
    record = parse_line("SUPPORT | The [African Union](-, IGO, INITIATOR) praised the deal.", SCHEMA)
    assert record["actors"][0]["country"] == "" and record["actors"][0]["role"] == "INITIATOR"
    assert record["mode"] == ""


@pytest.mark.parametrize("line, field", [
    ("ASSAULT without the separator", "line"),
    ("BOMBING | x", "event_type"),
    ("ASSAULT/picnic | x", "mode"),
    ("AGREE/visit | x", "mode"),
    ("ASSAULT | [gunmen](UAF, NGA) fired.", "actors"),
    ("ASSAULT | [gunmen](INITIATOR, NGA) fired.", "actors"),
    ("ASSAULT | [gunmen](INITIATOR, UAF, NGA, HAPPY) fired.", "actors"),
    ("ASSAULT | [gunmen](INITIATOR, TARGET, UAF, NGA) fired.", "actors"),
    ("ASSAULT | gunmen] fired.", "text"),
    ("ASSAULT | [gunmen (INITIATOR, UAF, NGA) fired.", "text"),
    ("NONE |    ", "text"),
])
def test_malformed_lines_name_file_line_and_field(line: str, field: str) -> None:
    with pytest.raises(AuthoringError) as info:
        parse_line(line, SCHEMA, "corpus.txt", 7)
    assert str(info.value).startswith(f"corpus.txt:7: field '{field}'")


def test_split_is_stratified_disjoint_and_repeatable() -> None:
    records = []
    for label in ("ASSAULT", "PROTEST", "NONE"):
        for i in range(40):
            r = parse_line(f"{label} | Sentence {label} number {i} about events.", SCHEMA)
            r["source"] = f"f.txt:{label}{i}"
            records.append(r)
    first = stratified_split(records, seed=13, dev=0.15, test=0.15)
    second = stratified_split(records, seed=13, dev=0.15, test=0.15)
    assert [r["source"] for r in first["test"]] == [r["source"] for r in second["test"]]
    for label in ("ASSAULT", "PROTEST", "NONE"):
        assert sum(r["event_type"] == label for r in first["test"]) == 6
        assert sum(r["event_type"] == label for r in first["dev"]) == 6
    ids = [r["source"] for part in first.values() for r in part]
    assert len(ids) == len(set(ids)) == 120


def test_statistics_count_shared_openings() -> None:
    a = parse_line("NONE | One two three four five six seven.", SCHEMA)
    b = parse_line("NONE | One two three four five six eight.", SCHEMA)
    c = parse_line("NONE | Something else entirely here today.", SCHEMA)
    stats = corpus_statistics([a, b, c], SCHEMA)
    assert stats["sentences_sharing_opening"] == pytest.approx(2 / 3)


def test_build_refuses_a_malformed_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    authoring = tmp_path / "authoring"
    authoring.mkdir()
    (authoring / "a.txt").write_text("NONE | fine sentence.\nASSAULT/picnic | bad mode.\n", encoding="utf-8")
    assert main(["build", "--authoring-dir", str(authoring), "--output-dir", str(tmp_path)]) == 1
    assert "a.txt:2: field 'mode'" in capsys.readouterr().err
    assert not (tmp_path / "train.jsonl").exists()


def test_a_schema_without_event_types_or_actor_types_reads_role_only_markup(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"roles": ["SOURCE", "TARGET", "RECIPROCAL"], "countries": false}', encoding="utf-8")
    schema = Schema.load(path)
    record = parse_line("[Police in Lagos](SOURCE) detained [three journalists](TARGET) on Friday.", schema)
    assert record == {"text": "Police in Lagos detained three journalists on Friday.",
                      "actors": [{"start": 0, "end": 15, "role": "SOURCE"},
                                 {"start": 25, "end": 42, "role": "TARGET"}]}
    with pytest.raises(AuthoringError, match="unknown attribute 'MIL'"):
        parse_line("[Police](SOURCE, MIL) fired.", schema)
    with pytest.raises(AuthoringError, match="lacks its role"):
        parse_line("[Police]() fired.", schema)


def test_a_schema_with_event_types_only_writes_no_actor_or_stance_fields(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"event_types": ["RIOT", "PROTEST"]}', encoding="utf-8")
    schema = Schema.load(path)
    assert parse_line("RIOT | Youths burned cars.", schema) == {"text": "Youths burned cars.", "event_type": "RIOT",
                                                                "mode": ""}
    with pytest.raises(AuthoringError, match="allowed: RIOT, PROTEST"):
        parse_line("BATTLE | Troops fought rebels.", schema)
