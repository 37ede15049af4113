from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventcoder.training.data import DataError, LabelSets, derive_label_sets, read_labeled_file

GOOD = {"text": "Kataib Hezbollah warned it would escalate attacks on US forces.", "event_type": "THREATEN",
        "actors": [{"start": 0, "end": 16, "role": "INITIATOR"}, {"start": 53, "end": 62, "role": "TARGET"}],
        "stance": [{"target": "US forces", "stance": "AGAINST"}]}
LABELS = LabelSets(event_types=["THREATEN", "NONE"], roles=["INITIATOR", "TARGET", "OTHER"],
                   stances=["FAVOR", "AGAINST", "NONE"])


def write(tmp_path: Path, lines: list[str], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_spec_jsonl_with_partial_annotations(tmp_path: Path) -> None:
    only_event = {"text": "Talks resumed.", "event_type": "NONE"}
    only_actors = {"text": "Police fired.", "actors": [{"start": 0, "end": 6, "role": "INITIATOR"}]}
    path = write(tmp_path, [json.dumps(GOOD), json.dumps(only_event), json.dumps(only_actors)])
    records = read_labeled_file(path, LABELS)
    assert records[0].actor_text(records[0].actors[1]) == "US forces"
    assert records[1].actors is None and records[1].stance is None
    assert records[2].event_type is None and records[2].actors[0].role == "INITIATOR"


def test_reads_csv_and_tsv_with_json_columns(tmp_path: Path) -> None:
    import csv

    for name, delimiter in (("d.csv", ","), ("d.tsv", "\t")):
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(["text", "event_type", "actors", "stance"])
            writer.writerow([GOOD["text"], "THREATEN", json.dumps(GOOD["actors"]), json.dumps(GOOD["stance"])])
            writer.writerow(["Nothing happened.", "NONE", "", ""])
        records = read_labeled_file(path, LABELS)
        assert records[0].stance[0].stance == "AGAINST" and records[1].actors is None


@pytest.mark.parametrize("line, field", [
    ('{"text": "x", "event_type": "THREATEN"', "line"),
    ('["not", "an", "object"]', "line"),
    ('{"event_type": "NONE"}', "text"),
    ('{"text": "   ", "event_type": "NONE"}', "text"),
    ('{"text": "Police fired.", "event_type": "BOMBING"}', "event_type"),
    ('{"text": "Police fired.", "actors": [{"start": 0, "end": 60, "role": "INITIATOR"}]}', "actors[0].start"),
    ('{"text": "Police fired.", "actors": [{"start": -1, "end": 3, "role": "INITIATOR"}]}', "actors[0].start"),
    ('{"text": "Police fired.", "actors": [{"start": "0", "end": 3, "role": "INITIATOR"}]}', "actors[0].start"),
    ('{"text": "Police fired.", "actors": [{"start": 0, "end": 6, "role": "SHOOTER"}]}', "actors[0].role"),
    ('{"text": "Police fired.", "actors": [{"start": 0, "end": 6, "role": "INITIATOR"}, {"start": 3, "end": 9, "role": "TARGET"}]}', "actors"),
    ('{"text": "Police fired.", "actors": {"start": 0}}', "actors"),
    ('{"text": "Police fired.", "stance": [{"target": "Police", "stance": "ANGRY"}]}', "stance[0].stance"),
    ('{"text": "Police fired.", "stance": [{"stance": "NONE"}]}', "stance[0].target"),
])
def test_every_problem_names_file_line_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = write(tmp_path, [json.dumps(GOOD), line])
    with pytest.raises(DataError) as info:
        read_labeled_file(path, LABELS)
    assert str(info.value).startswith(f"{path}:2: field '{field}'")


def test_undecodable_bytes_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"text": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'line': is not valid UTF-8"):
        read_labeled_file(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="holds no labeled sentences"):
        read_labeled_file(empty)


def test_byte_order_mark_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\r\n")
    assert read_labeled_file(path, LABELS)[0].event_type == "THREATEN"


def test_labels_come_from_data_when_the_config_leaves_them_open(tmp_path: Path) -> None:
    rows = [{"text": "A hit B.", "event_type": "Battles", "actors": [{"start": 0, "end": 1, "role": "SOURCE"}]},
            {"text": "C and D talked.", "event_type": "Talks", "actors": [{"start": 0, "end": 1, "role": "RECIPROCAL"}]}]
    path = write(tmp_path, [json.dumps(r) for r in rows])
    records = read_labeled_file(path)
    derived = derive_label_sets(records, LabelSets())
    assert derived.event_types == ["Battles", "Talks"]
    assert derived.roles == ["RECIPROCAL", "SOURCE"]


def test_parquet_and_datasets_folders_are_read_like_jsonl(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    only_event = {"text": "Talks resumed.", "event_type": "NONE"}
    rows = [GOOD, only_event]
    expected = read_labeled_file(write(tmp_path, [json.dumps(r) for r in rows]), LABELS)
    dataset = Dataset.from_list(rows)  # the second row's actors and stance become nulls in Arrow
    dataset.to_parquet(str(tmp_path / "data.parquet"))
    dataset.save_to_disk(str(tmp_path / "saved"))
    for source in (tmp_path / "data.parquet", tmp_path / "saved"):
        records = read_labeled_file(source, LABELS)
        assert [(r.text, r.event_type, r.actors, r.stance) for r in records] == \
               [(r.text, r.event_type, r.actors, r.stance) for r in expected], source
    DatasetDict({"train": dataset}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(DataError, match="give one split's folder") as info:
        read_labeled_file(tmp_path / "splits", LABELS)
    assert str(info.value).startswith(str(tmp_path / "splits"))
    bad = Dataset.from_list([GOOD, {"text": "x", "event_type": "PICNIC"}])
    bad.to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(DataError, match=r"bad\.parquet:2: field 'event_type'"):
        read_labeled_file(tmp_path / "bad.parquet", LABELS)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable Parquet"):
        read_labeled_file(tmp_path / "broken.parquet", LABELS)
