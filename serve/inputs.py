"""What `eventcoder score` reads: input discovery (files, folders, globs, stdin), one reader per
format, and document ids.

Readers stream documents and hand back bad rows as DataError values (not raised), so the run
loop can stop at the first or skip them. Ids: a row's id column (or its row/line number; a .txt
file read whole is its file name), after the file's prefix when a run reads several files: the
file's path relative to the folder given, or as given (so `x/a.txt` and `y/a.txt` never share ids).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import os
import re
import sys
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from eventcoder.model.files import DataError, decode_line, has_surrogate, lift_csv_field_limit, parse_json, text_problem

if TYPE_CHECKING:
    from eventcoder.serve.scoring import ScoreOptions

FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".jsonl.gz", ".parquet")
STDIN = "-"
STDIN_NAME = "<stdin>"
DEFAULT_ID_COLUMN = "id"


@dataclass
class Document:
    doc_id: str
    text: str
    targets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InputFile:
    """One input: a file (or stdin, `path` None), its format and the prefix of its documents' ids."""

    path: Path | None
    format: str
    prefix: str = ""

    @property
    def name(self) -> str:
        """How error messages name it."""
        return STDIN_NAME if self.path is None else str(self.path)


@dataclass
class InputScan:
    """The files a run reads, the folders it searched, and the files it passed over there (hidden, or
    of no input format)."""

    files: list[InputFile]
    passed_over: list[str]
    folders: list[Path] = field(default_factory=list)


class Line(NamedTuple):
    number: int
    text: str | DataError


def input_format(path: Path | str) -> str | None:
    """The format of a file name (one of FORMATS), or None."""
    name = str(path).lower()
    return next((f for f in sorted(FORMATS, key=len, reverse=True) if name.endswith(f)), None)


# ----------------------------------------------------------------------------- discovery
class _Found(NamedTuple):
    path: Path | None   # None: stdin
    format: str
    given: str          # the path as given (a folder's files: the folder as given / their path in it)
    in_folder: str      # a folder's files: their path relative to it; else as given


def expand_inputs(inputs: list[str], lines: bool = False,
                  is_own: Callable[[Path], bool] = lambda path: False) -> InputScan:
    """Files, folders (searched recursively; hidden files and folders left out), globs and `-`
    (stdin: plain text lines with `lines`, else JSONL), in a stable order, each file once.
    `is_own(path)`: a file the run itself writes (its output, checkpoint, parts); never read."""
    found: list[_Found] = []
    passed_over: list[str] = []
    folders: list[Path] = []
    for item in inputs:
        if item == STDIN:
            found.append(_Found(None, ".txt" if lines else ".jsonl", STDIN_NAME, STDIN_NAME))
            continue
        globbed = any(c in item for c in "*?[")
        matches = sorted(glob.glob(item, recursive=True)) if globbed else [item]
        if not matches:
            raise FileNotFoundError(f"{item}: no file matches")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                folders.append(path)
                files, skipped = _scan_folder(path, is_own)
                found.extend(_Found(file, fmt, file.as_posix(), file.relative_to(path).as_posix()) for file, fmt in files)
                passed_over.extend(skipped)
            elif path.is_file():
                fmt = input_format(path)
                if globbed and (fmt is None or is_own(path)):  # a glob takes the inputs it matches
                    if fmt is None:
                        passed_over.append(path.as_posix())
                    continue
                if fmt is None:
                    raise ValueError(f"{path}: unsupported input type (use {', '.join(FORMATS)}, or - for stdin)")
                if is_own(path):
                    raise ValueError(f"{path} is this run's output (or its checkpoint or parts), so it cannot be "
                                     "an input too: write the output elsewhere")
                found.append(_Found(path, fmt, path.as_posix(), path.as_posix()))
            else:
                raise FileNotFoundError(f"{path}: no such file or folder")
    if sum(f.path is None for f in found) > 1:
        raise ValueError("stdin (-) can be read only once")
    unique: list[_Found] = []
    seen: set[Path] = set()
    for item in found:  # a file reached twice (a folder and a glob in it) is read once
        key = item.path.resolve() if item.path is not None else None
        if key is None or key not in seen:
            unique.append(item)
            if key is not None:
                seen.add(key)
    if not unique:
        raise FileNotFoundError(f"no input files found in {', '.join(inputs)}")
    one_folder = len(inputs) == 1 and inputs[0] != STDIN and Path(inputs[0]).is_dir()

    def prefix(found: _Found) -> str:
        """Before a document's id when a run reads several files: the file's path in the one folder
        given, else as given."""
        if len(unique) == 1:
            return ""
        return f"{found.in_folder if one_folder else found.given}:"

    return InputScan([InputFile(f.path, f.format, prefix(f)) for f in unique], passed_over, folders)


def _scan_folder(folder: Path, is_own: Callable[[Path], bool]) -> tuple[list[tuple[Path, str]], list[str]]:
    """The input files under `folder` (sorted as paths), and what was passed over: hidden files and
    folders (not entered) and files of no input format. The run's own files are left out unsaid."""
    files: list[tuple[Path, str]] = []
    passed_over: list[str] = []
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        passed_over.extend(f"{(base / d).as_posix()}/" for d in sorted(dirs) if d.startswith("."))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_own(base / d))
        for name in sorted(names):
            path = base / name
            if is_own(path):
                continue
            fmt = None if name.startswith(".") else input_format(name)
            if fmt is None:
                passed_over.append(path.as_posix())
            elif path.is_file():
                files.append((path, fmt))
    files.sort()
    return files, passed_over


# ----------------------------------------------------------------------------- readers
def read_documents(source: Path | InputFile, options: ScoreOptions, prefix: str = "") -> Iterator[Document | DataError]:
    """Documents of one input, streamed. Bad rows come out as DataError values (not raised) so the
    caller can stop or skip them."""
    if isinstance(source, Path):
        source = InputFile(source, input_format(source) or source.suffix.lower(), prefix)
    if source.format == ".txt":
        yield from (_read_txt_lines if options.lines else _read_txt_whole)(source, options)
    elif source.format in (".csv", ".tsv"):
        yield from _read_csv(source, options, "\t" if source.format == ".tsv" else ",")
    elif source.format in (".jsonl", ".jsonl.gz"):
        yield from _read_jsonl(source, options)
    elif source.format == ".parquet":
        yield from _read_parquet(source, options)


def iter_documents(files: list[InputFile], options: ScoreOptions) -> Iterator[Document | DataError]:
    for source in files:
        yield from read_documents(source, options)


@contextmanager
def _open_binary(source: InputFile) -> Iterator[IO[bytes]]:
    """The input's bytes: stdin, a gzip stream or the file."""
    if source.path is None:
        yield sys.stdin.buffer
    elif source.format.endswith(".gz"):
        with gzip.open(source.path, "rb") as handle:
            yield handle  # type: ignore[misc]
    else:
        with source.path.open("rb") as handle:
            yield handle


def _check_text(name: str, line: int, field_name: str, value: Any) -> str | DataError:
    if value is None:
        return DataError(name, line, field_name, "missing")
    if not isinstance(value, str):
        return DataError(name, line, field_name, f"expected text, got {type(value).__name__}")
    if "\x00" in value:
        return DataError(name, line, field_name, "contains a NUL byte")
    problem = text_problem(value)  # unpaired surrogates (from JSON escapes) would crash the tokenizer
    if problem:
        return DataError(name, line, field_name, problem)
    return value


def _check_id(name: str, line: int, options: ScoreOptions, raw: Any, row_no: int) -> str | DataError:
    """A row's id: its id column, or its row number where that is missing (None) and was not asked for."""
    column = options.id_column or DEFAULT_ID_COLUMN
    if raw is None:
        if options.id_column is not None:
            return DataError(name, line, column, "missing (the id column given with --id-column)")
        return str(row_no)
    if isinstance(raw, str) and text_problem(raw):
        return DataError(name, line, column, text_problem(raw) or "")
    return str(raw)


def _missing_column(name: str, options: ScoreOptions, columns: list[str]) -> DataError | None:
    """A file-level error when the text column, or an id column given explicitly, is not in the header."""
    listed = ", ".join(columns)
    if options.text_column not in columns:
        return DataError(name, 1, options.text_column,
                         f"no such column (columns: {listed}); choose one with --text-column")
    if options.id_column is not None and options.id_column not in columns:
        return DataError(name, 1, options.id_column, f"no such column (columns: {listed}); choose one with --id-column")
    return None


def _read_txt_whole(source: InputFile, options: ScoreOptions) -> Iterator[Document | DataError]:
    """The whole file is one document; a problem is reported on the line that holds it."""
    assert source.path is not None  # stdin is read as lines
    data = source.path.read_bytes()
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    text = body.decode("utf-8", "surrogateescape")
    undecodable = re.search("[\udc80-\udcff]", text)
    nul = text.find("\x00")
    if undecodable and (nul < 0 or undecodable.start() < nul):
        yield DataError(source.name, text.count("\n", 0, undecodable.start()) + 1, "line", "is not valid UTF-8")
        return
    checked = _check_text(source.name, text.count("\n", 0, nul) + 1 if nul >= 0 else 1, "text", text)
    yield checked if isinstance(checked, DataError) else \
        Document(source.prefix + source.path.stem, checked, list(options.targets))


def _read_txt_lines(source: InputFile, options: ScoreOptions) -> Iterator[Document | DataError]:
    for line in _decoded_lines(source):
        if isinstance(line.text, DataError):
            yield line.text
            continue
        checked = _check_text(source.name, line.number, "text", line.text.rstrip("\r\n"))
        yield checked if isinstance(checked, DataError) else \
            Document(f"{source.prefix}{line.number}", checked, list(options.targets))


def _decoded_lines(source: InputFile) -> Iterator[Line]:
    """Every non-blank line of an input, decoded (or the DataError naming it). A broken gzip stream
    ends the input with a DataError on the line it broke in."""
    line_no = 0
    with _open_binary(source) as handle:
        try:
            for line_no, raw in enumerate(handle, start=1):
                text = decode_line(source.name, line_no, raw)
                if isinstance(text, DataError) or text.strip():
                    yield Line(line_no, text)
        except (OSError, EOFError, zlib.error) as err:
            if source.path is None or not source.format.endswith(".gz"):
                raise
            yield Line(line_no + 1, DataError(source.name, line_no + 1, "file", f"not a readable gzip file ({err})"))


def _read_csv(source: InputFile, options: ScoreOptions, delimiter: str) -> Iterator[Document | DataError]:
    lift_csv_field_limit()
    name = source.name
    # Undecodable bytes come through as lone surrogates and make only their own row bad.
    with _open_binary(source) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                                       newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            header = reader.fieldnames
        except csv.Error as err:
            yield DataError(name, 1, "header", f"unreadable ({err})")
            return
        if header and any(has_surrogate(column) for column in header):
            yield DataError(name, 1, "header", "is not valid UTF-8")
            return
        missing = _missing_column(name, options, list(header or []))
        if missing is not None:
            yield missing
            return
        assert header is not None
        id_column = options.id_column or DEFAULT_ID_COLUMN
        row_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as err:
                yield DataError(name, reader.line_num + 1, "line", f"unreadable ({err.__class__.__name__})")
                return
            row_no += 1
            undecodable = next((column for column in header if has_surrogate(row.get(column))), None)
            if undecodable is not None:
                yield DataError(name, reader.line_num, undecodable, "is not valid UTF-8")
                continue
            text = _check_text(name, reader.line_num, options.text_column, row.get(options.text_column))
            if isinstance(text, DataError):
                yield text
                continue
            doc_id = _check_id(name, reader.line_num, options, row.get(id_column) or None, row_no)  # "": no id
            yield doc_id if isinstance(doc_id, DataError) else Document(source.prefix + doc_id, text, list(options.targets))


def _read_jsonl(source: InputFile, options: ScoreOptions) -> Iterator[Document | DataError]:
    name = source.name
    id_column = options.id_column or DEFAULT_ID_COLUMN
    for line in _decoded_lines(source):
        if isinstance(line.text, DataError):
            yield line.text
            continue
        line_no = line.number
        try:
            row = parse_json(name, line_no, "line", line.text, column=False)
        except DataError as err:
            yield err
            continue
        if not isinstance(row, dict):
            yield DataError(name, line_no, "line", "expected a JSON object")
            continue
        text = _check_text(name, line_no, options.text_column, row.get(options.text_column))
        if isinstance(text, DataError):
            yield text
            continue
        targets = row.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            yield DataError(name, line_no, "targets", "expected a list of strings")
            continue
        problem = next((text_problem(t) for t in targets if text_problem(t)), None)
        if problem:
            yield DataError(name, line_no, "targets", problem)
            continue
        doc_id = _check_id(name, line_no, options, row.get(id_column), line_no)
        if isinstance(doc_id, DataError):
            yield doc_id
            continue
        yield Document(source.prefix + doc_id, text, list(options.targets) + [t for t in targets if t not in options.targets])


def _read_parquet(source: InputFile, options: ScoreOptions) -> Iterator[Document | DataError]:
    import pyarrow.parquet as pq

    name = source.name
    try:
        parquet = pq.ParquetFile(source.path)
    except Exception as err:  # pyarrow raises several types for a bad file
        yield DataError(name, 0, "file", f"not a readable Parquet file ({err})")
        return
    names = parquet.schema_arrow.names
    missing = _missing_column(name, options, names)
    if missing is not None:
        yield DataError(name, 0, missing.field, missing.message)
        return
    id_column = options.id_column or DEFAULT_ID_COLUMN
    columns = [options.text_column] + ([id_column] if id_column in names else [])
    row_no = 0
    for batch in parquet.iter_batches(batch_size=1024, columns=columns):
        data = batch.to_pydict()
        for i, value in enumerate(data[options.text_column]):
            row_no += 1
            text = _check_text(name, row_no, options.text_column, value)
            if isinstance(text, DataError):
                yield text
                continue
            doc_id = _check_id(name, row_no, options, data[id_column][i] if id_column in data else None, row_no)
            yield doc_id if isinstance(doc_id, DataError) else Document(source.prefix + doc_id, text, list(options.targets))
