"""How to spend the cores on the ONNX graph: one run split over all cores, or one single-threaded run
per core. Bare graph only (no sentence splitting, no heads in NumPy), 5 interleaved rounds, medians.

    .venv/bin/python benchmarks/bench_threads.py [--model models/default] [--graph model.int8.onnx] [--sentences 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime as ort

from eventcoder.model.backends import OUTPUT_NAMES, available_cores
from eventcoder.model.tokenization import load_tokenizer, pad_batch

REPO = Path(__file__).resolve().parent.parent


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--graph", default="model.int8.onnx")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cores = available_cores()
    texts = []
    for split in ("test", "dev", "train"):
        texts += [json.loads(line)["text"] for line in (REPO / "data" / f"{split}.jsonl").read_text().splitlines()]
    tokenizer = load_tokenizer(Path(args.model) / "tokenizer.json", 128)
    encodings = tokenizer.encode_batch(texts[: args.sentences])
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    batches = [pad_batch([encodings[i] for i in order[k : k + args.batch_size]])
               for k in range(0, len(order), args.batch_size)]
    graph = Path(args.model) / args.graph
    split_session, single_session = session(graph, cores), session(graph, 1)
    pool = ThreadPoolExecutor(cores)

    def one_run_over_all_cores() -> float:
        started = time.perf_counter()
        for batch in batches:
            split_session.run(list(OUTPUT_NAMES), batch)
        return len(encodings) / (time.perf_counter() - started)

    def one_single_threaded_run_per_core() -> float:
        started = time.perf_counter()
        list(pool.map(lambda batch: single_session.run(list(OUTPUT_NAMES), batch), batches))
        return len(encodings) / (time.perf_counter() - started)

    def one_core_only() -> float:
        started = time.perf_counter()
        for batch in batches:
            single_session.run(list(OUTPUT_NAMES), batch)
        return len(encodings) / (time.perf_counter() - started)

    setups = {f"one run over {cores} intra-op threads": one_run_over_all_cores,
              f"{cores} single-threaded runs at once (eventcoder)": one_single_threaded_run_per_core,
              "one single-threaded run (one core)": one_core_only}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(5):
        for name, measure in setups.items():
            rates[name].append(measure())
    print(f"{graph}, {len(encodings)} sentences, batches of {args.batch_size}, {cores} cores: sentences/s, median of 5")
    for name, values in rates.items():
        print(f"  {name}: {statistics.median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
