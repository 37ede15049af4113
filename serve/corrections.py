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
        start, end = int(actor["start"]), int(actor["end"])
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
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _lock, path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def count_corrections(path: Path | str) -> int:
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())
