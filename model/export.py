"""Export of the network to ONNX (fp32) and int8 (dynamic, per-channel) for the light inference path."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from model.backends import INPUT_NAMES, OUTPUT_NAMES
from model.directory import ONNX_FILE, ONNX_INT8_FILE

log = logging.getLogger(__name__)


def export_onnx(network: Any, directory: Path | str, quantize: bool = True, opset: int = 17) -> dict[str, str]:
    """Write model.onnx (and model.int8.onnx) into `directory`; returns the file names by kind.

    The graph returns what `EventCoderNetwork.forward` returns; span heads stay in NumPy.
    Which file is the default is decided by `choose_default_onnx` after measuring both.
    """
    import torch

    directory = Path(directory)
    network = network.float().eval()
    top = network.encoder.config.vocab_size - 1
    sample = {
        "input_ids": torch.tensor([[1, 5, 6, 7, 8, 2], [1, 5, 2, 0, 0, 0]]).clamp(max=top),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
        "token_type_ids": torch.zeros(2, 6, dtype=torch.long),
    }
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    dynamic.update({"hidden": {0: "batch", 1: "sequence"}, "pooled": {0: "batch"}, "event_logits": {0: "batch"},
                    "mode_logits": {0: "batch"}, "bio_logits": {0: "batch", 1: "sequence"}})
    fp32_path = directory / ONNX_FILE
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(fp32_path),
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic,
            opset_version=opset, dynamo=False)
    files = {"fp32": ONNX_FILE, "default": ONNX_FILE}
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32_path), str(directory / ONNX_INT8_FILE), per_channel=True,
                         weight_type=QuantType.QInt8)
        files["int8"] = ONNX_INT8_FILE
    return files


def choose_default_onnx(fp32_summary: dict[str, float], int8_summary: dict[str, float],
                        max_loss: float = 0.01) -> tuple[str, dict[str, float]]:
    """'int8' when no head loses more than `max_loss` (absolute F1/accuracy) against fp32, else 'fp32'.
    Also returns the loss per head."""
    losses = {k: round(fp32_summary[k] - int8_summary.get(k, 0.0), 4) for k in fp32_summary}
    return ("int8" if all(loss <= max_loss for loss in losses.values()) else "fp32"), losses
