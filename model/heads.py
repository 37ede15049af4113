"""Label maps of the heads, and the head arithmetic that every backend shares (NumPy).

The network (torch) and the ONNX graph stop at the encoder outputs plus the sentence- and
token-level logits; span heads (stance, actor type) run here on pooled span vectors, so one piece
of code serves training-time evaluation, the torch backend and the ONNX backend alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Head names, used as keys in the model directory's config and in the weights file.
EVENT_HEAD = "event_type"
MODE_HEAD = "mode"
ACTOR_HEAD = "actors"
STANCE_HEAD = "stance"
ACTOR_TYPE_HEAD = "actor_type"
SPAN_HEADS = (STANCE_HEAD, ACTOR_TYPE_HEAD)
ALL_HEADS = (EVENT_HEAD, MODE_HEAD, ACTOR_HEAD, STANCE_HEAD, ACTOR_TYPE_HEAD)


@dataclass
class LabelMap:
    """id2label of one head; label order is fixed when the model is created."""

    labels: list[str]
    label2id: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in {self.labels}")
        self.label2id = {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict[str, str]:
        return {str(i): label for i, label in enumerate(self.labels)}

    @classmethod
    def from_json(cls, id2label: dict[str, str]) -> "LabelMap":
        return cls([id2label[str(i)] for i in range(len(id2label))])


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def span_features(hidden: np.ndarray, pooled: np.ndarray, first: int, last: int) -> np.ndarray:
    """[mean of the span's token vectors ; sentence vector]: the input of every span head."""
    return np.concatenate([hidden[first : last + 1].mean(axis=0), pooled])


def linear(weights: dict[str, np.ndarray], name: str, features: np.ndarray) -> np.ndarray:
    return features @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]


def allowed_modes(mode_labels: list[str], event_type: str) -> list[int]:
    """Indices of the mode labels valid for an event type (mode labels are 'TYPE/mode')."""
    prefix = f"{event_type}/"
    return [i for i, label in enumerate(mode_labels) if label.startswith(prefix)]


def pick_mode(mode_logits: np.ndarray, mode_labels: list[str], event_type: str) -> tuple[str, float]:
    """Best mode among those valid for the event type; ('', 0.0) when the type has none."""
    valid = allowed_modes(mode_labels, event_type)
    if not valid:
        return "", 0.0
    probs = softmax(mode_logits[valid])
    best = int(np.argmax(probs))
    return mode_labels[valid[best]].split("/", 1)[1], float(probs[best])


def head_sizes(label_maps: dict[str, LabelMap]) -> dict[str, int]:
    return {name: len(label_maps[name]) for name in ALL_HEADS if name in label_maps}


def label_maps_to_json(label_maps: dict[str, LabelMap]) -> dict[str, Any]:
    return {name: {"id2label": lm.to_json()} for name, lm in label_maps.items()}


def label_maps_from_json(raw: dict[str, Any]) -> dict[str, LabelMap]:
    return {name: LabelMap.from_json(entry["id2label"]) for name, entry in raw.items()}
