"""Corrections saved from the web page: training records (docs/spec.md) appended one line at a time, with
fsync, so a crash loses at most the line being written."""

from __future__ import annotations

import json
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

from eventcoder.training.data import DataError, LabelSets, validate_record

_lock = threading.Lock()


def correction_record(text: str, event_type: str, mode: str, actors: list[dict[str, Any]],
                      labels: LabelSets | None = None) -> dict[str, Any]:
    """A training record from a sentence corrected in the page, checked by the training reader's own
    rules (`validate_record`) against the model's labels, so retraining never refuses a saved line.

    Each actor has text-relative `start`/`end` (whole numbers), a `role`, optionally a `stance` and
    a `text`: when the text was edited and no longer matches the offsets, the offsets follow the text
    (its occurrence nearest the old start). `mode` may be written as the page shows it
    (`THREATEN/violence`) or bare (`violence`). A head the model lacks (its labels `[]`) is left out of
    the record: no event type, no actors, no stance entries. Raises ValueError with a message for the page."""
    labels = labels or LabelSets()
    mode = _bare_mode(event_type, (mode or "").strip())
    cleaned_actors, stance = [], []
    for i, actor in enumerate(actors):
        name = str(actor.get("text") or "").strip()
        label = f"actor {i + 1}" + (f" ({name!r})" if name else "")
        start, end = _whole_number(actor.get("start"), label), _whole_number(actor.get("end"), label)
        if not 0 <= start < end <= len(text):
            raise ValueError(f"{label}: offsets {start}:{end} fall outside the sentence")
        if name and text[start:end] != name:
            start, end = _locate(text, name, start, label)
        role = str(actor.get("role") or "").strip()
        if not role:
            raise ValueError(f"{label}: role is empty")
        entry: dict[str, Any] = {"start": start, "end": end, "role": role}
        if actor.get("type"):
            entry["type"] = str(actor["type"])
        cleaned_actors.append(entry)
        stance.append({"target": text[start:end], "stance": str(actor.get("stance") or "NONE").strip()})
    record: dict[str, Any] = {"text": text}
    if labels.event_types != [] or event_type:
        record["event_type"] = event_type
    if labels.roles != [] or cleaned_actors:
        record["actors"] = cleaned_actors
    if labels.stances != []:
        record["stance"] = stance
    if mode:
        record["mode"] = mode
    try:
        validate_record(record, labels, source="correction")
    except DataError as err:
        raise ValueError(f"field '{err.field}': {err.message}") from None
    return record


def _bare_mode(event_type: str, mode: str) -> str:
    """`THREATEN/violence` -> `violence`; a mode of another event type is an error."""
    if "/" not in mode:
        return mode
    owner, _, bare = mode.partition("/")
    if owner != event_type:
        raise ValueError(f"mode {mode!r} belongs to {owner}, not to {event_type}")
    return bare


def _whole_number(value: Any, label: str) -> int:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{label}: start and end must be whole numbers, got {value!r}")
    return int(number)


def _locate(text: str, name: str, near: int, label: str) -> tuple[int, int]:
    """Offsets of `name` in `text`: the occurrence nearest `near`."""
    found = [m.start() for m in re.finditer(re.escape(name), text)]
    if not found:
        raise ValueError(f"{label}: the sentence does not contain this text; correct the text or the offsets")
    start = min(found, key=lambda position: abs(position - near))
    return start, start + len(name)


def append_correction(path: Path | str, record: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")  # fails before the file is touched
    with _lock, path.open("a+b") as handle:
        _end_last_line(handle)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _end_last_line(handle: Any) -> None:
    """Before appending: a last line without its newline is what a crash mid-write leaves. Drop it
    (or, if it is a whole JSON record someone typed in by hand, end it) so the new line stays whole."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return
    handle.seek(end - 1)
    if handle.read(1) == b"\n":
        return
    start = end
    while start > 0:
        step = min(1 << 16, start)
        handle.seek(start - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            start = start - step + newline + 1
            break
        start -= step
    handle.seek(start)
    try:
        whole = isinstance(json.loads(handle.read(end - start).decode("utf-8")), dict)
    except (ValueError, RecursionError):
        whole = False
    if whole:
        handle.write(b"\n")
    else:
        handle.truncate(start)


def count_corrections(path: Path | str) -> int:
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("rb") as handle:  # bytes: a hand-edited file with bad bytes still counts
        return sum(1 for line in handle if line.strip())
