"""int8 against fp32 on dev, per head: the former dynamic int8 and the static int8 (the export's), for
several smoothing strengths (alpha 0 = no smoothing), and whether each is batch-independent.

    .venv/bin/python benchmarks/bench_int8.py [--model models/default] [--alphas 0,0.5,0.8,0.9]
        [--schemes static,static-8bit,dynamic]

static: what `eventcoder export` writes (QDQ, activation scales calibrated, 7-bit per-channel weights);
static-8bit: the same with full 8-bit weights (saturates in AVX2's VPMADDUBSW); dynamic: the former
export (activation scales per batch). The calibration sentences are the first ones of the model's
training file (`calibration_sentences`, 512), as in training. "batch-dependent" counts dev sentences
whose event scores differ in any bit between batches of 32 and batches of 5.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from eventcoder.model.backends import OnnxBackend
from eventcoder.model.directory import ONNX_FILE, load_numpy_weights, read_metadata
from eventcoder.model.export import calibration_batches, quantize_int8, quantize_int8_dynamic, smooth_for_int8
from eventcoder.model.predictor import Predictor
from eventcoder.model.tokenization import load_tokenizer
from eventcoder.training.config import TrainConfig
from eventcoder.training.data import read_labeled_file
from eventcoder.training.metrics import evaluate_predictor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--alphas", default="0,0.5,0.8,0.9")
    parser.add_argument("--schemes", default="static,static-8bit,dynamic")
    args = parser.parse_args()
    model = Path(args.model)
    config = TrainConfig.from_yaml(model / "training_config.yaml")
    metadata = read_metadata(model)
    tokenizer = load_tokenizer(model / "tokenizer.json", metadata.max_length)
    heads = load_numpy_weights(model)
    dev = read_labeled_file(config.dev_file)
    texts = [r.text for r in read_labeled_file(config.train_file)][: config.calibration_sentences]
    calibration = calibration_batches(tokenizer.encode_batch(texts))

    def summary(graph: Path) -> tuple[dict[str, float], int]:
        backend = OnnxBackend(graph)
        figures = evaluate_predictor(Predictor(metadata, tokenizer, backend, heads), dev)["summary"]
        sentences = [r.text for r in dev]
        big = Predictor(metadata, tokenizer, backend, heads, batch_size=32).analyze(sentences)
        small = Predictor(metadata, tokenizer, backend, heads, batch_size=5).analyze(sentences)
        changed = sum(not np.array_equal(a.event_probs, b.event_probs) for a, b in zip(big, small))
        return figures, changed

    fp32, changed = summary(model / ONNX_FILE)
    print("fp32 on dev:", " ".join(f"{k}={v:.4f}" for k, v in fp32.items()), f"(batch-dependent: {changed})")
    print("int8 minus fp32, points:")
    results = {"fp32": fp32}
    with tempfile.TemporaryDirectory() as work:
        for alpha in (float(a) for a in args.alphas.split(",")):
            source = model / ONNX_FILE
            if alpha > 0:
                source = Path(work) / "smoothed.onnx"
                smooth_for_int8(model / ONNX_FILE, source, calibration, alpha)
            for scheme in args.schemes.split(","):
                target = Path(work) / "int8.onnx"
                if scheme == "dynamic":
                    quantize_int8_dynamic(source, target)
                else:
                    quantize_int8(source, target, calibration, reduce_range=scheme == "static")
                int8, changed = summary(target)
                results[f"{scheme} alpha {alpha}"] = int8
                worst = min(int8[k] - fp32[k] for k in fp32)
                print(f"  {scheme:11s} alpha {alpha:.2f}: "
                      + " ".join(f"{k}={100 * (int8[k] - fp32[k]):+.2f}" for k in fp32)
                      + f"  (worst {100 * worst:+.2f}; batch-dependent: {changed}/{len(dev)})", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
