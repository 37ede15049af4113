"""Batch scoring: stream documents from files, code them in chunks, commit each chunk with a
checkpoint so that `--resume` finishes an interrupted run with no row lost and none doubled.

Reading is serve/inputs.py, writing and the checkpoint serve/outputs.py, what the user sees
serve/report.py; this module checks a run before it starts (`plan_run`) and runs it (`score_files`).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventcoder.model.files import DataError, text_problem
from eventcoder.serve.inputs import (  # noqa: F401  (Document, read_documents, ...: this module's old API)
    STDIN, STDIN_NAME, Document, InputScan, expand_inputs, iter_documents, read_documents,
)
from eventcoder.serve.outputs import (  # noqa: F401
    CSV_FIELDS, OUTPUT_SUFFIXES, Checkpoint, ChunkWriter, checkpoint_path, flat_row, output_path,
    parts_path,
)
from eventcoder.serve.report import ProgressBar, ScoreResult, check_summary_path, draw_summary, print_summary

# Documents per committed chunk (one Predictor.predict call). A line is about one sentence, so line
# chunks are larger: sorting 1,024 sentences by length wastes ~4% on padding against ~13% for 256,
# and the scorer runs 440 sentences/s instead of ~400. A document is often 10-50 sentences, so 256
# of them are thousands of sentences already, and more would only cost memory.
LINES_CHUNK_SIZE = 1024
DOCUMENTS_CHUNK_SIZE = 256


@dataclass
class ScoreOptions:
    inputs: list[str]
    output: str
    model: str = "models/default"
    split: bool = True
    lines: bool = False
    targets: list[str] = field(default_factory=list)
    text_column: str = "text"
    id_column: str | None = None  # None: "id" where a file has it, else row numbers; a name given must exist
    chunk_size: int = 0   # 0: LINES_CHUNK_SIZE with `lines`, else DOCUMENTS_CHUNK_SIZE
    resume: bool = False
    on_error: str = "fail"
    summary_png: str | None = None
    backend: str = "auto"
    batch_size: int = 32
    progress: bool = True
    csv_raw: bool = False  # CSV output: write cells as they are (no quote before = + - @)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.chunk_size < 0:
            raise ValueError(f"chunk_size must be at least 1 (0: the default), got {self.chunk_size}")
        if self.chunk_size == 0:
            self.chunk_size = LINES_CHUNK_SIZE if self.lines else DOCUMENTS_CHUNK_SIZE


@dataclass
class RunPlan:
    """A run, checked before any model loads or any byte is written."""

    output: Path
    checkpoint: Path
    summary: Path | None
    scan: InputScan

    @property
    def reads_stdin(self) -> bool:
        return any(f.path is None for f in self.scan.files)


def plan_run(options: ScoreOptions) -> RunPlan:
    """Check everything that can be checked up front: the output's type and that it is no input (nor
    inside an input folder), the chart's path, the targets, and the inputs themselves."""
    output = output_path(options.output)
    if output.is_dir():
        raise ValueError(f"{output} is a folder; the output is a file ending in {', '.join(OUTPUT_SUFFIXES)}")
    bad_target = next((t for t in options.targets if text_problem(t)), None)
    if bad_target is not None:
        raise ValueError(f"--targets: {bad_target!r} {text_problem(bad_target)}")
    summary = check_summary_path(options.summary_png) if options.summary_png else None
    if options.resume and STDIN in options.inputs:
        raise ValueError("--resume: a run that reads stdin (-) cannot be resumed (it keeps no checkpoint)")
    own = {output.resolve(), checkpoint_path(output).resolve()}
    parts = parts_path(output).resolve()

    def is_own(path: Path) -> bool:
        resolved = path.resolve()
        return resolved in own or resolved == parts or parts in resolved.parents

    scan = expand_inputs(options.inputs, lines=options.lines, is_own=is_own)
    resolved_output = output.resolve()
    for folder in scan.folders:
        if folder.resolve() in resolved_output.parents:
            raise ValueError(f"output {output} lies inside the input folder {folder}: a later run would read it "
                             "back as input; write it elsewhere")
    return RunPlan(output, checkpoint_path(output), summary, scan)


def run_settings(plan: RunPlan, options: ScoreOptions, predictor: Any) -> dict[str, Any]:
    """Everything that changes the records of a run; a checkpoint resumes only under the same."""
    inputs: list[list[Any]] = []
    for source in plan.scan.files:
        if source.path is None:
            inputs.append([STDIN_NAME, None, None])
        else:
            stat = source.path.stat()
            inputs.append([str(source.path.resolve()), stat.st_size, stat.st_mtime_ns])
    backend = getattr(predictor, "backend", None)
    return {"inputs": inputs, "model": str(Path(options.model).resolve()),
            "model_version": getattr(predictor, "model_tag", None),
            "backend": getattr(backend, "name", options.backend),
            "batch_size": getattr(predictor, "batch_size", options.batch_size), "chunk_size": options.chunk_size,
            "split": options.split, "lines": options.lines, "targets": list(options.targets),
            "text_column": options.text_column, "id_column": options.id_column, "csv_raw": options.csv_raw}


def open_checkpoint(plan: RunPlan, options: ScoreOptions, settings: dict[str, Any]) -> tuple[Checkpoint, bool]:
    """This run's checkpoint, and whether it resumes an interrupted run. A checkpoint left by other
    inputs or settings is refused, naming them; one of this very run is resumed with --resume only.
    --resume without a checkpoint starts afresh (a scheduler may run the same command every time)."""
    checkpoint = Checkpoint(plan.checkpoint, settings)
    saved = checkpoint.read()
    if saved is None:
        if options.resume:
            print(f"no checkpoint at {plan.checkpoint}: nothing to resume, scoring from the start", file=sys.stderr)
        return checkpoint, False
    differences = checkpoint.differences(saved)
    if differences:
        raise ValueError(f"{plan.checkpoint} belongs to an interrupted run with other inputs or options "
                         f"({'; '.join(differences)}): finish it with those and --resume, or delete it to start over")
    if not options.resume:
        raise ValueError(f"{plan.checkpoint} shows an interrupted run of this same command: add --resume to "
                         "finish it, or delete it to start over")
    checkpoint.resume_from(saved)
    missing = ChunkWriter.missing_output(plan.output, checkpoint.committed)
    if missing:
        raise ValueError(f"{plan.checkpoint} cannot be resumed: {missing}; delete it to start over")
    return checkpoint, True


def score_files(options: ScoreOptions, predictor: Any = None) -> ScoreResult:
    plan = plan_run(options)
    if predictor is None:
        from eventcoder.model.predictor import Predictor

        predictor = Predictor.from_pretrained(options.model, backend=options.backend, batch_size=options.batch_size)
    checkpoint, resuming = open_checkpoint(plan, options, run_settings(plan, options, predictor))
    committed = checkpoint.committed
    resumed, resumed_sentences = committed.documents, committed.sentences
    counts: Counter[str] = Counter(committed.event_counts)
    writer: ChunkWriter | None = None
    commits = 0
    started = time.perf_counter()
    progress = ProgressBar(options.progress)

    def commit(docs: list[Document], consumed: int) -> None:
        """Code one chunk, append it to the output, then save the checkpoint (stdin: none)."""
        nonlocal writer, commits
        records: list[dict[str, Any]] = []
        if docs:
            predictions = predictor.predict([d.text for d in docs], targets=[d.targets for d in docs],
                                            split=options.split, doc_ids=[d.doc_id for d in docs])
            records = [p.to_dict() for p in predictions]
        if writer is None:  # the output is started (or cut back) only when there is something to commit
            plan.output.parent.mkdir(parents=True, exist_ok=True)
            writer = ChunkWriter(plan.output, committed, resuming, csv_raw=options.csv_raw)
        writer.write(records)
        counts.update(r["event_type"] for r in records if "event_type" in r)  # none without an event head
        committed.documents = consumed
        committed.scored += len(docs)
        committed.sentences += len(records)
        committed.event_counts = dict(counts)
        if not plan.reads_stdin:
            checkpoint.save()
        commits += 1
        progress.update(consumed - resumed, committed.sentences - resumed_sentences, time.perf_counter() - started)

    consumed = 0
    chunk: list[Document] = []
    try:
        for item in iter_documents(plan.scan.files, options):
            consumed += 1
            if consumed <= resumed:
                continue
            if isinstance(item, DataError):
                if options.on_error == "fail":
                    raise item
                committed.skipped.append(str(item))
                continue
            chunk.append(item)
            if len(chunk) >= options.chunk_size:
                commit(chunk, consumed)
                chunk = []
        commit(chunk, consumed)
        assert writer is not None
        writer.finish()
    except BaseException:
        progress.close()
        if not resuming and not commits and writer is not None:
            writer.discard()  # a run that committed nothing leaves nothing behind
        raise
    progress.close()
    checkpoint.path.unlink(missing_ok=True)
    result = ScoreResult(committed.documents, committed.sentences, list(committed.skipped), dict(counts),
                         time.perf_counter() - started, scored=committed.scored, resumed=resumed,
                         resumed_sentences=resumed_sentences, passed_over=list(plan.scan.passed_over))
    print_summary(result, plan.output)
    if plan.summary is not None:
        draw_summary(result.event_counts, plan.summary)
    return result
