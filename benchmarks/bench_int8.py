"""int8 against fp32 on dev, per head, for several smoothing strengths (alpha 0 = plain dynamic int8).

    .venv/bin/python benchmarks/bench_int8.py [--model models/default] [--alphas 0,0.5,0.7,0.8,0.9]

The calibration sentences are the first 512 of the model's training file, as in training.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from eventcoder.model.backends import OnnxBackend
from eventcoder.model.directory import ONNX_FILE, load_numpy_weights, read_metadata
from eventcoder.model.export import calibration_batches, quantize_int8, smooth_for_int8
from eventcoder.model.predictor import Predictor
from eventcoder.model.tokenization import load_tokenizer
from eventcoder.training.config import TrainConfig
from eventcoder.training.data import read_labeled_file
from eventcoder.training.metrics import evaluate_predictor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--alphas", default="0,0.5,0.7,0.8,0.9")
    args = parser.parse_args()
    model = Path(args.model)
    config = TrainConfig.from_yaml(model / "training_config.yaml")
    metadata = read_metadata(model)
    tokenizer = load_tokenizer(model / "tokenizer.json", metadata.max_length)
    heads = load_numpy_weights(model)
    dev = read_labeled_file(config.dev_file)
    texts = [r.text for r in read_labeled_file(config.train_file)][: config.calibration_sentences]
    calibration = calibration_batches(tokenizer.encode_batch(texts))

    def summary(graph: Path) -> dict[str, float]:
        return evaluate_predictor(Predictor(metadata, tokenizer, OnnxBackend(graph), heads), dev)["summary"]

    fp32 = summary(model / ONNX_FILE)
    print("fp32 on dev:", " ".join(f"{k}={v:.4f}" for k, v in fp32.items()))
    print("int8 minus fp32, points:")
    with tempfile.TemporaryDirectory() as work:
        for alpha in (float(a) for a in args.alphas.split(",")):
            source = model / ONNX_FILE
            if alpha > 0:
                source = Path(work) / "smoothed.onnx"
                smooth_for_int8(model / ONNX_FILE, source, calibration, alpha)
            quantize_int8(source, Path(work) / "int8.onnx")
            int8 = summary(Path(work) / "int8.onnx")
            worst = min(int8[k] - fp32[k] for k in fp32)
            print(f"  alpha {alpha:.2f}: " + " ".join(f"{k}={100 * (int8[k] - fp32[k]):+.2f}" for k in fp32)
                  + f"  (worst {100 * worst:+.2f})", flush=True)


if __name__ == "__main__":
    main()
