"""Corrections saved from the web page: SPEC training records appended one line at a time, with
fsync, so a crash loses at most the line being written."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def correction_record(text: str, event_type: str, mode: str, actors: list[dict[str, Any]]) -> dict[str, Any]:
    """A SPEC training record from a corrected sentence. Each actor needs text-relative
    start/end, a role and optionally a stance; invalid spans raise ValueError."""
    cleaned_actors, stance = [], []
    for i, actor in enumerate(actors):
        try:
            start, end = int(actor["start"]), int(actor["end"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError(f"actor {i + 1}: start and end must be whole numbers") from None
        if not 0 <= start < end <= len(text):
            raise ValueError(f"actor {i + 1}: offsets {start}:{end} fall outside the sentence")
        role = str(actor.get("role", "")).strip()
        if not role:
            raise ValueError(f"actor {i + 1}: role is empty")
        entry: dict[str, Any] = {"start": start, "end": end, "role": role}
        if actor.get("type"):
            entry["type"] = str(actor["type"])
        cleaned_actors.append(entry)
        stance.append({"target": text[start:end], "stance": str(actor.get("stance") or "NONE")})
    ordered = sorted(cleaned_actors, key=lambda a: a["start"])
    for a, b in zip(ordered, ordered[1:]):
        if b["start"] < a["end"]:
            raise ValueError(f"actors {a['start']}:{a['end']} and {b['start']}:{b['end']} overlap")
    record: dict[str, Any] = {"text": text, "event_type": event_type, "actors": cleaned_actors, "stance": stance}
    if mode:
        record["mode"] = mode
    return record


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
