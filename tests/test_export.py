"""ONNX export: the int8 smoothing keeps the function, fixes outlier channels, the int8 graph is static,
and the default choice rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from eventcoder.model.export import (
    calibration_batches, choose_default_onnx, quantize_int8, quantize_int8_dynamic, smooth_for_int8,
)
from eventcoder.model.tokenization import load_tokenizer

REPO = Path(__file__).resolve().parent.parent


def _two_matmul_graph(path: Path, rng: np.random.Generator) -> None:
    """x -> MatMul(w1) -> y; y -> MatMul(w2) and MatMul(w3) (two readers of one tensor, as Q/K/V)."""
    w1, w2, w3 = (rng.normal(0, 0.2, (16, 16)).astype(np.float32) for _ in range(3))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["y"], name="/encoder/one/MatMul"),
             helper.make_node("MatMul", ["y", "w2"], ["a"], name="/encoder/two/MatMul"),
             helper.make_node("MatMul", ["y", "w3"], ["b"], name="/encoder/three/MatMul")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 16])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b")],
        [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _outputs(path: Path, x: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["a", "b"], {"x": x})


def _inputs_with_an_outlier_channel(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(0, 1, (n, 5, 16)).astype(np.float32)
    x[..., 3] *= 60.0  # one loud channel, as in transformer activations
    return x


def test_smoothing_keeps_the_function_and_shares_one_scale_between_readers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _two_matmul_graph(tmp_path / "g.onnx", rng)
    x = _inputs_with_an_outlier_channel(rng, 8)
    smooth_for_int8(tmp_path / "g.onnx", tmp_path / "s.onnx", [{"x": x}], alpha=0.8)
    for plain, smoothed in zip(_outputs(tmp_path / "g.onnx", x), _outputs(tmp_path / "s.onnx", x)):
        np.testing.assert_allclose(plain, smoothed, rtol=1e-4, atol=1e-3)
    muls = [n for n in onnx.load(str(tmp_path / "s.onnx")).graph.node if n.op_type == "Mul"]
    assert sorted(n.input[0] for n in muls) == ["x", "y"]  # one per input tensor, not one per MatMul


@pytest.mark.parametrize("static", [True, False])
def test_smoothing_makes_int8_closer_to_fp32_when_a_channel_is_loud(tmp_path: Path, static: bool) -> None:
    rng = np.random.default_rng(1)
    _two_matmul_graph(tmp_path / "g.onnx", rng)
    calibration = [{"x": _inputs_with_an_outlier_channel(rng, 8)} for _ in range(4)]
    smooth_for_int8(tmp_path / "g.onnx", tmp_path / "s.onnx", calibration, alpha=0.8)
    for name in ("g", "s"):
        if static:
            quantize_int8(tmp_path / f"{name}.onnx", tmp_path / f"{name}8.onnx", calibration)
        else:
            quantize_int8_dynamic(tmp_path / f"{name}.onnx", tmp_path / f"{name}8.onnx")
    x = _inputs_with_an_outlier_channel(rng, 16)
    reference = _outputs(tmp_path / "g.onnx", x)

    def error(path: Path) -> float:
        return float(np.mean([np.abs(o - r).mean() / np.abs(r).mean() for o, r in zip(_outputs(path, x), reference)]))

    assert error(tmp_path / "s8.onnx") < 0.6 * error(tmp_path / "g8.onnx")


def test_static_int8_quantizes_the_weight_matmuls_with_constant_scales(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    _two_matmul_graph(tmp_path / "g.onnx", rng)
    quantize_int8(tmp_path / "g.onnx", tmp_path / "g8.onnx", [{"x": _inputs_with_an_outlier_channel(rng, 8)}])
    graph = onnx.load(str(tmp_path / "g8.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "DynamicQuantizeLinear" not in ops and ops.count("QuantizeLinear") == 2  # x and y, not the outputs
    constants = {init.name for init in graph.initializer}
    assert all(name in constants for n in graph.node if n.op_type == "QuantizeLinear" for name in n.input[1:])


def test_calibration_batches_are_padded_by_length(trained_model: Path) -> None:
    tokenizer = load_tokenizer(trained_model / "tokenizer.json", 64)
    texts = ["Police fired.", "Rebels shelled the northern town of Goma on Monday, killing six.", "Talks began."]
    batches = calibration_batches(tokenizer.encode_batch(texts), batch_size=2)
    assert [b["input_ids"].shape[0] for b in batches] == [2, 1]
    assert batches[1]["attention_mask"].sum() == len(tokenizer.encode(texts[1]).ids)  # the longest comes last


def test_the_default_graph_is_int8_only_within_a_point() -> None:
    fp32 = {"event_type_macro_f1": 0.90, "mode_macro_f1": 0.80}
    assert choose_default_onnx(fp32, {"event_type_macro_f1": 0.895, "mode_macro_f1": 0.79})[0] == "int8"
    choice, losses = choose_default_onnx(fp32, {"event_type_macro_f1": 0.91, "mode_macro_f1": 0.785})
    assert choice == "fp32" and losses == {"event_type_macro_f1": -0.01, "mode_macro_f1": 0.015}


def test_a_macro_f1_loss_without_fewer_right_answers_does_not_cost_int8() -> None:
    fp32 = {"mode_macro_f1": 0.80, "mode_accuracy": 0.900, "stance_macro_f1": 0.85, "stance_accuracy": 0.90}
    rare_labels_moved = {"mode_macro_f1": 0.785, "mode_accuracy": 0.898, "stance_macro_f1": 0.85, "stance_accuracy": 0.90}
    assert choose_default_onnx(fp32, rare_labels_moved)[0] == "int8"
    fewer_right = {**rare_labels_moved, "mode_accuracy": 0.894}   # half a point fewer right: the macro loss counts
    assert choose_default_onnx(fp32, fewer_right)[0] == "fp32"
    accuracy_lost = {**fp32, "stance_accuracy": 0.88}   # an accuracy loss over a point counts on its own
    assert choose_default_onnx(fp32, accuracy_lost)[0] == "fp32"


def test_training_records_the_int8_check(trained_model: Path) -> None:
    report = json.loads((trained_model / "metrics.json").read_text())["onnx"]
    assert report["int8_smoothing_alpha"] == 0.8 and report["default"] in {"fp32", "int8"}
    assert set(report["int8_loss"]) == set(report["dev_fp32"])
    shipped = json.loads((trained_model / "eventcoder.json").read_text())["onnx"]["default"]
    assert shipped == {"fp32": "model.onnx", "int8": "model.int8.onnx"}[report["default"]]
    assert not (trained_model / "model.smoothed.onnx").exists()


@pytest.mark.integration
def test_export_command_rewrites_both_graphs_and_checks_int8(trained_model: Path, tmp_path: Path,
                                                             tiny_corpus: dict[str, Path]) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    for name in ("model.onnx", "model.int8.onnx"):
        (model / name).unlink()
    result = subprocess.run(
        [sys.executable, "-m", "eventcoder.serve.cli", "export", "--model", str(model),
         "--calibration-file", str(tiny_corpus["train"]), "--dev-file", str(tiny_corpus["dev"])],
        capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["fp32"] == "model.onnx" and printed["int8"] == "model.int8.onnx" and "int8_loss" in printed
    assert (model / "model.onnx").is_file() and (model / "model.int8.onnx").is_file()
    muls = [n.name for n in onnx.load(str(model / "model.int8.onnx")).graph.node if n.name.endswith("/smooth")]
    assert muls, "the int8 graph was quantized from the smoothed copy"
    assert json.loads((model / "eventcoder.json").read_text())["onnx"]["default"] == printed["default"]


def test_metrics_are_scored_with_the_graph_the_model_serves(trained_model: Path) -> None:
    metadata = json.loads((trained_model / "eventcoder.json").read_text())
    metrics = json.loads((trained_model / "metrics.json").read_text())
    kind = "int8" if metadata["onnx"]["default"] == metadata["onnx"].get("int8") else "fp32"
    assert metrics["scored_with"] == f"onnx {kind}" and metrics["onnx"]["default"] == kind
