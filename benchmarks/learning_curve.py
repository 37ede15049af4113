"""Learning curve of retraining on an analyst's own labels: test figures after training on 100, 300 and
1,000 sentences of a team-written set, from the bare encoder and from the trained default model
(`--init-from`), with the shipped `configs/custom.yaml` recipe (labels from the data, dev held out of
the training sentences, epochs and rate chosen by data size, early stopping on dev).

A set is a folder under `data/custom_sets/` with a `schema.json` and authoring files; files whose name
ends in `_test.txt` were written by a writer who wrote none of the training files and are the test set,
the others the training pool. Subsets are nested (the 100 are among the 300) and stratified by event
type where the set has one.

    .venv/bin/python benchmarks/learning_curve.py data/custom_sets/acled_like data/custom_sets/source_target \\
        --init-from models/default -o benchmarks/learning_curve.md
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from eventcoder.training.authoring import Schema, read_authoring_file, write_jsonl
from eventcoder.training.config import TrainConfig
from eventcoder.training.trainer import train_from_config

FIGURES = {"event_type_macro_f1": "event macro-F1", "event_type_accuracy": "event accuracy",
           "actors_micro_f1": "roles F1 (exact span)", "actors_iou50_f1": "roles F1 (IoU>=0.5)"}


def load_set(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training pool, test) records of a set; stops at the first malformed line."""
    schema = Schema.load(directory / "schema.json")
    pool: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.txt")):
        records, errors = read_authoring_file(path, schema)
        if errors:
            raise SystemExit(f"{errors[0]} (and {len(errors) - 1} more)")
        (test if path.stem.endswith("_test") else pool).extend(records)
    return pool, test


def nested_subsets(pool: list[dict[str, Any]], sizes: list[int], seed: int) -> dict[int, list[dict[str, Any]]]:
    """The first n of one stratified order (labels interleaved), so each subset holds the smaller ones."""
    rng = random.Random(seed)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in pool:
        groups[record.get("event_type", "")].append(record)
    for group in groups.values():
        rng.shuffle(group)
    order: list[dict[str, Any]] = []
    while any(groups.values()):  # round robin, largest group first: every prefix keeps the proportions
        for label in sorted(groups, key=lambda k: -len(groups[k])):
            if groups[label]:
                order.append(groups[label].pop())
    return {n: order[:n] for n in sizes if n <= len(order)}


def run_curve(directory: Path, sizes: list[int], starts: dict[str, str | None], config_path: str,
              work: Path, seed: int) -> list[dict[str, Any]]:
    pool, test = load_set(directory)
    work.mkdir(parents=True, exist_ok=True)
    test_file = work / "test.jsonl"
    write_jsonl(test_file, test)
    rows: list[dict[str, Any]] = []
    for n, subset in nested_subsets(pool, sizes, seed).items():
        train_file = work / f"train_{n}.jsonl"
        write_jsonl(train_file, subset)
        for start, init_from in starts.items():
            config = TrainConfig.from_yaml(config_path).override(
                train_file=str(train_file), test_file=str(test_file), output_dir=str(work / f"model_{n}_{start}"),
                init_from=init_from or "", export_onnx=False, seed=seed)
            began = time.perf_counter()
            result = train_from_config(config, progress=False)
            summary = result.metrics["test"]["summary"]
            row = {"set": directory.name, "train_sentences": n, "start": start, "test_sentences": len(test),
                   "epochs_run": len(result.metrics["epochs"]), "best_epoch": result.metrics["best_epoch"],
                   "seconds": round(time.perf_counter() - began, 1),
                   **{k: summary[k] for k in FIGURES if k in summary}}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        part = [r for r in rows if r["set"] == name]
        figures = [k for k in FIGURES if k in part[0]]
        lines += [f"### {name} (test: {part[0]['test_sentences']} sentences by a writer of no training line)", "",
                  "| training sentences | start | " + " | ".join(FIGURES[k] for k in figures) +
                  " | epochs run (best) | seconds |",
                  "|---|---|" + "---|" * len(figures) + "---|---|"]
        for r in part:
            lines.append(f"| {r['train_sentences']} | {r['start']} | " + " | ".join(f"{r[k]:.3f}" for k in figures)
                         + f" | {r['epochs_run']} ({r['best_epoch']}) | {r['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000])
    parser.add_argument("--config", default="configs/custom.yaml")
    parser.add_argument("--init-from", default="", help="also start from this trained model (e.g. models/default)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/learning_curve"))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("-o", "--output", type=Path, help="write the tables (markdown) and rows (.json) here")
    args = parser.parse_args()
    starts: dict[str, str | None] = {"encoder": None}
    if args.init_from:
        starts["default model"] = args.init_from
    rows = [row for directory in args.sets
            for row in run_curve(directory, args.sizes, starts, args.config, args.work_dir / directory.name, args.seed)]
    table = markdown(rows)
    print(table)
    if args.output:
        args.output.write_text(table, encoding="utf-8")
        args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
