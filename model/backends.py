"""Inference backends: each turns a padded batch into the network's outputs as NumPy arrays.

The ONNX backend imports neither torch nor transformers; the torch backend is imported lazily.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

OUTPUT_NAMES = ("hidden", "pooled", "event_logits", "mode_logits", "bio_logits")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
Batch = dict[str, np.ndarray]


class Backend(Protocol):
    name: str
    threads: int

    def run(self, batch: Batch) -> Batch: ...

    def submit(self, batch: Batch) -> Future[Batch]: ...


def available_cores() -> int:
    """CPU cores this process may use: EVENTCODER_THREADS if set, else the affinity mask."""
    configured = int(os.environ.get("EVENTCODER_THREADS", "0") or 0)
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxBackend:
    """onnxruntime session over an exported graph (fp32 or int8).

    Several cores are used data-parallel: every batch runs single-threaded and `threads` batches run at
    once (onnxruntime releases the GIL). For a 6-layer MiniLM's small matrices that scales better than
    splitting each operator: on 2 cores, int8, batches of 32: 595 sentences/s against 495 for one call
    on 2 intra-op threads (benchmarks/bench_threads.py). Results do not depend on the thread count.
    """

    def __init__(self, path: Path | str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.threads = threads or available_cores()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, InvalidArgument, ...)
            from eventcoder.model.directory import ModelDirectoryError

            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelDirectoryError(f"{path} is corrupt or unreadable ({first_line}); "
                                      f"rewrite it with: eventcoder export --model {Path(path).parent}") from err
        self.input_names = {i.name for i in self.session.get_inputs()}
        # a graph has no output for a head its model lacks (older graphs have all five)
        self.output_names = [o.name for o in self.session.get_outputs() if o.name in OUTPUT_NAMES]
        self.name = f"onnx:{Path(path).name}"
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx") if self.threads > 1 else None

    def run(self, batch: Batch) -> Batch:
        feeds = {k: v for k, v in batch.items() if k in self.input_names}
        outputs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outputs))

    def submit(self, batch: Batch) -> Future[Batch]:
        """Start a batch on one of the threads (or run it now when there is one thread)."""
        if self._pool is not None:
            return self._pool.submit(self.run, batch)
        return done(self.run(batch))


def done(outputs: Batch) -> Future[Batch]:
    future: Future[Batch] = Future()
    future.set_result(outputs)
    return future


class TorchBackend:
    """The torch network under inference mode (used for training-time evaluation and export)."""

    def __init__(self, network: Any) -> None:
        import torch

        self.torch = torch
        self.network = network
        self.name = "torch"
        self.threads = torch.get_num_threads()

    @classmethod
    def from_directory(cls, model_dir: Path | str, head_sizes: dict[str, int],
                       encoder_config: dict[str, Any]) -> "TorchBackend":
        from safetensors.torch import load_file

        from eventcoder.model.network import EventCoderNetwork

        network = EventCoderNetwork.from_encoder_config(encoder_config, head_sizes)
        state = load_file(str(Path(model_dir) / "model.safetensors"))
        missing, unexpected = network.load_state_dict(state, strict=False)
        if missing or unexpected:
            from eventcoder.model.directory import ModelDirectoryError

            raise ModelDirectoryError(
                f"{model_dir}/model.safetensors does not match the model's config "
                f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
        network.eval()
        return cls(network)

    def run(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        was_training = self.network.training
        self.network.eval()
        with torch.inference_mode():
            outputs = self.network(**{k: torch.from_numpy(v) for k, v in batch.items()})
        if was_training:
            self.network.train()
        present = set(self.network.output_names())
        return {name: out.float().numpy() for name, out in zip(OUTPUT_NAMES, outputs) if name in present}

    def submit(self, batch: Batch) -> Future[Batch]:
        return done(self.run(batch))  # torch splits each operator over its own threads
