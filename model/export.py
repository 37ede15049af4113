"""Export of the network to ONNX (fp32) and int8 (dynamic, per-channel) for the light inference path.

Before int8 quantization the graph is "smoothed" (the SmoothQuant idea): dynamic quantization gives each
activation tensor one scale per batch, so a few channels with large values cost every other channel its
precision. Each weight MatMul's input is divided per channel by s and the weight rows multiplied by s
(the product is unchanged in exact arithmetic), with s = amax(x)^alpha / amax(w)^(1-alpha) taken from
calibration sentences. Measured on the default model's dev split (benchmarks/bench_int8.py): plain int8
lost 1.3 points of mode macro-F1 (2.6 with the embeddings quantized too); smoothed with alpha 0.8, no
head loses more than 0.9.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eventcoder.model.backends import INPUT_NAMES, OUTPUT_NAMES, Batch
from eventcoder.model.directory import ONNX_FILE, ONNX_INT8_FILE
from eventcoder.model.tokenization import pad_batch

log = logging.getLogger(__name__)

DEFAULT_SMOOTHING_ALPHA = 0.8


def export_onnx(network: Any, directory: Path | str, quantize: bool = True, opset: int = 17,
                calibration: Sequence[Batch] | None = None,
                smoothing_alpha: float = DEFAULT_SMOOTHING_ALPHA) -> dict[str, str]:
    """Write model.onnx (and model.int8.onnx) into `directory`; returns the file names by kind.

    The graph returns what `EventCoderNetwork.forward` returns; span heads stay in NumPy.
    With `calibration` batches (and alpha > 0) the int8 graph is quantized from a smoothed copy.
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
        source = fp32_path
        if calibration and smoothing_alpha > 0:
            source = directory / "model.smoothed.onnx"
            smooth_for_int8(fp32_path, source, calibration, smoothing_alpha)
        try:
            quantize_int8(source, directory / ONNX_INT8_FILE)
        finally:
            if source != fp32_path:
                source.unlink(missing_ok=True)
        files["int8"] = ONNX_INT8_FILE
    return files


def quantize_int8(source: Path, target: Path) -> None:
    """int8 dynamic quantization, per output channel, of the graph's MatMuls."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    was_disabled, root.disabled = root.disabled, True  # silences ORT's "consider pre-processing" hint
    try:
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.disabled = was_disabled


def calibration_batches(encodings: Sequence[Any], pad_id: int = 0, batch_size: int = 32) -> list[Batch]:
    """Padded batches of similar length (as the Predictor pads them; for the per-channel maxima the
    order of the batches does not matter)."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    return [pad_batch([encodings[i] for i in order[k : k + batch_size]], pad_id)
            for k in range(0, len(order), batch_size)]


def smooth_for_int8(source: Path | str, target: Path | str, calibration: Sequence[Batch], alpha: float) -> None:
    """Write a copy of the fp32 graph where every encoder weight MatMul's input is divided per channel by s
    (one Mul node per input tensor, shared by the MatMuls that read it) and the weights' rows multiplied by s."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in initializers and node.name.startswith("/encoder/"):
            readers.setdefault(node.input[0], []).append(node)
    if not readers:
        onnx.save(model, str(target))
        return

    # per-channel max |x| of every MatMul input over the calibration batches
    probe = onnx.load(str(source))
    for name in readers:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = list(readers)
    input_names = {i.name for i in session.get_inputs()}
    activation_max: dict[str, np.ndarray] = {}
    for batch in calibration:
        outputs = session.run(names, {k: v for k, v in batch.items() if k in input_names})
        for name, value in zip(names, outputs):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            activation_max[name] = np.maximum(activation_max.get(name, channel_max), channel_max)

    producer_index = {output: i for i, node in enumerate(graph.node) for output in node.output}
    insertions: list[tuple[int, Any]] = []
    for name, nodes in readers.items():
        weights = [numpy_helper.to_array(initializers[n.input[1]]) for n in nodes]
        weight_max = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        scale = np.maximum(activation_max[name], 1e-5) ** alpha / np.maximum(weight_max, 1e-5) ** (1 - alpha)
        scale = np.clip(scale, 1e-2, 1e2).astype(np.float32)
        inverse_name, smoothed = f"{name}/smooth_inverse", f"{name}/smoothed"
        graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse_name))
        for node, weight in zip(nodes, weights):
            initializers[node.input[1]].CopyFrom(
                numpy_helper.from_array((weight * scale[:, None]).astype(np.float32), node.input[1]))
            node.input[0] = smoothed
        mul = helper.make_node("Mul", [name, inverse_name], [smoothed], name=f"{name}/smooth")
        insertions.append((producer_index.get(name, -1) + 1, mul))
    for position, node in sorted(insertions, key=lambda p: p[0], reverse=True):
        graph.node.insert(position, node)  # right after its producer keeps the graph in topological order
    onnx.save(model, str(target))


def choose_default_onnx(fp32_summary: dict[str, float], int8_summary: dict[str, float],
                        max_loss: float = 0.01) -> tuple[str, dict[str, float]]:
    """'int8' when no head loses more than `max_loss` (absolute F1/accuracy) against fp32, else 'fp32'.
    Also returns the loss per head."""
    losses = {k: round(fp32_summary[k] - int8_summary.get(k, 0.0), 4) for k in fp32_summary}
    return ("int8" if all(loss <= max_loss for loss in losses.values()) else "fp32"), losses
