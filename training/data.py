"""Reading and validating labeled data (SPEC JSONL, CSV, TSV).

Every problem is a `DataError` naming the file, the line and the field. A line may carry any
subset of the annotations (event_type, mode, actors, stance); a missing one is None and that head
does not learn from the line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

TEXT_FIELD = "text"


class DataError(ValueError):
    """Bad labeled data; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int, field: str, message: str) -> None:
        super().__init__(f"{path}:{line}: field '{field}': {message}")
        self.path, self.line, self.field, self.message = str(path), line, field, message


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


@dataclass
class LabelSets:
    """The labels a config allows; None for a head means "take them from the data"."""

    event_types: list[str] | None = None
    roles: list[str] | None = None
    stances: list[str] | None = None
    actor_types: list[str] | None = None
    modes: list[str] | None = None  # "TYPE/mode"


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw row) pairs. CSV/TSV rows count their header as line 1."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from _csv_rows(path, "\t" if suffix == ".tsv" else ",")
        return
    # Bytes, one line at a time: an undecodable byte is reported on its own line, however far into the file.
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DataError(path, line_no, "line", f"is not valid UTF-8 (byte {err.start + 1})") from None
            if not line.strip():
                continue
            if "\x00" in line:
                raise DataError(path, line_no, "line", "contains a NUL byte")
            row = _parse_json(path, line_no, "line", line)
            if not isinstance(row, dict):
                raise DataError(path, line_no, "line", f"expected a JSON object, got {type(row).__name__}")
            yield line_no, row


def _parse_json(path: Path, line: int, field: str, value: str) -> Any:
    """json.loads with every failure (bad syntax, nesting too deep, a number too long) as a DataError."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise DataError(path, line, field, f"not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise DataError(path, line, field, "not valid JSON (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise DataError(path, line, field, f"not valid JSON ({_short(str(err))})") from None


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Fields may be long (whole articles): lift csv's 131,072-character default for this read.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # Undecodable bytes become lone surrogates here and are reported with the row that holds them.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            fieldnames = reader.fieldnames
            if fieldnames is not None and any(_has_surrogate(name) for name in fieldnames):
                raise DataError(path, 1, "line", "is not valid UTF-8")
            if fieldnames is None or TEXT_FIELD not in fieldnames:
                raise DataError(path, 1, TEXT_FIELD, "the header has no 'text' column")
            for row in reader:
                cells = [c for v in row.values() for c in (v if isinstance(v, list) else [v]) if isinstance(c, str)]
                if any(_has_surrogate(c) for c in cells):
                    raise DataError(path, reader.line_num, "line", "is not valid UTF-8")
                yield reader.line_num, _decode_json_columns(path, reader.line_num, row)
        except csv.Error as err:
            raise DataError(path, reader.line_num, "line", f"unreadable CSV ({_short(str(err))})") from None


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_problem(value: str) -> str | None:
    """What makes a string unusable as text (the tokenizer rejects lone surrogates), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if _has_surrogate(value):
        return "is not valid Unicode (an unpaired surrogate or undecodable bytes)"
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _decode_json_columns(path: Path, line: int, row: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            raise DataError(path, line, "line", "more cells than header columns")
        if value is None or value == "":
            decoded[key] = None
        elif key in ("actors", "stance"):
            decoded[key] = _parse_json(path, line, key, value)
        else:
            decoded[key] = value
    return decoded


def read_labeled_file(path: str | Path, labels: LabelSets | None = None) -> list[LabeledSentence]:
    """Read and validate one labeled file; raises DataError on the first problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 0, "file", "does not exist")
    labels = labels or LabelSets()
    records = [_validate(path, line, row, labels) for line, row in _raw_rows(path)]
    if not records:
        raise DataError(path, 0, "file", "holds no labeled sentences")
    return records


def _check_label(path: Path, line: int, field: str, value: Any, allowed: list[str] | None) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(path, line, field, f"expected a label string, got {_short(repr(value))}")
    if allowed is not None and value not in allowed:
        raise DataError(path, line, field,
                        f"unknown label {_short(repr(value))} (the config allows {_short(', '.join(allowed), 300)})")
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
        event_type = _check_label(path, line, "event_type", event_type, labels.event_types)
    mode = row.get("mode")
    mode = None if mode in (None, "") else mode
    if mode is not None:
        if not isinstance(mode, str):
            raise DataError(path, line, "mode", f"expected a mode string, got {_short(repr(mode))}")
        if event_type is None:
            raise DataError(path, line, "mode", "a mode needs an event_type")
        allowed_modes = labels.modes
        _check_label(path, line, "mode", f"{event_type}/{mode}", allowed_modes)
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
        role = _check_label(path, line, f"{field}.role", item.get("role"), labels.roles)
        actor_type = item.get("type") or None
        if actor_type is not None:
            _check_label(path, line, f"{field}.type", actor_type, labels.actor_types)
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
        stance = _check_label(path, line, f"{field}.stance", item.get("stance"), labels.stances)
        result.append(StanceLabel(target, stance))
    return result


def derive_label_sets(records: list[LabeledSentence], configured: LabelSets) -> LabelSets:
    """Fill the heads the config left open with the labels seen in the data (sorted)."""
    def seen(values: Any) -> list[str]:
        return sorted({v for v in values if v})

    return LabelSets(
        event_types=configured.event_types or seen(r.event_type for r in records),
        roles=configured.roles or seen(a.role for r in records for a in (r.actors or [])),
        stances=configured.stances or seen(s.stance for r in records for s in (r.stance or [])) or ["NONE"],
        actor_types=configured.actor_types or seen(a.type for r in records for a in (r.actors or [])),
        modes=configured.modes or seen(f"{r.event_type}/{r.mode}" for r in records if r.mode),
    )


def validate_record(row: dict[str, Any], labels: LabelSets, source: str = "record") -> LabeledSentence:
    """Check one record by exactly the rules `read_labeled_file` applies to a line of a file (the
    page validates a correction with it before saving, so retraining never refuses what was saved)."""
    return _validate(Path(source), 1, row, labels)
