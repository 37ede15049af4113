"""Batch scoring on a Ray cluster (`eventcoder score --engine ray`).

Writes exactly the records of `serve.scoring.score_files`, in the same order: the local engine
codes its input in chunks of `chunk_size` good documents (one `Predictor.predict` call per chunk),
and a prediction can depend on what else is in its call (sentences are batched by length, and the
int8 graph quantizes activations per batch). So this engine cuts the very same chunks:

1. count (Ray Data, one task per group of files): every file is read with the project's own
   reader (`read_documents`: same doc_id rules, same errors) and its good documents and bad rows
   are counted. `--on-error fail` stops here, before any scoring, at the first bad row in input
   order, with the local engine's message; `--on-error skip` lists the same rows.
2. read (Ray Data `flat_map`): each file in which a chunk starts is read again and cut into the
   chunks that start in it (the last one continues into the next files); a chunk is one row.
3. score (Ray Data `map_batches`): a pool of actors, one `Predictor` each (ONNX unless the model
   has no ONNX graph), splits the chunk's documents into sentences and codes them.
4. write (driver): chunks come back in any order, are put back in order and written with the
   local engine's writers (serve/outputs.py: `ChunkWriter`).

Inputs and the model directory are read by the workers, so on a cluster of several machines they
must be at the same path on every node (a shared file system); the output is written by the
driver only. No checkpoint: `--resume` belongs to the local engine.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from eventcoder.model.files import DataError
from eventcoder.serve.inputs import read_documents
from eventcoder.serve.outputs import ChunkWriter, Committed
from eventcoder.serve.report import ProgressBar, ScoreResult, draw_summary, print_summary
from eventcoder.serve.scoring import ScoreOptions, plan_run

INSTALL_HINT = 'the ray engine needs Ray, which is not installed: pip install ".[ray]"'
_BACKEND_OF_FILE = {"model.onnx": "onnx", "model.int8.onnx": "onnx-int8", "torch": "torch"}


class RayUnavailable(RuntimeError):
    """Ray (with Ray Data) cannot be imported."""


def import_ray() -> Any:
    """The `ray` module with Ray Data loaded, or RayUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise RayUnavailable(INSTALL_HINT) from err
    return ray


# ----------------------------------------------------------------------------- worker side
def _count_file(row: dict[str, Any], options: ScoreOptions) -> dict[str, Any]:
    """How many good documents one file holds, and its bad rows as [line, field, problem]."""
    path, prefix = json.loads(row["file"])
    good, errors = 0, []
    for item in read_documents(Path(path), options, prefix=prefix):
        if isinstance(item, DataError):
            errors.append([item.line, item.field, item.message])
        else:
            good += 1
    return {"index": row["index"], "good": good, "errors": json.dumps(errors)}


def _read_chunks(task: dict[str, Any], options: ScoreOptions) -> Iterator[dict[str, Any]]:
    """The chunks that start in one file: skip its first `skip` good documents (they finish a chunk
    that started in an earlier file), then cut `take` good documents, continuing into the next files,
    into chunks of `options.chunk_size`. A chunk is one row: its number and its documents as JSON."""
    skip, take, chunk_index = task["skip"], task["take"], task["first_chunk"]
    chunk: list[list[Any]] = []
    for path, prefix in json.loads(task["files"]):
        for item in read_documents(Path(path), options, prefix=prefix):
            if isinstance(item, DataError):
                continue
            if skip:
                skip -= 1
                continue
            chunk.append([item.doc_id, item.text, item.targets])
            take -= 1
            if len(chunk) >= options.chunk_size or not take:
                yield {"chunk": chunk_index, "docs": json.dumps(chunk)}  # ASCII JSON: any id fits Arrow
                chunk_index += 1
                chunk = []
            if not take:
                return
    if take:
        raise RuntimeError(f"{task['files']}: input files changed while scoring ({take} documents missing)")


class ChunkScorer:
    """A Ray Data actor: one Predictor, kept for the whole run; a batch holds whole chunks."""

    def __init__(self, model_dir: str, backend: str, batch_size: int, threads: int, split: bool) -> None:
        from eventcoder.model.predictor import Predictor

        self.predictor = Predictor.from_pretrained(model_dir, backend=backend, batch_size=batch_size,
                                                   threads=threads)
        self.split = split

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records, sizes = [], []
        for payload in batch["docs"]:
            docs = json.loads(payload)
            predictions = self.predictor.predict([d[1] for d in docs], targets=[d[2] for d in docs],
                                                 split=self.split, doc_ids=[d[0] for d in docs])
            records.append(json.dumps([p.to_dict() for p in predictions]))
            sizes.append(len(docs))
        return {"chunk": np.asarray(batch["chunk"], dtype=np.int64),
                "documents": np.asarray(sizes, dtype=np.int64), "records": np.asarray(records, dtype=object)}


# ----------------------------------------------------------------------------- planning (driver)
def plan_chunks(good: list[int], chunk_size: int) -> list[dict[str, Any]]:
    """Read tasks for files with `good[i]` good documents each, such that chunk k holds good documents
    k*chunk_size .. (k+1)*chunk_size-1 of the whole input, as in the local engine. One task per file in
    which a chunk starts: {"file", "first_chunk", "skip", "take", "last_file"} (files file..last_file)."""
    total = sum(good)
    tasks, offset = [], 0
    ends = []  # global index one past each file's last good document
    for n in good:
        offset += n
        ends.append(offset)
    offset = 0
    for index, n in enumerate(good):
        first_chunk = -(-offset // chunk_size)               # first chunk starting at or after `offset`
        start = first_chunk * chunk_size
        if n and start < offset + n:
            last_chunk = (offset + n - 1) // chunk_size
            stop = min((last_chunk + 1) * chunk_size, total)  # one past the last document to take
            last_file = index
            while ends[last_file] < stop:
                last_file += 1
            tasks.append({"file": index, "first_chunk": first_chunk, "skip": start - offset,
                          "take": stop - start, "last_file": last_file})
        offset += n
    return tasks


def _ray_backend(model_dir: Path, backend: str) -> str:
    """The backend every actor loads, chosen once here (ONNX whenever the model directory has it)."""
    from eventcoder.model.directory import read_metadata
    from eventcoder.model.predictor import _choose_backend

    chosen = _choose_backend(model_dir, read_metadata(model_dir), backend)
    if chosen == "torch" and backend == "auto":
        print(f"warning: {model_dir} has no ONNX graph; every worker loads torch "
              f"(faster: eventcoder export --model {model_dir})", file=sys.stderr)
    return _BACKEND_OF_FILE.get(chosen, backend)


def _quietly(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows, without Ray Data's advice to raise the parallelism of a small input."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The (maximum|minimum) number of concurrent", category=UserWarning)
        yield from rows


def _items(ray: Any, rows: list[dict[str, Any]], blocks: int, progress: bool) -> Any:
    """A dataset of `rows` in `blocks` blocks, with its own settings (the caller's stay as they are)."""
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    if not progress:
        dataset.context.enable_progress_bars = False
    return dataset


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster at `address` (or RAY_ADDRESS, or the cluster started last on this
    machine, else a new local instance). True when this call started the connection."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        kwargs["include_dashboard"] = False
    ray.init(address=address, **kwargs)
    return True


# ----------------------------------------------------------------------------- the run
def score_files_ray(options: ScoreOptions, address: str | None = None, num_workers: int | None = None,
                    cpus_per_worker: int = 1) -> ScoreResult:
    """`score_files` on Ray: the same output file, record for record. Uses the running Ray
    connection if there is one, else connects to `address` (see `_connect`)."""
    ray = import_ray()
    if options.resume:
        raise ValueError("--resume works with the local engine only (the ray engine keeps no checkpoint)")
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"--num-workers must be at least 1, got {num_workers}")
    plan = plan_run(options)
    if plan.reads_stdin:
        raise ValueError("stdin (-) works with the local engine only (the ray engine reads every file twice)")
    output = plan.output
    if plan.checkpoint.exists():
        raise ValueError(f"{plan.checkpoint} shows an interrupted local run: finish it with --engine local "
                         "--resume, or delete it to start over")
    paths = [source.path for source in plan.scan.files if source.path is not None]
    model_dir = Path(options.model).absolute()
    backend = _ray_backend(model_dir, options.backend)
    # workers have another cwd: absolute paths, with the local engine's id prefixes
    files = [[str(source.path.absolute()), source.prefix] for source in plan.scan.files if source.path is not None]

    started_ray = _connect(ray, address)
    data_logger = logging.getLogger("ray.data")
    log_level = data_logger.level
    if not options.progress:
        data_logger.setLevel(logging.ERROR)
    writer: ChunkWriter | None = None
    following = 0
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = num_workers or max(1, cpus // cpus_per_worker)
        print(f"ray engine: {workers} workers x {cpus_per_worker} CPU, {cpus} CPUs in the cluster, "
              f"backend {backend}", file=sys.stderr)
        started = time.perf_counter()

        # 1. count good documents and bad rows per file
        rows = [{"index": i, "file": json.dumps(file)} for i, file in enumerate(files)]  # JSON: any path fits Arrow
        blocks = min(len(rows), max(8, 4 * workers))
        counted = (_items(ray, rows, blocks, options.progress)
                   .map(_count_file, fn_kwargs={"options": options}).take_all())
        counted.sort(key=lambda r: r["index"])
        good = [int(r["good"]) for r in counted]
        skipped: list[str] = []
        for path, row in zip(paths, counted):
            for line, field_name, problem in json.loads(row["errors"]):
                error = DataError(path, line, field_name, problem)
                if options.on_error == "fail":
                    raise error
                skipped.append(str(error))
        documents = sum(good) + len(skipped)

        # 2.-4. read chunks, score them on the actor pool, write them in order
        output.parent.mkdir(parents=True, exist_ok=True)
        writer = ChunkWriter(output, Committed(), resume=False, csv_raw=options.csv_raw)
        counts: Counter[str] = Counter()
        sentences = done = 0
        progress = ProgressBar(options.progress)
        tasks = [{"first_chunk": t["first_chunk"], "skip": t["skip"], "take": t["take"],
                  "files": json.dumps(files[t["file"]:t["last_file"] + 1])}
                 for t in plan_chunks(good, options.chunk_size)]
        if tasks:
            source = _items(ray, tasks, min(len(tasks), max(8, 4 * workers)), options.progress)
            # one chunk a block (this dataset's own context), so that the chunks of one big file spread
            # over all actors; a streaming repartition would need a CPU the actors hold
            source.context.target_max_block_size = 1
            scored = (source
                      # reading is cheap next to scoring: no CPU reserved, so the actors may take them all
                      .flat_map(_read_chunks, fn_kwargs={"options": options}, num_cpus=0,
                                compute=ray.data.TaskPoolStrategy(size=workers))
                      .map_batches(ChunkScorer, batch_size=1, num_cpus=cpus_per_worker,
                                   compute=ray.data.ActorPoolStrategy(size=workers),
                                   fn_constructor_kwargs={"model_dir": str(model_dir), "backend": backend,
                                                          "batch_size": options.batch_size,
                                                          "threads": cpus_per_worker, "split": options.split}))
            waiting: dict[int, dict[str, Any]] = {}
            for row in _quietly(scored.iter_rows()):
                waiting[int(row["chunk"])] = row
                while following in waiting:
                    ready = waiting.pop(following)
                    records = json.loads(ready["records"])
                    writer.write(records)
                    counts.update(r["event_type"] for r in records if "event_type" in r)
                    sentences += len(records)
                    done += int(ready["documents"])
                    progress.update(done, sentences, time.perf_counter() - started)
                    following += 1
            if waiting or following != -(-sum(good) // options.chunk_size):
                raise RuntimeError(f"ray engine: chunks missing (wrote {following}, holding {sorted(waiting)})")
        if sum(good) % options.chunk_size == 0:
            writer.write([])  # the local engine's last, empty commit (one more Parquet part)
        writer.finish()
        progress.close()
    except BaseException:
        if writer is not None and not following:
            writer.discard()  # a run that wrote nothing leaves nothing behind
        raise
    finally:
        data_logger.setLevel(log_level)
        if started_ray:
            ray.shutdown()
    result = ScoreResult(documents, sentences, skipped, dict(counts), time.perf_counter() - started,
                         scored=sum(good), passed_over=list(plan.scan.passed_over))
    print_summary(result, output)
    if plan.summary is not None:
        draw_summary(result.event_counts, plan.summary)
    return result
