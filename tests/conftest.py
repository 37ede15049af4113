"""Shared fixtures: a tiny tokenizer and 2-layer random BERT, the tiny corpus, a trained tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from helpers import build_tiny_base_model, tiny_config, tiny_records, write_jsonl  # noqa: E402


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    records = tiny_records()
    directory = tmp_path_factory.mktemp("tiny_corpus")
    dev = records[::3]
    return {"train": write_jsonl(directory / "train.jsonl", records),
            "dev": write_jsonl(directory / "dev.jsonl", dev),
            "dir": directory}


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [r["text"] for r in tiny_records()] + ["US forces", "the government", "Kataib Hezbollah warned"]
    return build_tiny_base_model(tmp_path_factory.mktemp("tiny_base"), texts)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, tiny_base_model: Path, tiny_corpus: dict[str, Path]) -> Path:
    """The tiny model trained once for the whole session (ONNX fp32 and int8 exported)."""
    from eventcoder.training.trainer import train_from_config

    output = tmp_path_factory.mktemp("models") / "tiny"
    train_from_config(tiny_config(tiny_base_model, tiny_corpus, output), progress=False)
    return output
