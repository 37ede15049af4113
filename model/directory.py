"""The model directory: what is in it, writing it atomically, and reading it back safely.

Layout::

    eventcoder.json        labels of every head (id2label), max length, version, encoder config
    model.safetensors      all weights (encoder + heads); never a pickle
    tokenizer.json         the fast tokenizer (plus the transformers tokenizer files)
    training_config.yaml   the configuration it was trained with
    metrics.json           dev metrics per epoch and of the kept epoch
    README.md              the model card
    model.onnx / model.int8.onnx   optional, written by `eventcoder export`
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from eventcoder.model.heads import ACTOR_HEAD, EVENT_HEAD, STANCE_HEAD, LabelMap, label_maps_from_json, label_maps_to_json

METADATA_FILE = "eventcoder.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
FORMAT_VERSION = 1
REQUIRED_FILES = (METADATA_FILE, WEIGHTS_FILE, TOKENIZER_FILE)
CORE_HEADS = (EVENT_HEAD, ACTOR_HEAD, STANCE_HEAD)  # a model has at least one; any of them may be absent
DEFAULT_MODEL_DIR = Path("models/default")
TRAIN_HINT = "eventcoder train --config configs/default.yaml"


class ModelDirectoryError(RuntimeError):
    """A model directory that is missing, incomplete or corrupt."""


@dataclass
class ModelMetadata:
    name: str
    version: str
    max_length: int
    label_maps: dict[str, LabelMap]
    roles: list[str]
    encoder_config: dict[str, Any]
    onnx: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "max_length": self.max_length,
            "roles": self.roles,
            "heads": label_maps_to_json(self.label_maps),
            "encoder_config": self.encoder_config,
            "onnx": self.onnx,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "ModelMetadata":
        return cls(
            name=raw["name"], version=raw["version"], max_length=int(raw["max_length"]),
            label_maps=label_maps_from_json(raw["heads"]), roles=list(raw["roles"]),
            encoder_config=raw["encoder_config"], onnx=dict(raw.get("onnx", {})),
        )

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


def read_metadata(model_dir: Path | str) -> ModelMetadata:
    """Read and check a model directory's metadata; every problem is a ModelDirectoryError."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirectoryError(
            f"no model directory at {model_dir}; make the default model with: {TRAIN_HINT}")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelDirectoryError(
            f"model directory {model_dir} is incomplete (missing {', '.join(missing)}); "
            f"retrain it with: {TRAIN_HINT}")
    try:
        raw = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
        metadata = ModelMetadata.from_json(raw)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise ModelDirectoryError(f"{model_dir / METADATA_FILE} is corrupt: {str(err)[:200]}") from err
    empty = [name for name, label_map in metadata.label_maps.items() if not len(label_map)]
    if empty or not any(name in metadata.label_maps for name in CORE_HEADS):
        raise ModelDirectoryError(f"{model_dir / METADATA_FILE} is corrupt: no labels for the heads "
                                  f"{', '.join(empty or CORE_HEADS)}")
    return metadata


def write_metadata(model_dir: Path, metadata: ModelMetadata) -> None:
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata.to_json(), indent=1), encoding="utf-8")


def load_numpy_weights(model_dir: Path | str, prefix: str = "heads.") -> dict[str, Any]:
    """Weights whose names start with `prefix`, as NumPy arrays, without torch."""
    from safetensors import SafetensorError, safe_open

    path = Path(model_dir) / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="np") as handle:
            return {key[len(prefix):]: handle.get_tensor(key) for key in handle.keys() if key.startswith(prefix)}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelDirectoryError(f"{path} is corrupt or unreadable: {err}") from err


def write_atomically(target: Path | str, fill: Callable[[Path], None], keep_previous: bool = False) -> Path | None:
    """Build a directory in a temporary sibling and rename it into place.

    `fill(tmp_dir)` writes the files. A crash leaves the old directory untouched (at worst a
    stale `.tmp-*` sibling). Returns where the previous version was kept, if asked to keep it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
    try:
        tmp.mkdir()
        fill(tmp)
        _readable_modes(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return replace_directory(tmp, target, keep_previous)


def replace_directory(finished: Path, target: Path, keep_previous: bool = False) -> Path | None:
    """Rename the complete directory `finished` (a sibling of `target`) into `target`'s place; the old
    `target` is kept as `<name>.previous-<time>` if asked (returned), else removed."""
    previous: Path | None = None
    if target.exists():
        previous = target.parent / f"{target.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(target, previous)
    os.replace(finished, target)
    if previous is not None and not keep_previous:
        shutil.rmtree(previous, ignore_errors=True)
        previous = None
    return previous


def _readable_modes(directory: Path) -> None:
    """Every file as the umask allows (0644 under the usual 022): some writers (safetensors) make
    their files 0600, which a model directory shared between users cannot be read from."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
