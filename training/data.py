"""Reading and validating labeled data (JSONL, CSV, TSV; format in docs/spec.md).

Every problem is a `DataError` naming the file, the line and the field. A line may carry any
subset of the annotations (event_type, mode, actors, stance); a missing one is None and that head
does not learn from the line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from eventcoder.model.files import (  # noqa: F401  (DataError and text_problem: re-exported for old imports)
    DataError, decode_line, has_surrogate, lift_csv_field_limit, parse_json, short, text_problem,
)

TEXT_FIELD = "text"


@dataclass
class Actor:
    start: int
    end: int
    role: str
    type: str | None = None
    country: str | None = None


@dataclass
class StanceLabel:
    target: str
    stance: str


@dataclass
class LabeledSentence:
    text: str
    event_type: str | None
    mode: str | None
    actors: list[Actor] | None
    stance: list[StanceLabel] | None
    source: str  # "file:line", for error messages and reports

    def actor_text(self, actor: Actor) -> str:
        return self.text[actor.start : actor.end]


class UnknownLabelError(DataError):
    """A label outside a head's list; `head` names the list (a LabelSets field) so a caller can add a hint."""

    def __init__(self, path: str | Path, line: int, field: str, message: str, head: str) -> None:
        super().__init__(path, line, field, message)
        self.head = head


@dataclass
class LabelSets:
    """The labels a config allows; None for a head means "take them from the data", an empty list
    that the head does not exist (no label of it is accepted)."""

    event_types: list[str] | None = None
    roles: list[str] | None = None
    stances: list[str] | None = None
    actor_types: list[str] | None = None
    modes: list[str] | None = None  # "TYPE/mode"


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw row) pairs. CSV/TSV rows count their header as line 1; Parquet files and
    Hugging Face `datasets` folders (`Dataset.save_to_disk`) number their rows from 1."""
    if path.is_dir():
        yield from _dataset_rows(path)
        return
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from _csv_rows(path, "\t" if suffix == ".tsv" else ",")
        return
    if suffix == ".parquet":
        yield from _table_rows(path, _read_parquet_table(path))
        return
    # Bytes, one line at a time: an undecodable byte is reported on its own line, however far into the file.
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(path, line_no, raw)
            if isinstance(line, DataError):
                raise line
            if not line.strip():
                continue
            if "\x00" in line:
                raise DataError(path, line_no, "line", "contains a NUL byte")
            row = parse_json(path, line_no, "line", line)
            if not isinstance(row, dict):
                raise DataError(path, line_no, "line", f"expected a JSON object, got {type(row).__name__}")
            yield line_no, row


def _read_parquet_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged or foreign file
        raise DataError(path, 0, "file", f"unreadable Parquet ({short(str(err))})") from None


def _dataset_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a `datasets` folder; a DatasetDict folder names its splits in the error."""
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / "state.json").is_file())
        hint = f": give one split's folder, e.g. {path / splits[0]}" if splits else \
            " (expected a folder written by datasets' save_to_disk)"
        raise DataError(path, 0, "file", f"is a folder, not one dataset{hint}")
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except Exception as err:  # datasets raises several types for a folder it did not write
        raise DataError(path, 0, "file", f"unreadable datasets folder ({short(str(err))})") from None
    yield from _table_rows(path, dataset.data.table)


def _table_rows(path: Path, table: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of an Arrow table as dicts (nested lists and structs become lists and dicts, as JSON lines would)."""
    if TEXT_FIELD not in table.column_names:
        raise DataError(path, 1, TEXT_FIELD, f"no 'text' column (columns: {short(', '.join(table.column_names))})")
    row_no = 0
    for batch in table.to_batches(max_chunksize=1024):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, _without_nulls(row)


def _without_nulls(value: Any) -> Any:
    """Arrow gives every struct all the fields of its column (null where a row lacked one); a JSON line
    would simply not have them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    lift_csv_field_limit()  # fields may be whole articles
    # Undecodable bytes become lone surrogates here and are reported with the row that holds them.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            fieldnames = reader.fieldnames
            if fieldnames is not None and any(has_surrogate(name) for name in fieldnames):
                raise DataError(path, 1, "line", "is not valid UTF-8")
            if fieldnames is None or TEXT_FIELD not in fieldnames:
                raise DataError(path, 1, TEXT_FIELD, "the header has no 'text' column")
            for row in reader:
                cells = [c for v in row.values() for c in (v if isinstance(v, list) else [v]) if isinstance(c, str)]
                if any(has_surrogate(c) for c in cells):
                    raise DataError(path, reader.line_num, "line", "is not valid UTF-8")
                yield reader.line_num, _decode_json_columns(path, reader.line_num, row)
        except csv.Error as err:
            raise DataError(path, reader.line_num, "line", f"unreadable CSV ({short(str(err))})") from None


def _decode_json_columns(path: Path, line: int, row: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            raise DataError(path, line, "line", "more cells than header columns")
        if value is None or value == "":
            decoded[key] = None
        elif key in ("actors", "stance"):
            decoded[key] = parse_json(path, line, key, value)
        else:
            decoded[key] = value
    return decoded


def read_labeled_file(path: str | Path, labels: LabelSets | None = None) -> list[LabeledSentence]:
    """Read and validate one labeled file; raises DataError on the first problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, 0, "file", "does not exist")
    labels = labels or LabelSets()
    records = [_validate(path, line, row, labels) for line, row in _raw_rows(path)]
    if not records:
        raise DataError(path, 0, "file", "holds no labeled sentences")
    return records


def _check_label(path: Path, line: int, field: str, value: Any, allowed: list[str] | None, head: str) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(path, line, field, f"expected a label string, got {short(repr(value))}")
    if allowed is not None and value not in allowed:
        known = (f"the config allows {short(', '.join(allowed), 300)}" if allowed
                 else "this head has no labels: the training data has none")
        raise UnknownLabelError(path, line, field, f"unknown label {short(repr(value))} ({known})", head)
    return value


def _validate(path: Path, line: int, row: dict[str, Any], labels: LabelSets) -> LabeledSentence:
    text = row.get(TEXT_FIELD)
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line, TEXT_FIELD, "missing or empty")
    problem = text_problem(text)
    if problem:
        raise DataError(path, line, TEXT_FIELD, problem)
    event_type = row.get("event_type")
    if event_type is not None:
        event_type = _check_label(path, line, "event_type", event_type, labels.event_types, "event_types")
    mode = row.get("mode")
    mode = None if mode in (None, "") else mode
    if mode is not None:
        if not isinstance(mode, str):
            raise DataError(path, line, "mode", f"expected a mode string, got {short(repr(mode))}")
        if event_type is None:
            raise DataError(path, line, "mode", "a mode needs an event_type")
        allowed_modes = labels.modes
        _check_label(path, line, "mode", f"{event_type}/{mode}", allowed_modes, "modes")
    actors = _validate_actors(path, line, row.get("actors"), text, labels)
    stance = _validate_stance(path, line, row.get("stance"), labels)
    return LabeledSentence(text, event_type, mode, actors, stance, f"{path.name}:{line}")


def _validate_actors(path: Path, line: int, raw: Any, text: str, labels: LabelSets) -> list[Actor] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DataError(path, line, "actors", f"expected a list, got {type(raw).__name__}")
    actors: list[Actor] = []
    for i, item in enumerate(raw):
        field = f"actors[{i}]"
        if not isinstance(item, dict):
            raise DataError(path, line, field, "expected an object with start, end, role")
        start, end = item.get("start"), item.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
            raise DataError(path, line, f"{field}.start", "start and end must be integers")
        if not 0 <= start < end <= len(text):
            raise DataError(path, line, f"{field}.start",
                            f"offsets {start}:{end} fall outside the text (length {len(text)})")
        role = _check_label(path, line, f"{field}.role", item.get("role"), labels.roles, "roles")
        actor_type = item.get("type") or None
        if actor_type is not None:
            _check_label(path, line, f"{field}.type", actor_type, labels.actor_types, "actor_types")
        country = item.get("country")
        if country is not None and not isinstance(country, str):
            raise DataError(path, line, f"{field}.country", "expected a string")
        actors.append(Actor(start, end, role, actor_type, country))
    ordered = sorted(actors, key=lambda a: a.start)
    for previous, current in zip(ordered, ordered[1:]):
        if current.start < previous.end:
            raise DataError(path, line, "actors",
                            f"spans {previous.start}:{previous.end} and {current.start}:{current.end} overlap")
    return actors


def _validate_stance(path: Path, line: int, raw: Any, labels: LabelSets) -> list[StanceLabel] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise DataError(path, line, "stance", f"expected a list, got {type(raw).__name__}")
    result: list[StanceLabel] = []
    for i, item in enumerate(raw):
        field = f"stance[{i}]"
        if not isinstance(item, dict):
            raise DataError(path, line, field, "expected an object with target and stance")
        target = item.get("target")
        if not isinstance(target, str) or not target.strip():
            raise DataError(path, line, f"{field}.target", "missing or empty")
        problem = text_problem(target)
        if problem:
            raise DataError(path, line, f"{field}.target", problem)
        stance = _check_label(path, line, f"{field}.stance", item.get("stance"), labels.stances, "stances")
        result.append(StanceLabel(target, stance))
    return result


def derive_label_sets(records: list[LabeledSentence], configured: LabelSets) -> LabelSets:
    """Fill the heads the config left open with the labels seen in the data (sorted); a head with no
    label in the config nor in the data gets [] and is left out of the model."""
    def seen(values: Any) -> list[str]:
        return sorted({v for v in values if v})

    return LabelSets(
        event_types=configured.event_types or seen(r.event_type for r in records),
        roles=configured.roles or seen(a.role for r in records for a in (r.actors or [])),
        stances=configured.stances or seen(s.stance for r in records for s in (r.stance or [])),
        actor_types=configured.actor_types or seen(a.type for r in records for a in (r.actors or [])),
        modes=configured.modes or seen(f"{r.event_type}/{r.mode}" for r in records if r.mode),
    )


def validate_record(row: dict[str, Any], labels: LabelSets, source: str = "record") -> LabeledSentence:
    """Check one record by exactly the rules `read_labeled_file` applies to a line of a file (the
    page validates a correction with it before saving, so retraining never refuses what was saved).
    The record's `source` is `source` itself."""
    record = _validate(Path(source), 1, row, labels)
    record.source = source
    return record


def label_sets_of(predictor: Any, absent_any: bool = False) -> LabelSets:
    """The labels a served model knows, read from its directory (through its Predictor). A head the
    model lacks gets [] (nothing accepted); with `absent_any`, None (anything accepted: `evaluate`
    does not score such a head, so its gold labels are no reason to stop)."""
    absent: list[str] | None = None if absent_any else []
    roles = sorted({label[2:] for label in predictor.bio_id2label.values() if label != "O"})
    return LabelSets(event_types=list(predictor.event_labels) or absent,
                     roles=roles or absent, stances=list(predictor.stance_labels) or absent,
                     actor_types=list(predictor.type_labels) or None,
                     modes=list(predictor.mode_labels) if predictor.event_labels else absent)


def unknown_labels(records: list[LabeledSentence], labels: LabelSets) -> list[tuple[str, str, str]]:
    """(source, field, label) for every gold label that `labels` lacks (a head left None accepts any)."""
    found: list[tuple[str, str, str]] = []

    def check(source: str, field: str, value: str | None, allowed: list[str] | None) -> None:
        if value and allowed is not None and value not in allowed:
            found.append((source, field, value))

    for r in records:
        check(r.source, "event_type", r.event_type, labels.event_types)
        check(r.source, "mode", f"{r.event_type}/{r.mode}" if r.mode else None, labels.modes)
        for i, actor in enumerate(r.actors or []):
            check(r.source, f"actors[{i}].role", actor.role, labels.roles)
            check(r.source, f"actors[{i}].type", actor.type, labels.actor_types)
        for i, stance in enumerate(r.stance or []):
            check(r.source, f"stance[{i}].stance", stance.stance, labels.stances)
    return found
