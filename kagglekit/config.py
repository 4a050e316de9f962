"""One typed config per run. Loaded from YAML, overridden by CLI options, saved beside the outputs.

A config file may set any subset of fields; unknown keys are errors (a typo must not silently
fall back to a default).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kagglekit.errors import ConfigError
from kagglekit.fileio import atomic_write_text


@dataclass
class AugmentConfig:
    """Keras preprocessing-layer augmentation (the values the seed notebooks used)."""

    horizontal_flip: bool = True
    vertical_flip: bool = True
    rotation: float = 0.5  # fraction of a full turn, as keras.layers.RandomRotation takes it
    shift: float = 0.1
    shear: float = 0.1
    zoom: float = 0.1
    channel_shift: float = 0.05  # fraction of the value range


@dataclass
class TrainConfig:
    """The two training stages: a head on cached frozen features, then optional fine-tuning.

    ``multiscale`` pools several stages of each backbone (the registry's taps), not just the last one.
    Fine-tuning trains the top blocks of the first backbone (after its registry cut point) on cached
    activations; its probabilities are averaged with the head's.
    """

    head_epochs: int = 60
    head_lr: float = 2e-3
    head_dropout: float = 0.3
    label_smoothing: float = 0.1
    multiscale: bool = True
    views: list[str] = field(default_factory=lambda: ["identity", "hflip", "vflip", "rot90"])
    finetune: bool = False
    finetune_epochs: int = 8
    finetune_lr: float = 3e-4
    batch_size: int = 64
    patience: int = 8
    class_weights: bool = True


@dataclass
class MultiLabelConfig:
    """Multi-label classification (sigmoid head): loss, per-class weights, OOF-tuned thresholds."""

    loss: str = "bce"  # "bce" or "focal"
    focal_gamma: float = 2.0
    class_weights: bool = True  # weight each class's positives by sqrt(negatives / positives)
    top1_fallback: bool = True  # an image predicted with no label gets its likeliest one


@dataclass
class SegmentationConfig:
    """Segmentation on a pretrained backbone (the first of ``backbones``); CPU-sized defaults."""

    head: str = "deeplabv3plus"  # or "unet": a name in kagglekit.models.segmentation.SEGMENTATION_HEADS
    input_size: list[int] = field(default_factory=lambda: [160, 224])  # height, width
    freeze_encoder: bool = True
    epochs: int = 6
    batch_size: int = 8
    lr: float = 1e-3
    dice_weight: float = 1.0  # loss = sparse cross-entropy + dice_weight * soft Dice
    hflip: bool = True  # augmentations applied identically to image and mask
    scale: float = 0.25  # random crop of 1 - scale .. 1 of each side, resized back
    valid_fraction: float = 0.2  # grouped hold-out for early stopping and the reported mIoU
    patience: int = 3
    consistency: str = "auto"  # drop mask classes the classifier rules out: "auto" (if CV says so), "on", "off"
    max_train_images: int = 0  # 0: all; >0 caps the images a quick run trains on


@dataclass
class RunConfig:
    competition: str = "seedlings"
    data: str | None = None
    backbones: list[str] = field(default_factory=lambda: ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    image_size: int = 224
    folds: int = 5
    seed: int = 42
    weights_dir: str | None = None
    output_dir: str = "submissions"
    tta: list[str] = field(default_factory=lambda: ["identity", "hflip", "vflip", "rot90"])
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    multilabel: MultiLabelConfig = field(default_factory=MultiLabelConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Identity of what the run computes (paths excluded), for the ledger and caches."""
        payload = self.to_dict()
        for key in ("data", "output_dir", "weights_dir"):
            payload.pop(key)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path, **overrides) -> "RunConfig":
        return from_dict(cls, merge(read_config_file(path), overrides), where=str(path))


def read_config_file(path: str | Path) -> dict:
    """The mapping a config file sets (only the keys it names: defaults are not filled in)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping, got {type(raw).__name__}")
    from_dict(RunConfig, raw, where=str(path))  # names and types checked against the file itself
    return raw


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` (None values mean 'not given') into ``base``."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(cls, raw: dict, where: str = "config"):
    """Build dataclass ``cls`` from a mapping, checking names and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint, value, where):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, float, str):
        try:
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from None
    return value
