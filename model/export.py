"""Export of the network to ONNX: fp32 and static int8 (per-channel weights) for the light inference path.

A sentence's outputs do not depend on the batch it is run in (issue 13): the int8 graph's activation
scales are calibrated once (static quantization; the former dynamic quantization took one scale per
batch, so 8 of 586 test sentences changed event type with the chunk size), and the sentence vector's
sum over tokens runs in a fixed order (`make_pooling_sequential`). Tested in tests/test_batch_independence.py.

Before int8 quantization the graph is "smoothed" (the SmoothQuant idea): one scale per activation tensor
means a few channels with large values cost every other channel its precision. Each weight MatMul's
input is divided per channel by s and the weight rows multiplied by s (the product is unchanged in
exact arithmetic), with s = amax(x)^alpha / amax(w)^(1-alpha) taken from calibration sentences. Measured
with dynamic int8 on the default model's dev split (benchmarks/bench_int8.py): plain int8 lost 1.3
points of mode macro-F1; smoothed with alpha 0.8, no head lost more than 0.9. With static int8 on the
real encoder, smoothing halves the error against fp32 (benchmarks/README.md).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from eventcoder.model.backends import INPUT_NAMES, Batch
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
    outputs = network.output_names()  # an absent head has no output in the graph
    dynamic = {name: axes for name, axes in dynamic.items() if name in INPUT_NAMES or name in outputs}
    fp32_path = directory / ONNX_FILE
    with warnings.catch_warnings(), torch.inference_mode(), network.exporting():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(fp32_path),
            input_names=list(INPUT_NAMES), output_names=outputs, dynamic_axes=dynamic,
            opset_version=opset, dynamo=False)
    make_pooling_sequential(fp32_path)
    files = {"fp32": ONNX_FILE, "default": ONNX_FILE}
    if quantize and not calibration:
        log.warning("no calibration sentences: int8 graph not written (static int8 needs them)")
    elif quantize:
        source = fp32_path
        if smoothing_alpha > 0:
            source = directory / "model.smoothed.onnx"
            smooth_for_int8(fp32_path, source, calibration, smoothing_alpha)
        try:
            quantize_int8(source, directory / ONNX_INT8_FILE, calibration)
        finally:
            if source != fp32_path:
                source.unlink(missing_ok=True)
        files["int8"] = ONNX_INT8_FILE
    return files


def make_pooling_sequential(path: Path | str) -> None:
    """Rewrite the graph's sums over the sequence axis outside the encoder (the masked mean of `pooled`)
    as CumSum + last element.

    onnxruntime's ReduceSum picks its summation order from the tensor's shape (one order for a batch of
    one, another for several, another again for each padded length), so `pooled` and the event/mode
    logits of a sentence changed in the last bits with its batch. CumSum adds the positions one after
    the other, and a padded position adds an exact 0, so the sum is the same in any batch. The encoder
    itself is row-wise (padding is masked to exact zeros in attention) and needs no change.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    constants.update({node.output[0]: numpy_helper.to_array(node.attribute[0].t) for node in graph.node
                      if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"})
    rewritten = []
    for index, node in enumerate(graph.node):
        if node.op_type != "ReduceSum" or node.name.startswith("/encoder/") or len(node.input) < 2:
            continue
        if constants.get(node.input[1]) is None or constants[node.input[1]].tolist() != [1]:
            continue
        keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
        axis, last = f"{node.name}/axis", f"{node.name}/last"
        graph.initializer.extend([numpy_helper.from_array(np.array(1, dtype=np.int64), axis),
                                  numpy_helper.from_array(np.array([-1] if keepdims else -1, dtype=np.int64), last)])
        running = f"{node.name}/cumsum_output"
        rewritten.append((index, [helper.make_node("CumSum", [node.input[0], axis], [running], name=f"{node.name}/cumsum"),
                                  helper.make_node("Gather", [running, last], [node.output[0]], axis=1,
                                                   name=f"{node.name}/last")]))
    for index, nodes in reversed(rewritten):
        del graph.node[index]
        for offset, new in enumerate(nodes):
            graph.node.insert(index + offset, new)
    used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    for init in [init for init in graph.initializer if init.name not in used]:  # the ReduceSums' axes
        graph.initializer.remove(init)
    for node in [node for node in graph.node if node.op_type == "Constant" and node.output[0] not in used]:
        graph.node.remove(node)  # (or these: onnxruntime warns on stderr about unused constants)
    onnx.save(model, str(path))


def quantize_int8(source: Path | str, target: Path | str, calibration: Sequence[Batch],
                  activation_type: str = "uint8", reduce_range: bool = True) -> None:
    """Static int8 quantization (QDQ) of the encoder's weight MatMuls: weights per output channel,
    activations with one scale per tensor fixed from `calibration` (min/max); MatMul outputs stay fp32.

    Every quantization parameter is a constant of the graph, so a sentence's outputs do not depend on
    the other sentences of its batch nor on padding (dynamic quantization took the scale of the whole
    batch). `reduce_range` keeps weights in 7 bits: x86 kernels without VNNI multiply uint8 x int8 with
    VPMADDUBSW, whose 16-bit sums of two products saturate for full-range weights (255 * 127 * 2 >
    32767) but not for 7-bit ones (255 * 63 * 2). With 7 bits the integer sums are exact on AVX2,
    AVX-512 and VNNI alike, and on an AVX2 machine int8 is closer to fp32 (benchmarks/README.md).
    Int8 activations (`activation_type="int8"`) were as accurate and 35% slower on AVX2."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    nodes = [node.name for node in _encoder_weight_matmuls(source)]
    reader = _CalibrationReader(source, calibration)
    kinds = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    with _quiet_root_logger():
        quantize_static(str(source), str(target), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=reduce_range, activation_type=kinds[activation_type],
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True, "OpTypesToExcludeOutputQuantization": ["MatMul"],
                                       "ActivationSymmetric": activation_type == "int8"})


def quantize_int8_dynamic(source: Path | str, target: Path | str) -> None:
    """The former int8 (dynamic: activation scales taken per batch at run time, so a sentence's outputs
    depend on its batch). Kept for comparisons (benchmarks/bench_int8.py), not exported."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Silences ORT's "consider pre-processing" hint, which goes to the root logger."""
    root = logging.getLogger()
    was_disabled, root.disabled = root.disabled, True
    try:
        yield
    finally:
        root.disabled = was_disabled


class _CalibrationReader:
    """onnxruntime's CalibrationDataReader over padded batches (only the graph's own inputs)."""

    def __init__(self, graph: Path | str, batches: Sequence[Batch]) -> None:
        import onnx

        names = {i.name for i in onnx.load(str(graph), load_external_data=False).graph.input}
        self._batches = iter([{k: v for k, v in batch.items() if k in names} for batch in batches])

    def get_next(self) -> Batch | None:
        return next(self._batches, None)


def _encoder_weight_matmuls(graph: Path | str | Any) -> list[Any]:
    """The encoder's MatMul nodes with a constant weight (not attention's activation x activation ones)."""
    import onnx

    model = graph if isinstance(graph, onnx.ModelProto) else onnx.load(str(graph))
    initializers = {init.name for init in model.graph.initializer}
    return [node for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in initializers and node.name.startswith("/encoder/")]


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
    for node in _encoder_weight_matmuls(model):
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
    Also returns the loss per figure.

    A head's macro-F1 loss counts only where int8 also gets at least half of `max_loss` fewer of that
    head's dev answers right (its `_accuracy`): a head with many rare labels (mode: 67, most with under
    ten dev sentences) moves half a point of macro-F1 for one sentence. Measured on the default model's
    dev split: int8 mode macro-F1 -1.43 points with mode accuracy -0.13 (15 of 1,298 sentences changed
    mode, about as many right as before); every other head within 0.5 points.
    """
    losses = {k: round(fp32_summary[k] - int8_summary.get(k, 0.0), 4) for k in fp32_summary}

    def counts(key: str) -> bool:
        if losses[key] <= max_loss:
            return False
        accuracy = key.removesuffix("_macro_f1") + "_accuracy"
        return not (key.endswith("_macro_f1") and accuracy in losses and losses[accuracy] < max_loss / 2)

    return ("fp32" if any(counts(k) for k in losses) else "int8"), losses
