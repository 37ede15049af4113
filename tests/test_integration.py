"""End to end on the real base encoder (MiniLM-L6 from the installed package): a short fine-tune on a
slice of the corpus must beat chance by far on every core head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventcoder.model.predictor import Predictor
from eventcoder.training.config import TrainConfig
from eventcoder.training.trainer import train_from_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_real_encoder_learns_the_corpus(tmp_path: Path) -> None:
    train = [line for line in (REPO / "data" / "train.jsonl").read_text().splitlines()][:1200]
    dev = [line for line in (REPO / "data" / "dev.jsonl").read_text().splitlines()][:300]
    (tmp_path / "train.jsonl").write_text("\n".join(train) + "\n")
    (tmp_path / "dev.jsonl").write_text("\n".join(dev) + "\n")
    config = TrainConfig.from_yaml(REPO / "configs" / "default.yaml").override(
        train_file=str(tmp_path / "train.jsonl"), dev_file=str(tmp_path / "dev.jsonl"), test_file="",
        output_dir=str(tmp_path / "model"), epochs=2, quantize=False)
    result = train_from_config(config, progress=False)
    summary = result.metrics["dev"]["summary"]
    # chance: 1/17 for event types, ~0 for exact spans, ~1/3 for stance
    assert summary["event_type_macro_f1"] > 0.30, summary
    assert summary["actors_micro_f1"] > 0.30, summary
    assert summary["stance_macro_f1"] > 0.40, summary
    predictor = Predictor.from_pretrained(tmp_path / "model", backend="onnx")
    record = predictor.predict(["Rebels shelled the town of Goma overnight, killing six civilians."])[0].to_dict()
    assert record["event_type"] in json.loads((tmp_path / "model" / "eventcoder.json").read_text())["heads"]["event_type"]["id2label"].values()
