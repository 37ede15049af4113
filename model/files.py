"""Reading and writing files safely, for every reader and writer of the project.

- `DataError`: a bad input, its message naming file, line and field (`data.jsonl:7: field 'text': ...`).
- UTF-8: `decode_line` (a line of bytes, a BOM allowed on line 1), `has_surrogate` / `text_problem`
  (strings holding undecodable bytes or unpaired surrogates, which would crash the tokenizer).
- `parse_json`: json.loads with every failure (bad syntax, nesting too deep, a number too long) as a DataError.
- `lift_csv_field_limit`: csv refuses cells over 131,072 characters by default; an article is longer.
- `atomic_path` / `atomic_write_text`: a file appears whole or not at all (temp sibling, fsync, rename).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


class DataError(ValueError):
    """Bad input data; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int, field: str, message: str) -> None:
        super().__init__(f"{path}:{line}: field '{field}': {message}")
        self.path, self.line, self.field, self.message = str(path), line, field, message


# ----------------------------------------------------------------------------- text
def has_surrogate(value: Any) -> bool:
    """A string holding lone surrogates: bytes that were not UTF-8 (decoded with
    errors="surrogateescape"), or a `\\ud800`-style JSON escape."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_problem(value: str) -> str | None:
    """What makes a string unusable as text (the tokenizer rejects lone surrogates), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if has_surrogate(value):
        return "is not valid Unicode (an unpaired surrogate or undecodable bytes)"
    return None


def decode_line(path: str | Path, line_no: int, raw: bytes) -> str | DataError:
    """One line of a file as text (a byte-order mark allowed on line 1), or the DataError naming it."""
    try:
        return raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
    except UnicodeDecodeError as err:
        return DataError(path, line_no, "line", f"is not valid UTF-8 (byte {err.start + 1})")


def short(value: Any, limit: int = 60) -> str:
    """`value` for an error message: cut to `limit` characters, saying how long it was."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def parse_json(path: str | Path, line: int, field: str, value: str, column: bool = True) -> Any:
    """json.loads with every failure as a DataError (`column`: say where in the line it broke)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        where = f" at column {err.colno}" if column else ""
        raise DataError(path, line, field, f"not valid JSON ({err.msg}{where})") from None
    except RecursionError:
        raise DataError(path, line, field, "not valid JSON (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise DataError(path, line, field, f"not valid JSON ({short(str(err))})") from None


def lift_csv_field_limit() -> None:
    """Let csv read cells of any length (whole articles); call it before reading CSV."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


# ----------------------------------------------------------------------------- writing
def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write; when the block ends it is fsynced and renamed to
    `path`, so readers (and a run after a crash) see the old file or the whole new one. If the
    block raises, the temporary file is removed and `path` is left as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
