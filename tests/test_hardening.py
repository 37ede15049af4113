"""Hardening: every reader under fire, nothing lost, the page under load, safe defaults.

Property tests (hypothesis) throw malformed JSON, wrong types, offsets out of range or overlapping,
unknown labels, byte-order marks, CRLF, empty files, NUL bytes, undecodable bytes, unpaired
surrogates, deep nesting, huge numbers and very long lines at the training-data reader, the scoring
readers and the page's upload reader: each answers with one line naming file, line and field, and
the CLI exits 2 with no traceback unless `--debug` is given.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcoder.serve.cli import build_parser, main
from eventcoder.training.data import DataError, LabelSets, read_labeled_file

REPO = Path(__file__).resolve().parent.parent
LABELS = LabelSets(event_types=["THREATEN", "ASSAULT", "NONE"], roles=["INITIATOR", "TARGET", "OTHER"],
                   stances=["FAVOR", "AGAINST", "NONE"], actor_types=["GOV", "MIL"])
HYPOTHESIS = settings(max_examples=40, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.function_scoped_fixture])
ERROR_LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+): field '(?P<field>[^']+)': (?P<message>.+)$")
ARTICLE = "Gunmen shot dead four farmers near Jos on Monday. Germany condemned Belarus over the forced landing. "
NON_ENGLISH = {
    "arabic": "أطلقت الشرطة النار على المتظاهرين في بغداد. وأدانت الحكومة الهجوم.",
    "chinese": "警方在北京向抗议者开枪。政府谴责了这次袭击。",
    "russian": "Полиция открыла огонь по демонстрантам в Москве. Правительство осудило нападение.",
}


def assert_one_clear_line(message: str, path: Path, line: int | None = None, field: str | None = None) -> None:
    assert "\n" not in message and len(message) < 600, message
    match = ERROR_LINE.match(message)
    assert match, f"not 'file:line: field ...': {message!r}"
    assert match["path"] == str(path), message
    if line is not None:
        assert int(match["line"]) == line, message
    if field is not None:
        assert match["field"] == field, message


# ----------------------------------------------------------------------------- strategies
SAFE_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
# CSV rows and .txt lines: no characters that end a line
LINE_CHARS = st.characters(blacklist_categories=("Cs", "Zl", "Zp", "Cc"))
SAFE_TEXT = st.text(SAFE_CHARS, min_size=1, max_size=40).filter(lambda t: t.strip())
LINE_TEXT = st.text(LINE_CHARS, min_size=1, max_size=40).filter(lambda t: t.strip())
NOT_A_STRING = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
TRUTHY_NOT_A_STRING = st.sampled_from([5, -1, 1.5, True, [1], ["drone"], {"a": 1}])
LONG_TEXT = st.integers(2_000, 12_000).map(lambda n: "Police fired on the crowd. " * n)  # 54 KB to 324 KB


@st.composite
def good_record(draw: Any, text_strategy: Any = SAFE_TEXT) -> dict[str, Any]:
    text = draw(st.one_of(text_strategy, text_strategy, text_strategy, LONG_TEXT))
    record: dict[str, Any] = {"text": text}
    if draw(st.booleans()):
        record["event_type"] = draw(st.sampled_from(LABELS.event_types))
    if draw(st.booleans()):
        cuts = sorted(draw(st.sets(st.integers(0, min(len(text), 200)), max_size=6)))
        record["actors"] = [{"start": a, "end": b, "role": draw(st.sampled_from(LABELS.roles))}
                            for a, b in zip(cuts[::2], cuts[1::2])]
    if draw(st.booleans()):
        record["stance"] = [{"target": draw(text_strategy), "stance": draw(st.sampled_from(LABELS.stances))}]
    return record


def _insert(data: bytes, position: int, extra: bytes) -> bytes:
    position = position % (len(data) + 1)
    return data[:position] + extra + data[position:]


BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80abc", b"\xf0\x28\x8c\x28"]
TRAINING_MUTATIONS = ["truncated", "not_object", "deep", "huge_int", "raw_nul", "bad_bytes", "text_type", "text_blank",
                      "text_nul", "text_surrogate", "event_type_type", "event_type_unknown", "mode_type",
                      "mode_without_event", "actors_type", "actor_not_object", "offset_range", "offset_type", "overlap",
                      "role_unknown", "actor_type_type", "country_type", "stance_type", "stance_item", "stance_target",
                      "stance_unknown"]


DEPTHS = st.sampled_from([3, 999, 2_000, 200_000])
HUGE = st.sampled_from([4_301, 20_000])


@st.composite
def bad_training_line(draw: Any, kinds: list[str] = TRAINING_MUTATIONS) -> tuple[bytes, str]:
    """One bad JSONL line of labeled data and the field its error must name."""
    record = draw(good_record(SAFE_TEXT))
    text = record["text"]
    kind = draw(st.sampled_from(kinds))
    field = "line"
    if kind == "truncated":
        encoded = json.dumps(record)
        return encoded[:draw(st.integers(1, len(encoded) - 1))].encode(), field
    if kind == "not_object":
        value = draw(st.one_of(st.none(), NOT_A_STRING, SAFE_TEXT).filter(lambda v: not isinstance(v, dict)))
        return json.dumps(value).encode(), field
    if kind == "deep":
        return b"[" * draw(DEPTHS), field
    if kind == "huge_int":
        return b'{"text": "Police fired.", "actors": [{"start": 1' + b"0" * draw(HUGE) + b"}]}", field
    if kind == "raw_nul":
        return _insert(json.dumps(record).encode(), draw(st.integers(0)), b"\x00"), field
    if kind == "bad_bytes":
        return _insert(json.dumps(record).encode(), draw(st.integers(0)), draw(st.sampled_from(BAD_BYTES))), field
    if kind == "text_type":
        record["text"], field = draw(NOT_A_STRING), "text"
    elif kind == "text_blank":
        record["text"], field = draw(st.sampled_from(["", " ", "\t\n", "\u3000", "\r\n "])), "text"
    elif kind == "text_nul":
        record["text"], field = text[:1] + "\x00" + text[1:], "text"
        record.pop("actors", None)
    elif kind == "text_surrogate":
        record["text"], field = text + draw(st.sampled_from(["\ud800", "\udfff", "\udcff"])), "text"
    elif kind == "event_type_type":
        record["event_type"], field = draw(NOT_A_STRING), "event_type"
    elif kind == "event_type_unknown":
        record["event_type"] = draw(st.one_of(st.just(""), SAFE_TEXT).filter(lambda v: v not in LABELS.event_types))
        field = "event_type"
    elif kind == "mode_type":
        record["event_type"] = "ASSAULT"
        record["mode"], field = draw(TRUTHY_NOT_A_STRING), "mode"
    elif kind == "mode_without_event":
        record.pop("event_type", None)
        record["mode"], field = "drone", "mode"
    elif kind == "actors_type":
        record["actors"] = draw(st.one_of(st.integers(), SAFE_TEXT, st.just({"start": 0, "end": 1, "role": "OTHER"})))
        field = "actors"
    elif kind == "actor_not_object":
        record["actors"], field = [draw(st.one_of(st.none(), NOT_A_STRING.filter(lambda v: not isinstance(v, dict))))], "actors[0]"
    elif kind == "offset_range":
        start, end = draw(st.tuples(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
                          .filter(lambda se: not 0 <= se[0] < se[1] <= len(text)))
        record["actors"], field = [{"start": start, "end": end, "role": "INITIATOR"}], "actors[0].start"
    elif kind == "offset_type":
        bad = draw(st.one_of(st.none(), st.floats(), st.booleans(), SAFE_TEXT, st.lists(st.integers(), max_size=1)))
        which = draw(st.sampled_from(["start", "end"]))
        actor = {"start": 0, "end": 1, "role": "INITIATOR"}
        actor[which] = bad
        record["actors"], field = [actor], "actors[0].start"
    elif kind == "overlap":
        text = record["text"] = text + "xx"
        a = draw(st.integers(0, len(text) - 2))
        b = draw(st.integers(a + 2, len(text)))
        c = draw(st.integers(a, b - 1))
        d = draw(st.integers(c + 1, len(text)))
        record["actors"], field = [{"start": a, "end": b, "role": "INITIATOR"}, {"start": c, "end": d, "role": "TARGET"}], "actors"
    elif kind == "role_unknown":
        role = draw(st.one_of(st.none(), NOT_A_STRING, SAFE_TEXT.filter(lambda v: v not in LABELS.roles)))
        record["actors"], field = [{"start": 0, "end": 1, "role": role}], "actors[0].role"
    elif kind == "actor_type_type":
        actor_type = draw(st.one_of(TRUTHY_NOT_A_STRING, SAFE_TEXT.filter(lambda v: v not in LABELS.actor_types)))
        record["actors"], field = [{"start": 0, "end": 1, "role": "OTHER", "type": actor_type}], "actors[0].type"
    elif kind == "country_type":
        record["actors"], field = [{"start": 0, "end": 1, "role": "OTHER", "country": draw(NOT_A_STRING)}], "actors[0].country"
    elif kind == "stance_type":
        record["stance"], field = draw(st.one_of(st.integers(), SAFE_TEXT, st.just({"target": "x", "stance": "NONE"}))), "stance"
    elif kind == "stance_item":
        record["stance"], field = [draw(st.one_of(st.none(), SAFE_TEXT, st.integers()))], "stance[0]"
    elif kind == "stance_target":
        target = draw(st.one_of(st.none(), st.just(""), st.just("  "), NOT_A_STRING))
        record["stance"], field = [{"target": target, "stance": "NONE"}], "stance[0].target"
    elif kind == "stance_unknown":
        stance = draw(st.one_of(st.none(), NOT_A_STRING, SAFE_TEXT.filter(lambda v: v not in LABELS.stances)))
        record["stance"], field = [{"target": "x", "stance": stance}], "stance[0].stance"
    ascii_only = kind == "text_surrogate" or draw(st.booleans())  # a raw surrogate would be undecodable bytes
    return json.dumps(record, ensure_ascii=ascii_only).encode(), field


@st.composite
def jsonl_file(draw: Any, good: Any, bad: Any) -> tuple[bytes, list[Any]]:
    """File bytes and, per physical line, ("good", value), ("bad", field) or ("blank", None).
    Byte-order mark, CRLF or LF, and a final newline or none, all drawn."""
    kinds = draw(st.lists(st.sampled_from(["good", "good", "bad", "blank"]), max_size=8))
    lines: list[bytes] = []
    expected: list[Any] = []
    for kind in kinds:
        if kind == "good":
            value = draw(good)
            lines.append(json.dumps(value, ensure_ascii=draw(st.booleans())).encode())
            expected.append(("good", value))
        elif kind == "bad":
            line, field = draw(bad)
            lines.append(line)
            expected.append(("bad", field))
        else:
            lines.append(draw(st.sampled_from([b"", b"   ", b"\t"])))
            expected.append(("blank", None))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(lines) + (newline if draw(st.booleans()) else b"")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, expected


@pytest.fixture()
def stock_csv_limit() -> Any:
    """csv's stock field-size limit (131,072 characters), as in a fresh process: a reader that ran
    earlier lifts it for the whole process, which would hide a reader that forgets to
    (eventcoder.model.files.lift_csv_field_limit)."""
    previous = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(previous)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- training data
@HYPOTHESIS
@given(jsonl_file(good_record(), bad_training_line()))
def test_labeled_jsonl_reader_names_file_line_and_field(generated: tuple[bytes, list[Any]]) -> None:
    data, expected = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "data.jsonl", data)
        first_bad = next(((n, v) for n, (kind, v) in enumerate(expected, start=1) if kind == "bad"), None)
        goods = [v for kind, v in expected if kind == "good"]
        if first_bad is None and goods:
            records = read_labeled_file(path, LABELS)
            assert [r.text for r in records] == [g["text"] for g in goods]
            return
        with pytest.raises(DataError) as info:
            read_labeled_file(path, LABELS)
        if first_bad is None:
            assert_one_clear_line(str(info.value), path, 0, "file")
        else:
            assert_one_clear_line(str(info.value), path, *first_bad)


CSV_MUTATIONS = ["actors_malformed", "actors_deep", "actors_huge_int", "actors_not_list", "offset_range",
                 "event_type_unknown", "text_nul", "text_missing", "bad_bytes", "extra_cells"]


@st.composite
def csv_file(draw: Any) -> tuple[bytes, list[Any], str]:
    delimiter = draw(st.sampled_from([",", "\t"]))
    header = ["text", "event_type", "actors", "stance"]
    rows: list[bytes] = []
    expected: list[Any] = []

    def encode(cells: list[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
        return buffer.getvalue().encode()

    for _ in range(draw(st.integers(0, 6))):
        record = draw(good_record(LINE_TEXT))
        cells = [record["text"], record.get("event_type", ""), json.dumps(record["actors"]) if "actors" in record else "",
                 json.dumps(record["stance"]) if "stance" in record else ""]
        if not draw(st.integers(0, 2)) == 0:
            rows.append(encode(cells))
            expected.append(("good", record))
            continue
        kind = draw(st.sampled_from(CSV_MUTATIONS))
        field = {"event_type_unknown": "event_type", "text_nul": "text", "text_missing": "text", "bad_bytes": "line",
                 "extra_cells": "line", "offset_range": "actors[0].start"}.get(kind, "actors")
        if kind == "actors_malformed":
            cells[2] = draw(st.sampled_from(["[{", "{oops", "[1,]", "nan]"]))
        elif kind == "actors_deep":
            cells[2] = "[" * draw(DEPTHS)
        elif kind == "actors_huge_int":
            cells[2] = '[{"start": 1' + "0" * 5_000 + "}]"
        elif kind == "actors_not_list":
            cells[2] = draw(st.sampled_from(["5", '"x"', '{"start": 0}', "true"]))
        elif kind == "offset_range":
            cells[2] = json.dumps([{"start": len(record["text"]), "end": len(record["text"]) + 5, "role": "OTHER"}])
        elif kind == "event_type_unknown":
            cells[1] = "BOMBING"
        elif kind == "text_nul":
            cells[0] = "Police\x00 fired."
        elif kind == "text_missing":
            cells[0] = ""
        elif kind == "extra_cells":
            cells.append("surplus")
        line = encode(cells)
        if kind == "bad_bytes":
            line = _insert(line, draw(st.integers(0)), draw(st.sampled_from(BAD_BYTES)))
        rows.append(line)
        expected.append(("bad", field))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join([encode(header)] + rows) + newline
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, expected, ".csv" if delimiter == "," else ".tsv"


@pytest.mark.parametrize("kind", TRAINING_MUTATIONS)
@settings(HYPOTHESIS, max_examples=6)
@given(data=st.data())
def test_every_kind_of_bad_labeled_line_is_named(kind: str, data: Any) -> None:
    line, field = data.draw(bad_training_line([kind]))
    good = json.dumps({"text": "Police fired.", "event_type": "NONE"}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "data.jsonl", good + b"\n" + line + b"\n" + good + b"\n")
        with pytest.raises(DataError) as info:
            read_labeled_file(path, LABELS)
        assert_one_clear_line(str(info.value), path, 2, field)


@HYPOTHESIS
@given(generated=csv_file())
def test_labeled_csv_reader_names_file_line_and_field(stock_csv_limit: None,
                                                      generated: tuple[bytes, list[Any], str]) -> None:
    data, expected, suffix = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "data" + suffix, data)
        first_bad = next(((n, v) for n, (kind, v) in enumerate(expected, start=2) if kind == "bad"), None)
        if first_bad is None and expected:
            assert [r.text for r in read_labeled_file(path, LABELS)] == [v["text"] for _, v in expected]
            return
        with pytest.raises(DataError) as info:
            read_labeled_file(path, LABELS)
        assert_one_clear_line(str(info.value), path, *(first_bad or (0, "file")))


def test_undecodable_bytes_are_reported_on_their_own_line_in_big_files(tmp_path: Path) -> None:
    good = json.dumps({"text": "Police fired on the crowd.", "event_type": "NONE"})
    path = _write(tmp_path, "big.jsonl", (good + "\n").encode() * 3000 + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError) as info:
        read_labeled_file(path, LABELS)
    assert_one_clear_line(str(info.value), path, 3001, "line")
    rows = "text,event_type\n" + "Police fired.,NONE\n" * 3000
    path = _write(tmp_path, "big.csv", rows.encode() + b"caf\xe9,NONE\n")
    with pytest.raises(DataError) as info:
        read_labeled_file(path, LABELS)
    assert_one_clear_line(str(info.value), path, 3002, None)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b"\r\n  \r\n", b"text,event_type\r\n"])
def test_empty_files_are_one_clear_error(tmp_path: Path, data: bytes) -> None:
    for suffix in (".jsonl", ".csv"):
        path = _write(tmp_path, "empty" + suffix, data)
        with pytest.raises(DataError) as info:
            read_labeled_file(path, LABELS)
        assert_one_clear_line(str(info.value), path)


def test_a_huge_label_value_still_gives_a_short_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", json.dumps({"text": "Police fired.", "event_type": "X" * 100_000}).encode())
    with pytest.raises(DataError) as info:
        read_labeled_file(path, LABELS)
    assert_one_clear_line(str(info.value), path, 1, "event_type")


def test_mode_of_the_wrong_type_is_an_error_even_when_modes_come_from_the_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", json.dumps({"text": "Drones hit the base.", "event_type": "ASSAULT",
                                                    "mode": ["drone"]}).encode())
    with pytest.raises(DataError) as info:
        read_labeled_file(path)
    assert_one_clear_line(str(info.value), path, 1, "mode")


# ----------------------------------------------------------------------------- scoring inputs
SCORING_MUTATIONS = ["truncated", "not_object", "deep", "huge_int", "raw_nul", "bad_bytes", "text_type", "text_missing",
                     "text_nul", "text_surrogate", "targets_type", "targets_surrogate", "id_surrogate"]


@st.composite
def good_document(draw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"text": draw(st.one_of(SAFE_TEXT, st.just(""), LONG_TEXT))}
    if draw(st.booleans()):
        row["id"] = draw(st.one_of(st.integers(), SAFE_TEXT))
    if draw(st.booleans()):
        row["targets"] = draw(st.lists(SAFE_TEXT, max_size=2))
    return row


@st.composite
def bad_document(draw: Any, kinds: list[str] = SCORING_MUTATIONS) -> tuple[bytes, str]:
    row = draw(good_document())
    kind = draw(st.sampled_from(kinds))
    field = "line"
    if kind == "truncated":
        encoded = json.dumps(row)
        return encoded[:draw(st.integers(1, len(encoded) - 1))].encode(), field
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.none(), NOT_A_STRING, SAFE_TEXT).filter(lambda v: not isinstance(v, dict)))).encode(), field
    if kind == "deep":
        return b'{"text": ' + b"[" * draw(DEPTHS), field
    if kind == "huge_int":
        return b'{"text": "Police fired.", "id": 1' + b"0" * draw(HUGE) + b"}", field
    if kind == "raw_nul":
        return _insert(json.dumps(row).encode(), draw(st.integers(0)), b"\x00"), field
    if kind == "bad_bytes":
        return _insert(json.dumps(row).encode(), draw(st.integers(0)), draw(st.sampled_from(BAD_BYTES))), field
    if kind == "text_type":
        row["text"], field = draw(NOT_A_STRING), "text"
    elif kind == "text_missing":
        row.pop("text")
        field = "text"
    elif kind == "text_nul":
        row["text"], field = row["text"] + "\x00", "text"
    elif kind == "text_surrogate":
        row["text"], field = "Police fired \ud83d.", "text"
    elif kind == "targets_type":
        row["targets"], field = draw(st.one_of(SAFE_TEXT, st.integers(), st.lists(st.integers(), min_size=1, max_size=2))), "targets"
    elif kind == "targets_surrogate":
        row["targets"], field = ["US \udc80forces"], "targets"
    elif kind == "id_surrogate":
        row["id"], field = "doc\udcff", "id"
    return json.dumps(row).encode(), field


@pytest.mark.parametrize("kind", SCORING_MUTATIONS)
@settings(HYPOTHESIS, max_examples=6)
@given(data=st.data())
def test_every_kind_of_bad_scoring_row_is_named_and_skippable(kind: str, data: Any) -> None:
    from eventcoder.serve.scoring import Document, read_documents

    line, field = data.draw(bad_document([kind]))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "in.jsonl", b'{"text": "One."}\n' + line + b'\n{"text": "Two."}\n')
        items = list(read_documents(path, scoring_options()))
    assert [type(i) for i in items] == [Document, DataError, Document], items
    assert_one_clear_line(str(items[1]), path, 2, field)


def scoring_options(**changes: Any) -> Any:
    from eventcoder.serve.scoring import ScoreOptions

    return ScoreOptions(inputs=[], output="unused.jsonl", **changes)


@HYPOTHESIS
@given(jsonl_file(good_document(), bad_document()))
def test_scoring_jsonl_reader_yields_documents_and_clear_errors(generated: tuple[bytes, list[Any]]) -> None:
    from eventcoder.serve.scoring import Document, read_documents

    data, expected = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "in.jsonl", data)
        items = list(read_documents(path, scoring_options()))
    wanted = [(n, kind, v) for n, (kind, v) in enumerate(expected, start=1) if kind != "blank"]
    assert len(items) == len(wanted)
    for item, (line, kind, value) in zip(items, wanted):
        if kind == "good":
            assert isinstance(item, Document) and item.text == value["text"]
            assert item.doc_id == str(value.get("id", line))
            assert item.targets == value.get("targets", [])
        else:
            assert isinstance(item, DataError), item
            assert_one_clear_line(str(item), path, line, value)


@st.composite
def txt_lines_file(draw: Any) -> tuple[bytes, list[Any]]:
    lines: list[bytes] = []
    expected: list[Any] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["good", "good", "bad_bytes", "nul", "blank"]))
        text = draw(LINE_TEXT).strip() or "x"
        if kind == "good":
            lines.append(text.encode())
            expected.append(("good", text))
        elif kind == "blank":
            lines.append(b"  ")
            expected.append(("blank", None))
        elif kind == "nul":
            lines.append(text.encode() + b"\x00")
            expected.append(("bad", "text"))
        else:
            lines.append(_insert(text.encode(), draw(st.integers(0)), draw(st.sampled_from(BAD_BYTES))))
            expected.append(("bad", "line"))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join(lines) + newline
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, expected


@HYPOTHESIS
@given(txt_lines_file())
def test_scoring_txt_readers_name_the_line(generated: tuple[bytes, list[Any]]) -> None:
    from eventcoder.serve.scoring import Document, read_documents

    data, expected = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "in.txt", data)
        items = list(read_documents(path, scoring_options(lines=True)))
        wanted = [(n, kind, v) for n, (kind, v) in enumerate(expected, start=1) if kind != "blank"]
        assert len(items) == len(wanted)
        for item, (line, kind, value) in zip(items, wanted):
            if kind == "good":
                assert isinstance(item, Document) and item.text.strip() == value and item.doc_id == str(line)
            else:
                assert isinstance(item, DataError)
                assert_one_clear_line(str(item), path, line, value)
        whole = list(read_documents(path, scoring_options()))  # the whole file is one document
        assert len(whole) == 1
        first_bad = next(((n, v) for n, (kind, v) in enumerate(expected, start=1) if kind == "bad"), None)
        if first_bad is None:
            assert isinstance(whole[0], Document)
        else:
            assert isinstance(whole[0], DataError)
            assert_one_clear_line(str(whole[0]), path, first_bad[0], None)


@st.composite
def scoring_csv_file(draw: Any) -> tuple[bytes, list[Any], str]:
    delimiter = draw(st.sampled_from([",", "\t"]))

    def encode(cells: list[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
        return buffer.getvalue().encode()

    rows: list[bytes] = []
    expected: list[Any] = []
    for n in range(draw(st.integers(0, 8))):
        text = draw(st.one_of(LINE_TEXT, LINE_TEXT, st.integers(30_000, 60_000).map(lambda k: "Talks resumed. " * k)))
        doc_id = f"r{n}"
        kind = draw(st.sampled_from(["good", "good", "good", "bad_bytes", "bad_bytes_id", "nul", "missing"]))
        if kind == "good":
            rows.append(encode([doc_id, text]))
            expected.append(("good", (doc_id, text)))
        elif kind == "nul":
            rows.append(encode([doc_id, text + "\x00"]))
            expected.append(("bad", "text"))
        elif kind == "missing":
            rows.append(encode([doc_id]))
            expected.append(("bad", "text"))
        elif kind == "bad_bytes":
            rows.append(encode([doc_id, ""]) + b"caf\xe9")
            expected.append(("bad", "text"))
        else:
            rows.append(b"caf\xe9" + encode([doc_id, text]))
            expected.append(("bad", "id"))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = newline.join([encode(["id", "text"])] + rows) + newline
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, expected, ".csv" if delimiter == "," else ".tsv"


@HYPOTHESIS
@given(scoring_csv_file())
def test_scoring_csv_reader_skips_only_the_bad_rows(generated: tuple[bytes, list[Any], str]) -> None:
    from eventcoder.serve.scoring import Document, read_documents

    data, expected, suffix = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "in" + suffix, data)
        items = list(read_documents(path, scoring_options()))
    assert len(items) == len(expected), items
    for line, (item, (kind, value)) in enumerate(zip(items, expected), start=2):
        if kind == "good":
            assert isinstance(item, Document) and (item.doc_id, item.text) == value
        else:
            assert isinstance(item, DataError), item
            assert_one_clear_line(str(item), path, line, value)


BAD_SCORING_INPUT = (b'{"text": "Teachers marched in Buenos Aires."}\n'
                     b"{broken\n"
                     b'{"text": 5}\n'
                     b'{"text": "Police fired \\ud83d."}\n'
                     b'{"text": "caf\xe9"}\n'
                     b"[[[[" + b"[" * 100_000 + b"\n"
                     b'{"text": "x", "id": 1' + b"0" * 5_000 + b"}\n"
                     b'{"text": "Nul\x00byte"}\n'
                     b'{"text": "Talks resumed.", "targets": ["US \\udc80"]}\n'
                     b'{"text": "Elections are scheduled for March."}\n')


def test_score_skips_bad_rows_and_reports_how_many_and_which(trained_model: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    inp = _write(tmp_path, "in.jsonl", BAD_SCORING_INPUT)
    out = tmp_path / "out.jsonl"
    assert main(["score", str(inp), "-o", str(out), "--model", str(trained_model), "--no-progress",
                 "--on-error", "skip"]) == 0
    err = capsys.readouterr().err
    assert "skipped 8 bad rows" in err and "Traceback" not in err
    for line in range(2, 10):
        assert f"{inp}:{line}: field '" in err
    assert [r["doc_id"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())] == ["1", "10"]


@pytest.mark.parametrize("line", BAD_SCORING_INPUT.split(b"\n")[1:9], ids=[f"line{n}" for n in range(2, 10)])
def test_score_stops_at_the_first_bad_row_with_one_line_and_exit_2(trained_model: Path, tmp_path: Path, line: bytes,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    inp = _write(tmp_path, "in.jsonl", b'{"text": "Police fired."}\n' + line + b"\n")
    code = main(["score", str(inp), "-o", str(tmp_path / "o.jsonl"), "--model", str(trained_model), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"eventcoder score: error: {inp}:2: field '") and "Traceback" not in err[0]


# ----------------------------------------------------------------------------- the CLI: exit 2, no traceback
def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventcoder.serve.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.integration
def test_cli_bad_input_exits_2_with_one_line_and_debug_shows_the_traceback(trained_model: Path, tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.jsonl", b'{"text": "Police fired."}\n' + b"[" * 100_000 + b"\n")
    result = run_cli("evaluate", str(bad), "--model", str(trained_model))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"eventcoder evaluate: error: {bad}:2: field 'line': not valid JSON (nested too deeply)"]
    debug = run_cli("--debug", "evaluate", str(bad), "--model", str(trained_model))
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "DataError" in debug.stderr


@pytest.mark.parametrize("case", ["deep_json", "huge_int", "csv_long_field", "surrogate_text", "surrogate_targets",
                                  "broken_yaml",
                                  "output_is_a_folder", "corrupt_tokenizer", "corrupt_onnx", "metadata_list_heads"])
def test_cli_errors_are_one_line_and_exit_2(case: str, trained_model: Path, tmp_path: Path, stock_csv_limit: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.jsonl", b'{"text": "Police fired on the crowd.", "event_type": "NONE"}\n')
    model = trained_model
    if case in ("corrupt_tokenizer", "corrupt_onnx", "metadata_list_heads"):
        model = tmp_path / "model"
        shutil.copytree(trained_model, model)
        if case == "corrupt_tokenizer":
            (model / "tokenizer.json").write_text('{"version": "1.0", "model": 5}')
        elif case == "corrupt_onnx":
            for name in ("model.onnx", "model.int8.onnx"):
                (model / name).write_bytes(b"\x08\x07garbage" * 10)
        else:
            meta = json.loads((model / "eventcoder.json").read_text())
            meta["heads"] = list(meta["heads"])
            (model / "eventcoder.json").write_text(json.dumps(meta))
    if case == "deep_json":
        args = ["evaluate", str(_write(tmp_path, "d.jsonl", b"[" * 100_000)), "--model", str(model)]
    elif case == "huge_int":
        args = ["evaluate", str(_write(tmp_path, "d.jsonl", b'{"text": "a", "event_type": 1' + b"0" * 9_000 + b"}")),
                "--model", str(model)]
    elif case == "csv_long_field":  # read in full (past csv's 131,072-character field limit), then refused
        long_row = "text,event_type\n" + '"' + "Police fired. " * 20_000 + '",NONE\n,NONE\n'
        args = ["evaluate", str(_write(tmp_path, "d.csv", long_row.encode())), "--model", str(model)]
    elif case == "surrogate_text":
        args = ["evaluate", str(_write(tmp_path, "d.jsonl", b'{"text": "Police \\udc80fired.", "event_type": "NONE"}')),
                "--model", str(model)]
    elif case == "surrogate_targets":  # an argv byte that was not UTF-8 arrives as a lone surrogate
        args = ["score", str(good), "-o", str(tmp_path / "o.jsonl"), "--model", str(model), "--targets", "US \udc80"]
    elif case == "broken_yaml":
        args = ["train", "--config", str(_write(tmp_path, "c.yaml", b"name: [unclosed\n  - x: {")), "--train-file", str(good)]
    elif case == "output_is_a_folder":
        (tmp_path / "out.jsonl").mkdir()
        args = ["score", str(good), "-o", str(tmp_path / "out.jsonl"), "--model", str(model), "--no-progress"]
    else:
        args = ["score", str(good), "-o", str(tmp_path / "o.jsonl"), "--model", str(model), "--no-progress"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"eventcoder {args[0]}: error: ") and len(lines[0]) < 600, lines
    if case in ("deep_json", "huge_int", "csv_long_field", "surrogate_text"):
        assert ERROR_LINE.match(lines[0].split(": error: ", 1)[1]), lines[0]


# ----------------------------------------------------------------------------- model directories
@pytest.mark.parametrize("name", ["eventcoder.json", "model.safetensors", "tokenizer.json", "model.onnx", "model.int8.onnx"])
@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated"])
def test_missing_or_corrupt_model_files_are_a_clear_error(trained_model: Path, tmp_path: Path, name: str,
                                                          damage: str) -> None:
    from eventcoder.model.directory import ModelDirectoryError
    from eventcoder.model.predictor import Predictor

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    target = model / name
    if damage == "missing":
        target.unlink()
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "garbage":
        target.write_bytes(os.urandom(256))
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    for backend in ("auto", "torch"):
        try:
            predictor = Predictor.from_pretrained(model, backend=backend)
        except ModelDirectoryError as err:
            assert "\n" not in str(err) and str(model) in str(err)
        else:  # only an ONNX graph may be missing or broken, and then another backend serves
            assert name.endswith(".onnx") and predictor.backend.name != f"onnx:{name}", (name, damage, backend)
            records = predictor.predict(["Police fired."])
            assert len(records) == 1 and records[0].event_type in predictor.event_labels


@pytest.mark.parametrize("heads", [[], {}, {"event_type": 5}, {"event_type": {"id2label": []}}, "x"])
def test_metadata_of_the_wrong_shape_is_a_clear_error(trained_model: Path, tmp_path: Path, heads: Any) -> None:
    from eventcoder.model.directory import ModelDirectoryError
    from eventcoder.model.predictor import Predictor

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    meta = json.loads((model / "eventcoder.json").read_text())
    meta["heads"] = heads
    (model / "eventcoder.json").write_text(json.dumps(meta))
    with pytest.raises(ModelDirectoryError, match="eventcoder.json"):
        Predictor.from_pretrained(model)


@pytest.mark.integration
def test_model_directory_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    """A writer killed mid-fill leaves no directory at the target, only a hidden temporary sibling."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from eventcoder.model.directory import write_atomically
        def fill(d):
            (d / "model.safetensors").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        write_atomically({str(tmp_path / 'model')!r}, fill)
    """)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60)
    assert not (tmp_path / "model").exists()
    assert all(p.name.startswith(".model.tmp-") for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- corrections
def test_a_crash_mid_line_loses_only_that_line(tmp_path: Path) -> None:
    from eventcoder.serve.corrections import append_correction, correction_record, count_corrections

    path = tmp_path / "corrections.jsonl"
    first = correction_record("Germany condemned Belarus.", "ACCUSE", "", [{"start": 0, "end": 7, "role": "INITIATOR"}])
    append_correction(path, first)
    with path.open("ab") as handle:  # what a crash in the middle of the next write leaves behind
        handle.write(json.dumps(first).encode()[:17])
    second = correction_record("Police fired.", "ASSAULT", "", [{"start": 0, "end": 6, "role": "INITIATOR"}])
    append_correction(path, second)
    assert [r.text for r in read_labeled_file(path)] == ["Germany condemned Belarus.", "Police fired."]
    assert count_corrections(path) == 2


@pytest.mark.integration
def test_a_killed_writer_leaves_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "corrections.jsonl"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from eventcoder.serve.corrections import append_correction
        record = {{"text": "Police fired on the crowd in the capital." * 50, "event_type": "ASSAULT"}}
        while True:
            append_correction({str(path)!r}, record)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.time() + 30
    while time.time() < deadline and (not path.exists() or path.stat().st_size < 20_000):
        time.sleep(0.01)
    process.kill()
    process.wait()
    from eventcoder.serve.corrections import append_correction, count_corrections

    append_correction(path, {"text": "Talks resumed.", "event_type": "NONE"})
    records = read_labeled_file(path)
    assert records[-1].text == "Talks resumed." and count_corrections(path) == len(records) >= 2


@HYPOTHESIS
@given(st.binary(max_size=2_000))
def test_counting_corrections_survives_any_bytes(data: bytes) -> None:
    from eventcoder.serve.corrections import count_corrections

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "corrections.jsonl", data)
        assert count_corrections(path) == sum(1 for line in data.split(b"\n") if line.strip())


@HYPOTHESIS
@given(st.lists(st.dictionaries(st.sampled_from(["start", "end", "role", "stance", "type"]),
                                st.one_of(st.none(), st.integers(-5, 40), st.floats(), SAFE_TEXT, st.booleans()),
                                max_size=5), max_size=3))
def test_bad_corrections_are_refused_with_a_value_error(actors: list[dict[str, Any]]) -> None:
    from eventcoder.serve.corrections import correction_record

    try:
        record = correction_record("Germany condemned Belarus.", "ACCUSE", "", actors)
    except ValueError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert all(0 <= a["start"] < a["end"] <= 26 for a in record["actors"])


# ----------------------------------------------------------------------------- the page's upload reader
@HYPOTHESIS
@given(st.one_of(st.binary(max_size=3_000), jsonl_file(good_document(), bad_document()).map(lambda g: g[0]),
                 scoring_csv_file().map(lambda g: g[0])),
       st.sampled_from([".txt", ".csv", ".tsv", ".jsonl", ".bin", ""]))
def test_upload_reader_always_answers_with_text_and_a_message(stock_csv_limit: None, data: bytes, suffix: str) -> None:
    from eventcoder.serve.app import read_upload

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "upload" + suffix, data)
        text, message = read_upload(str(path))
    assert isinstance(text, str) and isinstance(message, str) and message and "\n" not in message
    text.encode("utf-8")  # no unpaired surrogates reach the page
    assert "\x00" not in text


@pytest.mark.parametrize("data, suffix, expected", [
    (b"[" * 100_000, ".jsonl", "upload.jsonl:1: not valid JSON"),
    (b'{"text": "a"}\n{"text": "b", "id": 1' + b"0" * 5_000 + b"}", ".jsonl", "upload.jsonl:2: not valid JSON"),
    ('{"text": "one\u2028two"}\n{"text": "three\u0085"}\n'.encode(), ".jsonl", "loaded 2 documents from upload.jsonl"),
    (b'{"text": "Police \\ud83d fired."}\n', ".jsonl", "upload.jsonl:1: field 'text'"),
    (('id,text\n1,"' + "Police fired. " * 20_000 + '"\n2,Talks.\n').encode(), ".csv", "loaded 2 documents from upload.csv"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), ".txt", "upload.txt looks like a binary file, not text."),
    (b"caf\xe9", ".txt", "upload.txt is not UTF-8 text."),
    (b"", ".txt", "upload.txt is empty."),
])
def test_upload_reader_messages(tmp_path: Path, data: bytes, suffix: str, expected: str, stock_csv_limit: None) -> None:
    from eventcoder.serve.app import read_upload

    text, message = read_upload(str(_write(tmp_path, "upload" + suffix, data)))
    assert message.startswith(expected), message
    if "one\u2028two" in data.decode("utf-8", "replace"):
        assert text == "one\u2028two\n\nthree\u0085"


# ----------------------------------------------------------------------------- the page under load
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingPredictor:
    """Wraps a Predictor and records how many predictions run at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.inner.predict(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def page_function(demo: Any, name: str) -> Any:
    return next(f.fn for f in demo.fns.values() if f.fn.__name__ == name)


def test_page_defaults_cap_200000_characters_bind_loopback_and_take_auth_from_the_environment(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    import gradio as gr

    from eventcoder.serve.app import build_demo, launch

    args = build_parser().parse_args(["demo"])
    assert args.max_chars == 200_000 and args.host == "127.0.0.1"
    assert build_parser().parse_args(["demo", "--max-chars", "5000"]).max_chars == 5000
    assert inspect.signature(build_demo).parameters["max_chars"].default == 200_000
    assert inspect.signature(launch).parameters["max_chars"].default == 200_000
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("EVENTCODER_USER", "analyst")
    monkeypatch.setenv("EVENTCODER_PASSWORD", "s3cret")
    launch(str(trained_model), corrections=str(tmp_path / "c.jsonl"), max_chars=1234)
    monkeypatch.delenv("EVENTCODER_PASSWORD")
    launch(str(trained_model), corrections=str(tmp_path / "c.jsonl"))
    assert calls[0]["auth"] == ("analyst", "s3cret") and calls[1]["auth"] is None
    assert all(c["server_name"] == "127.0.0.1" and c["share"] is False for c in calls)


def test_page_functions_answer_every_bad_input_with_a_message(trained_model: Path, tmp_path: Path) -> None:
    from eventcoder.model.predictor import Predictor
    from eventcoder.serve.app import build_demo

    demo = build_demo(Predictor.from_pretrained(trained_model), tmp_path / "corrections.jsonl", max_chars=1_000)
    analyse = page_function(demo, "analyse")
    status = analyse("Police fired. " * 100, "")[-1]
    assert "cut to its first 1,000 characters" in status
    for article in ["Police \ud800fired on the \udfffcrowd.", "\x00\x00", "\ufeff", "\u200b\u200b", "\U0001F600 fired."]:
        outputs = analyse(article, "US \udc80forces, " + "x" * 5_000)
        assert isinstance(outputs[-1], str) and outputs[-1]
        json.dumps(outputs[4], ensure_ascii=False).encode("utf-8")
    outputs = analyse("Germany condemned Belarus. Police fired.", "")
    save = page_function(demo, "save_correction")
    choice = outputs[5]["value"]
    for row in (["Germany", "inf", "7", "INITIATOR", "NONE"], ["Germany", "nan", "7", "INITIATOR", "NONE"],
                ["Germany", None, "7", "INITIATOR", "NONE"], ["Germany", "0", "700", "INITIATOR", "NONE"],
                ["Germany", "0", "7", "KING", "NONE"], ["Germany", "1e400", "7", "INITIATOR", "NONE"]):
        message = save(choice, outputs[4], "ACCUSE", "", [row])
        assert isinstance(message, str) and not message.startswith("Saved"), (row, message)
    assert save(choice, outputs[4], "ACCUSE", "", [["Germany", "0", "7", "INITIATOR", "NONE"]]).startswith("Saved")


@pytest.mark.integration
def test_page_answers_20_concurrent_requests_with_bounded_concurrency(trained_model: Path, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    from eventcoder.model.predictor import Predictor
    from eventcoder.serve.app import ModelHolder, build_demo

    counting = CountingPredictor(Predictor.from_pretrained(trained_model))
    demo = build_demo(ModelHolder(counting, trained_model), tmp_path / "corrections.jsonl")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    long_article = (ARTICLE * 2_000)[:200_000]
    too_long = (ARTICLE * 3_000)[:250_000]
    articles = ["", "   ", long_article, too_long, *NON_ENGLISH.values(), "\x00 binary \x01\x02",
                "\U0001F600" * 50, ARTICLE, "Police fired on the crowd. " * 40]
    uploads = {"binary.txt": bytes(range(256)) * 40, "latin1.txt": "café".encode("latin-1"),
               "docs.jsonl": (json.dumps({"text": NON_ENGLISH["arabic"]}) + "\n{broken\n").encode(),
               "big.csv": ("text\n" + '"' + "Talks resumed. " * 30_000 + '"\n').encode(),
               "empty.txt": b""}
    paths = {name: _write(tmp_path, name, data) for name, data in uploads.items()}
    jobs: list[tuple[str, Any]] = [("analyse", a) for a in articles]
    jobs += [("upload", p) for p in paths.values()]
    jobs += [("analyse", NON_ENGLISH["chinese"] * 3)] * (20 - len(jobs))
    assert len(jobs) == 20

    def call(job: tuple[str, Any]) -> Any:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        kind, value = job
        if kind == "upload":
            return client.predict(handle_file(str(value)), api_name="/read_upload")
        return client.predict(value, "US forces", api_name="/analyse")

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(call, jobs))
    finally:
        demo.close()
    for (kind, value), result in zip(jobs, results):
        status = result[-1]
        assert isinstance(status, str) and status, (kind, str(value)[:40], result)
    by_article = dict(zip(articles, results))
    assert by_article[""][-1] == "Paste an article first."
    assert "cut to its first 200,000 characters" in by_article[too_long][-1]
    assert "cut" not in by_article[long_article][-1] and "sentences coded" in by_article[long_article][-1]
    for text in NON_ENGLISH.values():
        assert "sentences coded" in by_article[text][-1]
    upload_messages = {p.name: r[-1] for (kind, p), r in zip(jobs, results) if kind == "upload"}
    assert upload_messages["binary.txt"] == "binary.txt looks like a binary file, not text."
    assert upload_messages["latin1.txt"] == "latin1.txt is not UTF-8 text."
    assert upload_messages["docs.jsonl"] == "docs.jsonl:2: not valid JSON"
    assert upload_messages["big.csv"] == "loaded 1 documents from big.csv"
    assert counting.most <= 2, f"{counting.most} predictions ran at once"
    analyse_fn = next(f for f in demo.fns.values() if f.fn.__name__ == "analyse")
    assert analyse_fn.concurrency_limit == 2 and demo._queue.max_size is not None


# ----------------------------------------------------------------------------- safe defaults
AUDIT_SCRIPT = r'''
import ipaddress, json, socket, sys

blocked = []


def loopback(host):
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def audit(event, args):
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            blocked.append(f"connect {address!r}")
    elif event == "socket.getaddrinfo" and not loopback(args[0]):
        blocked.append(f"getaddrinfo {args[0]!r}")


sys.addaudithook(audit)
model, inp, out, corrections = sys.argv[1:5]
from eventcoder.serve.cli import main

assert main(["score", inp, "-o", out, "--model", model, "--no-progress"]) == 0
from eventcoder.model.predictor import Predictor
from eventcoder.serve.app import ModelHolder, build_demo

demo = build_demo(ModelHolder(Predictor.from_pretrained(model), model), corrections)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[5]), prevent_thread_lock=True, share=False, quiet=True)
print("READY", flush=True)
sys.stdin.readline()
demo.close()
print("BLOCKED " + json.dumps(blocked), flush=True)
'''


@pytest.mark.integration
def test_scoring_and_the_page_connect_to_nothing_but_loopback(trained_model: Path, tmp_path: Path) -> None:
    """An audit hook on socket.connect (and name lookups) in a process with none of the project's
    environment variables set: scoring and the page, under a client's requests, stay on loopback."""
    from gradio_client import Client

    inp = _write(tmp_path, "in.jsonl", json.dumps({"text": ARTICLE}).encode() + b"\n")
    script = _write(tmp_path, "audit.py", AUDIT_SCRIPT.encode())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRADIO_", "HF_", "TRANSFORMERS_", "EVENTCODER_")) and k not in ("NO_PROXY", "no_proxy")}
    env["PYTHONPATH"] = str(REPO)
    port = free_port()
    log = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen([sys.executable, str(script), str(trained_model), str(inp), str(tmp_path / "o.jsonl"),
                                str(tmp_path / "c.jsonl"), str(port)], cwd=REPO, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        for ready in process.stdout:
            if ready.startswith("READY"):
                break
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
        result = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False,
                        analytics_enabled=False).predict(
            ARTICLE, "US forces", api_name="/analyse")
        assert "sentences coded" in result[-1]
        out, err = process.communicate("done\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    blocked = json.loads(next(line for line in out.splitlines() if line.startswith("BLOCKED "))[8:])
    assert blocked == [], blocked
    assert (tmp_path / "o.jsonl").read_text(encoding="utf-8")


class _Payload:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.sentinel), "w"))


def test_weights_are_never_unpickled(trained_model: Path, tiny_base_model: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from eventcoder.model.directory import ModelDirectoryError
    from eventcoder.model.network import EventCoderNetwork
    from eventcoder.model.predictor import Predictor

    loads: list[str] = []

    def refuse(name: str) -> Any:
        def loader(*args: Any, **kwargs: Any) -> Any:
            loads.append(name)
            raise AssertionError(f"{name} called")
        return loader

    monkeypatch.setattr(torch, "load", refuse("torch.load"))
    monkeypatch.setattr(pickle, "load", refuse("pickle.load"))
    monkeypatch.setattr(pickle, "loads", refuse("pickle.loads"))
    sentinel = tmp_path / "unpickled"
    payload = pickle.dumps({"encoder.embeddings.word_embeddings.weight": _Payload(sentinel)})

    for backend in ("auto", "torch"):  # the good model loads without pickle
        assert Predictor.from_pretrained(trained_model, backend=backend).predict(["Police fired."])
    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    (model / "model.safetensors").unlink()
    for name in ("pytorch_model.bin", "model.bin", "model.pt"):
        (model / name).write_bytes(payload)
    for backend in ("auto", "torch"):
        with pytest.raises(ModelDirectoryError, match="model.safetensors"):
            Predictor.from_pretrained(model, backend=backend)

    base = tmp_path / "base"  # a base encoder shipped only as a pickle is refused for training too
    shutil.copytree(tiny_base_model, base)
    (base / "model.safetensors").unlink()
    (base / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(OSError):
        EventCoderNetwork.from_base(str(base), {"event_type": 3, "actors": 3, "stance": 3})
    assert EventCoderNetwork.from_base(str(tiny_base_model), {"event_type": 3, "actors": 3, "stance": 3})
    assert loads == [] and not sentinel.exists()
