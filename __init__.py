"""eventcoder: codes news sentences with PLOVER event types, actors and their roles, and stance.

The installed package maps the repository's folders: `eventcoder.model` (network, heads, the
Predictor), `eventcoder.training` (data, config, trainer, metrics) and `eventcoder.serve` (CLI,
batch scoring, the web page). The public API is small and imported lazily, so `import eventcoder`
loads neither torch nor onnxruntime::

    from eventcoder import Predictor
    predictor = Predictor.from_pretrained("models/default")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Predictor", "SentencePrediction", "TrainConfig", "code_dataset", "train_from_config"]

if TYPE_CHECKING:
    from eventcoder.model.predictor import Predictor, SentencePrediction
    from eventcoder.serve.dataset_coding import code_dataset
    from eventcoder.training.config import TrainConfig
    from eventcoder.training.trainer import train_from_config

_WHERE = {
    "Predictor": "eventcoder.model.predictor",
    "SentencePrediction": "eventcoder.model.predictor",
    "TrainConfig": "eventcoder.training.config",
    "train_from_config": "eventcoder.training.trainer",
    "code_dataset": "eventcoder.serve.dataset_coding",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'eventcoder' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
