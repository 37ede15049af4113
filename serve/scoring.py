"""Batch scoring: stream documents from files, code them in chunks, commit each chunk with a
checkpoint so that `--resume` finishes an interrupted run with no row lost and none doubled."""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from eventcoder.training.data import DataError, text_problem

INPUT_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
OUTPUT_SUFFIXES = (".jsonl", ".csv", ".parquet")
CSV_FIELDS = ["doc_id", "sentence_index", "start", "end", "text", "event_type", "event_score", "event_scores",
              "mode", "mode_score", "actors", "stance", "model"]
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Document:
    doc_id: str
    text: str
    targets: list[str] = field(default_factory=list)


@dataclass
class ScoreOptions:
    inputs: list[str]
    output: str
    model: str = "models/default"
    split: bool = True
    lines: bool = False
    targets: list[str] = field(default_factory=list)
    text_column: str = "text"
    id_column: str = "id"
    chunk_size: int = 0   # 0: LINES_CHUNK_SIZE with `lines`, else DOCUMENTS_CHUNK_SIZE
    resume: bool = False
    on_error: str = "fail"
    summary_png: str | None = None
    backend: str = "auto"
    batch_size: int = 32
    progress: bool = True

    def __post_init__(self) -> None:
        if self.chunk_size <= 0:
            self.chunk_size = LINES_CHUNK_SIZE if self.lines else DOCUMENTS_CHUNK_SIZE


# Documents per committed chunk (one Predictor.predict call). A line is about one sentence, so line
# chunks are larger: sorting 1,024 sentences by length wastes ~4% on padding against ~13% for 256,
# and the scorer runs 440 sentences/s instead of ~400. A document is often 10-50 sentences, so 256
# of them are thousands of sentences already, and more would only cost memory.
LINES_CHUNK_SIZE = 1024
DOCUMENTS_CHUNK_SIZE = 256


@dataclass
class ScoreResult:
    documents: int
    sentences: int
    skipped: list[str]
    event_counts: dict[str, int]
    seconds: float


# ----------------------------------------------------------------------------- inputs
def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (searched recursively) and globs, in a stable order."""
    paths: list[Path] = []
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=True)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise FileNotFoundError(f"{item}: no file matches")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                paths.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in INPUT_SUFFIXES and p.is_file()))
            elif path.is_file():
                if path.suffix.lower() not in INPUT_SUFFIXES:
                    raise ValueError(f"{path}: unsupported input type (use {', '.join(INPUT_SUFFIXES)})")
                paths.append(path)
            else:
                raise FileNotFoundError(f"{path}: no such file or folder")
    if not paths:
        raise FileNotFoundError(f"no input files found in {', '.join(inputs)}")
    return paths


def read_documents(path: Path, options: ScoreOptions, prefix: str = "") -> Iterator[Document | DataError]:
    """Documents of one input file, streamed. Bad rows come out as DataError values (not raised)
    so the caller can stop or skip them."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        yield from _read_txt(path, options, prefix)
    elif suffix in (".csv", ".tsv"):
        yield from _read_csv(path, options, prefix, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        yield from _read_jsonl(path, options, prefix)
    elif suffix == ".parquet":
        yield from _read_parquet(path, options, prefix)


def _check_text(path: Path, line: int, field_name: str, value: Any) -> str | DataError:
    if value is None:
        return DataError(path, line, field_name, "missing")
    if not isinstance(value, str):
        return DataError(path, line, field_name, f"expected text, got {type(value).__name__}")
    if "\x00" in value:
        return DataError(path, line, field_name, "contains a NUL byte")
    problem = text_problem(value)  # unpaired surrogates (from JSON escapes) would crash the tokenizer
    if problem:
        return DataError(path, line, field_name, problem)
    return value


def _decode_line(path: Path, line_no: int, raw: bytes) -> str | DataError:
    try:
        return raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
    except UnicodeDecodeError:
        return DataError(path, line_no, "line", "is not valid UTF-8")


def _read_txt(path: Path, options: ScoreOptions, prefix: str) -> Iterator[Document | DataError]:
    if not options.lines:  # the whole file is one document; a problem is reported on the line that holds it
        data = path.read_bytes()
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        text = body.decode("utf-8", "surrogateescape")
        undecodable = re.search("[\udc80-\udcff]", text)
        nul = text.find("\x00")
        if undecodable and (nul < 0 or undecodable.start() < nul):
            yield DataError(path, text.count("\n", 0, undecodable.start()) + 1, "line", "is not valid UTF-8")
            return
        checked = _check_text(path, text.count("\n", 0, nul) + 1 if nul >= 0 else 1, "text", text)
        yield checked if isinstance(checked, DataError) else Document(prefix + path.stem, checked, list(options.targets))
        return
    for line_no, text in _decoded_lines(path):
        if isinstance(text, DataError):
            yield text
            continue
        checked = _check_text(path, line_no, "text", text.rstrip("\r\n"))
        yield checked if isinstance(checked, DataError) else Document(f"{prefix}{line_no}", checked, list(options.targets))


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | DataError]]:
    """(line number, decoded line or the decoding error) for every non-blank line of a file."""
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            text = _decode_line(path, line_no, raw)
            if isinstance(text, DataError) or text.strip():
                yield line_no, text


def _undecodable(value: Any) -> bool:
    """A string holding bytes that were not UTF-8 (decoded with errors="surrogateescape")."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_csv(path: Path, options: ScoreOptions, prefix: str, delimiter: str) -> Iterator[Document | DataError]:
    # Undecodable bytes come through as lone surrogates and make only their own row bad.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            header = reader.fieldnames
        except csv.Error as err:
            yield DataError(path, 1, "header", f"unreadable ({err})")
            return
        if header and any(_undecodable(name) for name in header):
            yield DataError(path, 1, "header", "is not valid UTF-8")
            return
        if not header or options.text_column not in header:
            yield DataError(path, 1, options.text_column,
                            f"no such column (columns: {', '.join(header or [])}); choose one with --text-column")
            return
        row_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as err:
                yield DataError(path, reader.line_num + 1, "line", f"unreadable ({err.__class__.__name__})")
                return
            row_no += 1
            undecodable = next((name for name in header if _undecodable(row.get(name))), None)
            if undecodable is not None:
                yield DataError(path, reader.line_num, undecodable, "is not valid UTF-8")
                continue
            text = _check_text(path, reader.line_num, options.text_column, row.get(options.text_column))
            if isinstance(text, DataError):
                yield text
                continue
            doc_id = row.get(options.id_column) or str(row_no)
            yield Document(prefix + doc_id, text, list(options.targets))


def _read_jsonl(path: Path, options: ScoreOptions, prefix: str) -> Iterator[Document | DataError]:
    for line_no, line in _decoded_lines(path):
        if isinstance(line, DataError):
            yield line
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            yield DataError(path, line_no, "line", f"not valid JSON ({err.msg})")
            continue
        except RecursionError:
            yield DataError(path, line_no, "line", "not valid JSON (nested too deeply)")
            continue
        except ValueError as err:  # an integer of more than 4,300 digits
            yield DataError(path, line_no, "line", f"not valid JSON ({str(err)[:60]})")
            continue
        if not isinstance(row, dict):
            yield DataError(path, line_no, "line", "expected a JSON object")
            continue
        text = _check_text(path, line_no, options.text_column, row.get(options.text_column))
        if isinstance(text, DataError):
            yield text
            continue
        targets = row.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            yield DataError(path, line_no, "targets", "expected a list of strings")
            continue
        problem = next((text_problem(t) for t in targets if text_problem(t)), None)
        if problem:
            yield DataError(path, line_no, "targets", problem)
            continue
        raw_id = row.get(options.id_column)
        if isinstance(raw_id, str) and text_problem(raw_id):
            yield DataError(path, line_no, options.id_column, text_problem(raw_id) or "")
            continue
        doc_id = str(raw_id) if raw_id is not None else str(line_no)
        yield Document(prefix + doc_id, text, list(options.targets) + [t for t in targets if t not in options.targets])


def _read_parquet(path: Path, options: ScoreOptions, prefix: str) -> Iterator[Document | DataError]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        yield DataError(path, 0, "file", f"not a readable Parquet file ({err})")
        return
    names = parquet.schema_arrow.names
    if options.text_column not in names:
        yield DataError(path, 0, options.text_column, f"no such column (columns: {', '.join(names)})")
        return
    columns = [options.text_column] + ([options.id_column] if options.id_column in names else [])
    row_no = 0
    for batch in parquet.iter_batches(batch_size=1024, columns=columns):
        data = batch.to_pydict()
        for i, value in enumerate(data[options.text_column]):
            row_no += 1
            text = _check_text(path, row_no, options.text_column, value)
            if isinstance(text, DataError):
                yield text
                continue
            raw_id = data[options.id_column][i] if options.id_column in data else None
            yield Document(prefix + (str(raw_id) if raw_id is not None else str(row_no)), text, list(options.targets))


def input_prefix(path: Path, multiple: bool) -> str:
    """What goes before a document's id: the file name when a run reads several files."""
    return f"{path.name}:" if multiple else ""


def iter_documents(paths: list[Path], options: ScoreOptions) -> Iterator[Document | DataError]:
    multiple = len(paths) > 1
    for path in paths:
        yield from read_documents(path, options, prefix=input_prefix(path, multiple))


# ----------------------------------------------------------------------------- outputs
def flat_row(record: dict[str, Any]) -> dict[str, Any]:
    """A prediction record with its nested fields as JSON strings (CSV and Parquet)."""
    return {k: json.dumps(record[k], ensure_ascii=False) if isinstance(record[k], (dict, list)) else record[k]
            for k in CSV_FIELDS}


class Checkpoint:
    """What has been committed: documents consumed, output size, counts. Written atomically."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.state: dict[str, Any] = {"fingerprint": fingerprint, "documents": 0, "sentences": 0,
                                      "output_bytes": 0, "parts": 0, "skipped": [], "event_counts": {}}

    def load(self) -> bool:
        if not self.path.is_file():
            return False
        state = json.loads(self.path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.state["fingerprint"]:
            raise ValueError(f"{self.path} belongs to a run with other inputs, model or options; delete it to start over")
        self.state = state
        return True

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state), encoding="utf-8")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


class ChunkWriter:
    """Appends committed chunks to the output; truncates a half-written chunk on resume."""

    def __init__(self, output: Path, checkpoint: Checkpoint, resume: bool) -> None:
        self.output = output
        self.checkpoint = checkpoint
        self.kind = output.suffix.lower()
        self.parts_dir = output.with_name(output.name + ".parts")
        if self.kind == ".parquet":
            if not resume:
                self._clear_parts()
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            return
        if resume and output.exists():
            with output.open("r+b") as handle:
                handle.truncate(checkpoint.state["output_bytes"])
        elif not resume or not output.exists():
            with output.open("w", encoding="utf-8", newline="") as handle:
                if self.kind == ".csv":
                    csv.DictWriter(handle, fieldnames=CSV_FIELDS).writeheader()
            checkpoint.state["output_bytes"] = output.stat().st_size

    def _clear_parts(self) -> None:
        if self.parts_dir.exists():
            for part in self.parts_dir.glob("*"):
                part.unlink()

    def write(self, records: list[dict[str, Any]]) -> None:
        if self.kind == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            index = self.checkpoint.state["parts"]
            final = self.parts_dir / f"part-{index:06d}.parquet"
            tmp = final.with_suffix(".tmp")
            pq.write_table(pa.Table.from_pylist([flat_row(r) for r in records], schema=_parquet_schema()), tmp)
            os.replace(tmp, final)
            self.checkpoint.state["parts"] = index + 1
            return
        with self.output.open("a", encoding="utf-8", newline="") as handle:
            if self.kind == ".csv":
                writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
                writer.writerows(flat_row(r) for r in records)
            else:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            handle.flush()
            os.fsync(handle.fileno())
        self.checkpoint.state["output_bytes"] = self.output.stat().st_size

    def finish(self) -> None:
        if self.kind != ".parquet":
            return
        import pyarrow.parquet as pq

        tmp = self.output.with_name(self.output.name + ".tmp")
        with pq.ParquetWriter(tmp, _parquet_schema()) as writer:
            for part in sorted(self.parts_dir.glob("part-*.parquet")):
                writer.write_table(pq.read_table(part))
        os.replace(tmp, self.output)
        self._clear_parts()
        self.parts_dir.rmdir()


def _parquet_schema() -> Any:
    import pyarrow as pa

    types = {"sentence_index": pa.int64(), "start": pa.int64(), "end": pa.int64(), "event_score": pa.float64(),
             "mode_score": pa.float64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in CSV_FIELDS])


def _fingerprint(paths: list[Path], options: ScoreOptions) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    digest.update(json.dumps([options.model, options.split, options.lines, options.targets, options.text_column,
                              options.id_column, options.chunk_size]).encode())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- the run
def output_path(options: ScoreOptions) -> Path:
    output = Path(options.output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{output}: output must end in {', '.join(OUTPUT_SUFFIXES)}")
    return output


def score_files(options: ScoreOptions, predictor: Any = None) -> ScoreResult:
    output = output_path(options)
    bad_target = next((t for t in options.targets if text_problem(t)), None)
    if bad_target is not None:
        raise ValueError(f"--targets: {bad_target!r} {text_problem(bad_target)}")
    paths = expand_inputs(options.inputs)
    if predictor is None:
        from eventcoder.model.predictor import Predictor

        predictor = Predictor.from_pretrained(options.model, backend=options.backend, batch_size=options.batch_size)
    checkpoint = Checkpoint(output.with_name(output.name + ".checkpoint"), _fingerprint(paths, options))
    if options.resume:
        if not checkpoint.load():
            raise ValueError(f"nothing to resume: {checkpoint.path} does not exist")
    elif checkpoint.path.exists():
        raise ValueError(f"{checkpoint.path} shows an interrupted run: add --resume to finish it, or delete it to start over")
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = ChunkWriter(output, checkpoint, options.resume)
    checkpoint.save()

    state = checkpoint.state
    counts: Counter[str] = Counter(state["event_counts"])
    skip_until = state["documents"]
    started = time.perf_counter()
    progress = _progress(options.progress)
    consumed = 0
    chunk: list[Document] = []

    def commit(chunk_docs: list[Document], consumed_now: int) -> None:
        records: list[dict[str, Any]] = []
        if chunk_docs:
            predictions = predictor.predict([d.text for d in chunk_docs], targets=[d.targets for d in chunk_docs],
                                            split=options.split, doc_ids=[d.doc_id for d in chunk_docs])
            records = [p.to_dict() for p in predictions]
        writer.write(records)
        counts.update(r["event_type"] for r in records)
        state["documents"] = consumed_now
        state["sentences"] += len(records)
        state["event_counts"] = dict(counts)
        checkpoint.save()
        progress.update(consumed_now - skip_until, state["sentences"], time.perf_counter() - started)

    for item in iter_documents(paths, options):
        consumed += 1
        if consumed <= skip_until:
            continue
        if isinstance(item, DataError):
            if options.on_error == "fail":
                raise item
            state["skipped"].append(str(item))
            continue
        chunk.append(item)
        if len(chunk) >= options.chunk_size:
            commit(chunk, consumed)
            chunk = []
    commit(chunk, consumed)
    writer.finish()
    progress.close()
    checkpoint.path.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    result = ScoreResult(state["documents"], state["sentences"], list(state["skipped"]), dict(counts), seconds)
    _print_summary(result, output)
    if options.summary_png:
        draw_summary(result.event_counts, Path(options.summary_png))
    return result


class _progress:
    """A tqdm bar over documents showing documents and sentences per second."""

    def __init__(self, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(disable=not enabled, unit="doc", desc="scoring", file=sys.stderr)
        self.done = 0

    def update(self, documents: int, sentences: int, seconds: float) -> None:
        self.bar.update(documents - self.done)
        self.done = documents
        if seconds > 0:
            self.bar.set_postfix(docs_s=f"{documents / seconds:.1f}", sents_s=f"{sentences / seconds:.1f}")

    def close(self) -> None:
        self.bar.close()


def _print_summary(result: ScoreResult, output: Path) -> None:
    rate = result.sentences / result.seconds if result.seconds else 0.0
    print(f"{result.documents} documents, {result.sentences} sentences -> {output} "
          f"({result.seconds:.1f} s this run, {rate:.1f} sentences/s)", file=sys.stderr)
    if result.event_counts:
        width = max(len(k) for k in result.event_counts)
        print("event type".ljust(width) + "  count", file=sys.stderr)
        for label, count in sorted(result.event_counts.items(), key=lambda kv: -kv[1]):
            print(f"{label.ljust(width)}  {count}", file=sys.stderr)
    if result.skipped:
        print(f"skipped {len(result.skipped)} bad rows:", file=sys.stderr)
        for line in result.skipped[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more", file=sys.stderr)


def draw_summary(counts: dict[str, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(counts.items(), key=lambda kv: -kv[1])
    fig, ax = plt.subplots(figsize=(8, 0.35 * max(4, len(items)) + 1))
    ax.barh([k for k, _ in items][::-1], [v for _, v in items][::-1], color="#3b6ea5")
    ax.set_xlabel("sentences")
    ax.set_title("event types")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
