"""What `eventcoder score` tells the user: a progress bar, the summary at the end, the bar chart."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY_SUFFIX = ".png"
SHOWN = 20  # bad rows listed in the summary
SHOWN_FILES = 5  # passed-over files named in the summary


@dataclass
class ScoreResult:
    """A finished run. Counts cover the whole output (a resumed run included); `resumed` and
    `resumed_sentences` are what was written before this run took over, `seconds` is this run's."""

    documents: int            # input rows read: scored or skipped
    sentences: int
    skipped: list[str]        # bad rows, as messages
    event_counts: dict[str, int]
    seconds: float
    scored: int = 0
    resumed: int = 0
    resumed_sentences: int = 0
    passed_over: list[str] = field(default_factory=list)  # files the folder scans left out

    @property
    def documents_this_run(self) -> int:
        return self.documents - self.resumed

    @property
    def sentences_this_run(self) -> int:
        return self.sentences - self.resumed_sentences


class ProgressBar:
    """A tqdm bar over this run's documents, showing documents and sentences per second."""

    def __init__(self, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(disable=not enabled, unit="doc", desc="scoring", file=sys.stderr)
        self.done = 0

    def update(self, documents: int, sentences: int, seconds: float) -> None:
        """`documents` and `sentences` done so far by this run."""
        self.bar.update(documents - self.done)
        self.done = documents
        if seconds > 0:
            self.bar.set_postfix(docs_s=f"{documents / seconds:.1f}", sents_s=f"{sentences / seconds:.1f}")

    def close(self) -> None:
        self.bar.close()


def print_summary(result: ScoreResult, output: Path) -> None:
    """Documents scored, skipped and resumed, each on its own; rates over this run's work only."""
    out = sys.stderr
    print(f"{result.scored} documents scored, {len(result.skipped)} skipped (bad rows): "
          f"{result.sentences} sentences -> {output}", file=out)
    if result.resumed:
        print(f"resumed: {result.resumed} documents ({result.resumed_sentences} sentences) had been done "
              "before the interruption", file=out)
    seconds = result.seconds
    docs_rate = result.documents_this_run / seconds if seconds else 0.0
    sentence_rate = result.sentences_this_run / seconds if seconds else 0.0
    print(f"this run: {result.documents_this_run} documents, {result.sentences_this_run} sentences in {seconds:.1f} s "
          f"({docs_rate:.1f} documents/s, {sentence_rate:.1f} sentences/s)", file=out)
    if result.passed_over:
        names = ", ".join(result.passed_over[:SHOWN_FILES])
        more = f" and {len(result.passed_over) - SHOWN_FILES} more" if len(result.passed_over) > SHOWN_FILES else ""
        print(f"passed over {len(result.passed_over)} files in the input folders (hidden, or not an input "
              f"format): {names}{more}", file=out)
    if result.event_counts:
        width = max(len(k) for k in result.event_counts)
        print("event type".ljust(width) + "  count", file=out)
        for label, count in sorted(result.event_counts.items(), key=lambda kv: -kv[1]):
            print(f"{label.ljust(width)}  {count}", file=out)
    if result.skipped:
        print(f"skipped {len(result.skipped)} bad rows:", file=out)
        for line in result.skipped[:SHOWN]:
            print(f"  {line}", file=out)
        if len(result.skipped) > SHOWN:
            print(f"  ... and {len(result.skipped) - SHOWN} more", file=out)


def check_summary_path(path: str | Path) -> Path:
    """The chart's path, checked before any scoring: a .png in a folder that exists and can be written."""
    chart = Path(path)
    if chart.suffix.lower() != SUMMARY_SUFFIX:
        raise ValueError(f"--summary {chart}: the chart is a PNG picture; give a path ending in {SUMMARY_SUFFIX}")
    folder = chart.parent
    if not folder.is_dir():
        raise ValueError(f"--summary {chart}: the folder {folder} does not exist")
    if chart.is_dir() or not os.access(folder, os.W_OK) or (chart.exists() and not os.access(chart, os.W_OK)):
        raise ValueError(f"--summary {chart}: cannot write there")
    return chart


def draw_summary(counts: dict[str, int], path: Path) -> None:
    """A horizontal bar chart of event-type counts."""
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
