"""What `eventcoder score` writes: records as JSONL, CSV or Parquet, appended a committed chunk at a
time, and the checkpoint that says how far the output goes and which settings made it."""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eventcoder.model.files import atomic_path, atomic_write_text

OUTPUT_SUFFIXES = (".jsonl", ".csv", ".parquet")
CSV_FIELDS = ["doc_id", "sentence_index", "start", "end", "text", "event_type", "event_score", "event_scores",
              "mode", "mode_score", "actors", "stance", "model", "part"]
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); OWASP's advice
# is to make it text with a leading single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHECKPOINT_VERSION = 2


def output_path(output: str | Path) -> Path:
    path = Path(output)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{path}: output must end in {', '.join(OUTPUT_SUFFIXES)}")
    return path


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint")


def parts_path(output: Path) -> Path:
    """Where a Parquet output's committed chunks wait (one file each) until the run ends."""
    return output.with_name(output.name + ".parts")


def flat_row(record: dict[str, Any]) -> dict[str, Any]:
    """A prediction record with its nested fields as JSON strings (CSV and Parquet)."""
    # `part` is only on pieces of an overlong sentence; a head the model lacks leaves its columns empty
    row = {k: record.get(k, "" if k == "part" else None) for k in CSV_FIELDS}
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in row.items()}


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ tab or CR gets a
    leading single quote."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_row(record: dict[str, Any], raw: bool = False) -> dict[str, Any]:
    """A record as a CSV row; unless `raw`, every cell passed through `csv_safe`."""
    row = flat_row(record)
    return row if raw else {k: csv_safe(v) for k, v in row.items()}


# ----------------------------------------------------------------------------- checkpoint
@dataclass
class Committed:
    """How far a run's output goes; a checkpoint saves it after every chunk."""

    documents: int = 0        # input rows consumed, scored or skipped
    scored: int = 0           # documents scored
    sentences: int = 0        # records written
    output_bytes: int = 0     # .jsonl/.csv: the output's size
    parts: int = 0            # .parquet: part files written
    skipped: list[str] = field(default_factory=list)
    event_counts: dict[str, int] = field(default_factory=dict)


# How a setting is named in messages (the option that sets it)
SETTING_NAMES = {"inputs": "inputs", "model": "--model", "model_version": "the model's version",
                 "backend": "--backend", "batch_size": "--batch-size", "chunk_size": "--chunk-size",
                 "split": "--no-split", "lines": "--lines", "targets": "--targets", "text_column": "--text-column",
                 "id_column": "--id-column", "csv_raw": "--csv-raw"}


class Checkpoint:
    """The committed state of a run and the settings that made its records (every one that changes a
    record: inputs, model and its version, backend, batch and chunk size, ...). Written atomically."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.settings = settings
        self.committed = Committed()

    def read(self) -> dict[str, Any] | None:
        """The saved checkpoint, or None when there is none."""
        if not self.path.is_file():
            return None
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{self.path} is unreadable ({str(err)[:80]}); delete it to start over") from None
        if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{self.path} was written by another version of eventcoder; delete it to start over")
        return saved

    def differences(self, saved: dict[str, Any]) -> list[str]:
        """Each setting of `saved` that differs from this run's, as "name: then X, now Y"."""
        old = saved.get("settings", {})
        found = []
        for key, name in SETTING_NAMES.items():
            if old.get(key) == self.settings.get(key):
                continue
            if key == "inputs":
                found.append(f"inputs: {_input_changes(old.get(key) or [], self.settings.get(key) or [])}")
            else:
                found.append(f"{name}: then {_shown(old.get(key))}, now {_shown(self.settings.get(key))}")
        return found

    def resume_from(self, saved: dict[str, Any]) -> None:
        self.committed = Committed(**{k: saved[k] for k in asdict(Committed())})

    def save(self) -> None:
        """{"version", "settings", then the fields of Committed ("documents", ...)}"""
        atomic_write_text(self.path, json.dumps({"version": CHECKPOINT_VERSION, "settings": self.settings,
                                                 **asdict(self.committed)}))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "default" if value is None else str(value)


def _input_changes(old: list[list[Any]], new: list[list[Any]]) -> str:
    """What differs between two input lists of [path, size, mtime_ns] (first few names)."""
    before, after = {p: rest for p, *rest in old}, {p: rest for p, *rest in new}
    changes = [f"{p} is new" for p in after if p not in before] + \
              [f"{p} is gone" for p in before if p not in after] + \
              [f"{p} changed" for p in after if p in before and before[p] != after[p]]
    if not changes:
        return "the same files in another order"
    return "; ".join(changes[:3]) + (f" (and {len(changes) - 3} more)" if len(changes) > 3 else "")


# ----------------------------------------------------------------------------- writer
class ChunkWriter:
    """Appends committed chunks to the output and keeps `committed` up to date (output size, parts).
    Opening it starts the output afresh, or with `resume` cuts a half-written chunk off its end."""

    def __init__(self, output: Path, committed: Committed, resume: bool, csv_raw: bool = False) -> None:
        self.output = output
        self.committed = committed
        self.csv_raw = csv_raw
        self.kind = output.suffix.lower()
        self.parts_dir = parts_path(output)
        if self.kind == ".parquet":
            if not resume:
                self._clear_parts()
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            return
        if resume and output.exists():
            with output.open("r+b") as handle:
                handle.truncate(committed.output_bytes)
        else:
            with output.open("w", encoding="utf-8", newline="") as handle:
                if self.kind == ".csv":
                    csv.DictWriter(handle, fieldnames=CSV_FIELDS).writeheader()
            committed.output_bytes = output.stat().st_size

    @staticmethod
    def missing_output(output: Path, committed: Committed) -> str | None:
        """What is missing of the output a checkpoint says was committed (None: it is all there)."""
        if output.suffix.lower() == ".parquet":
            parts = parts_path(output)
            found = len(list(parts.glob("part-*.parquet"))) if parts.is_dir() else 0
            if found < committed.parts:
                return f"{parts} holds {found} of the {committed.parts} parts it committed"
            return None
        size = output.stat().st_size if output.is_file() else None
        if size is None or size < committed.output_bytes:
            return f"{output} is {'missing' if size is None else 'shorter than it committed'}"
        return None

    def _clear_parts(self) -> None:
        if self.parts_dir.exists():
            for part in self.parts_dir.glob("*"):
                part.unlink()

    def write(self, records: list[dict[str, Any]]) -> None:
        if self.kind == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            index = self.committed.parts
            with atomic_path(self.parts_dir / f"part-{index:06d}.parquet") as tmp:
                pq.write_table(pa.Table.from_pylist([flat_row(r) for r in records], schema=parquet_schema()), tmp)
            self.committed.parts = index + 1
            return
        with self.output.open("a", encoding="utf-8", newline="") as handle:
            if self.kind == ".csv":
                csv.DictWriter(handle, fieldnames=CSV_FIELDS).writerows(csv_row(r, self.csv_raw) for r in records)
            else:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            handle.flush()
            os.fsync(handle.fileno())
        self.committed.output_bytes = self.output.stat().st_size

    def finish(self) -> None:
        """A Parquet output: join the parts into the output file (atomically) and remove them."""
        if self.kind != ".parquet":
            return
        import pyarrow.parquet as pq

        with atomic_path(self.output) as tmp, pq.ParquetWriter(tmp, parquet_schema()) as writer:
            for part in sorted(self.parts_dir.glob("part-*.parquet")):
                writer.write_table(pq.read_table(part))
        shutil.rmtree(self.parts_dir)

    def discard(self) -> None:
        """Remove what this writer wrote (a run that committed nothing leaves nothing behind)."""
        if self.kind == ".parquet":
            shutil.rmtree(self.parts_dir, ignore_errors=True)
        else:
            self.output.unlink(missing_ok=True)


def parquet_schema() -> Any:
    import pyarrow as pa

    types = {"sentence_index": pa.int64(), "start": pa.int64(), "end": pa.int64(), "event_score": pa.float64(),
             "mode_score": pa.float64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in CSV_FIELDS])
