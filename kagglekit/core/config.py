"""One typed config per run: checked when read (naming the key at fault), frozen, saved beside the outputs.

Defaults < the competition's run defaults < ``--config FILE`` < command-line options. A file may set any
subset of fields; unknown keys are errors (a typo must not silently fall back to a default). Every field
declares its type and allowed values, so a wrong value fails when the file is read, not an hour into a run.
"""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_text


def _split_commas(value):
    """``--backbone a,b`` and ``views: a, b`` mean the list [a, b]."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _seconds(value):
    """``30m``, ``1.5h``, ``90s`` or a number: seconds (a duration as people write it)."""
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
        if not found:
            raise ValueError(f"{value!r} is not a duration such as 30m, 1.5h, 90s or 1800 (seconds)")
        return float(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[found[2]]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: The dihedral views of ``data.views`` (kept equal by ``tests/data/test_views.py``); ``augment1``, ``augment2``, ... are
#: ``data.augment``'s cached augmented passes.
DIHEDRAL_VIEWS = ("identity", "hflip", "vflip", "rot90", "rot180", "rot270", "transpose", "antitranspose")


def _known_views(names: list[str]) -> list[str]:
    """A misspelt view fails when the config is read, not at the prediction after a run's training."""
    unknown = [name for name in names if name not in DIHEDRAL_VIEWS and not re.fullmatch(r"augment\d+", name)]
    if unknown:
        raise ValueError(f"unknown view(s) {', '.join(map(repr, unknown))}; known: {', '.join(DIHEDRAL_VIEWS)}, "
                         "augment1, augment2, ...")
    return names


#: Seconds, given as a number or as ``30m`` / ``1.5h`` / ``90s``.
Duration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
#: A non-empty list of names, given as a YAML list or a comma-separated string.
Names = Annotated[list[str], BeforeValidator(_split_commas), Field(min_length=1)]
#: View names (``DIHEDRAL_VIEWS``, ``augment<n>``), given as a list or a comma-separated string; ``Views`` not empty.
OptionalViews = Annotated[list[str], BeforeValidator(_split_commas), AfterValidator(_known_views)]
Views = Annotated[OptionalViews, Field(min_length=1)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
#: kagglekit.models.optimizers.OPTIMIZERS; the learning rates below are Adam-family rates (SGD takes 10x them)
OptimizerName = Literal["adamw", "adam", "sgd", "rmsprop"]


class Section(BaseModel):
    """Strict (no "yes" for true, no "3" for 3), closed (unknown keys fail) and frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AugmentConfig(Section):
    """Keras preprocessing-layer augmentation (the values the seed notebooks used)."""

    horizontal_flip: bool = True
    vertical_flip: bool = True
    rotation: Fraction = 0.5  # fraction of a full turn, as keras.layers.RandomRotation takes it
    # a random transpose of square images: with both flips, any of the 8 right-angle rotations and reflections,
    # exact and almost free (keras.layers.RandomRotation resamples every pixel: half the augmentation's time)
    transpose: bool = False
    shift: Fraction = 0.1
    shear: Fraction = 0.0  # off by default: the slowest layer (a third of the augmentation time on a CPU)
    zoom: Annotated[float, Field(ge=0, lt=1)] = 0.1
    channel_shift: Fraction = 0.05  # fraction of the value range
    # streamed fine-tuning only (train.learner: finetune): drawn afresh every batch
    randaugment: bool = False  # keras.layers.RandAugment: two random ops per image
    mixup: Annotated[float, Field(ge=0)] = 0.0  # keras.layers.MixUp alpha; 0: off
    cutmix: Annotated[float, Field(ge=0)] = 0.0  # keras.layers.CutMix alpha; 0: off
    # a random resized crop of the full-resolution decode, drawn per image and epoch (streamed learners, where
    # it replaces shift and zoom): the crop's share of the image's area and its width / height, each drawn
    # from [low, high]. Mild by default: on all of Plant Seedlings (fold 0, 532 held-out images, fine-tuned
    # Lite0 at 224 px, 12 epochs) area [0.8, 1] and ratio [0.9, 1.11] scored 0.931, no crop (shift and zoom
    # 0.1) 0.929, ImageNet's [0.5, 1] x [0.75, 1.33] 0.915: short schedules on small datasets underfit it
    crop: bool = True
    crop_scale: Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=2, max_length=2)] = [0.8, 1.0]
    crop_ratio: Annotated[list[PositiveFloat], Field(min_length=2, max_length=2)] = [0.9, 1.111]

    @field_validator("crop_scale", "crop_ratio")
    @classmethod
    def _low_then_high(cls, value: list[float]) -> list[float]:
        if value[0] > value[1]:
            raise ValueError(f"expected [low, high], got {value}")
        return value


class StreamConfig(Section):
    """How images reach the streamed learners: encoded once into TFRecord shards in the cache
    (``kagglekit.data.shards``), shared by folds and runs, and decoded in the tf.data graph every epoch."""

    # a longer side is re-encoded (JPEG) to this; smaller images are kept as they are. 768 keeps VGA-sized photos
    # (640x480: re-encoding them to 512 was most of a 40,000-image cold start) and stores enough of a larger one
    # for random crops at 384 px; libjpeg's DCT scaling keeps decoding a large kept JPEG cheap
    max_side: Annotated[int, Field(ge=32, le=8192)] = 768
    jpeg_quality: Annotated[int, Field(ge=50, le=100)] = 95  # of the re-encoded images
    images_per_shard: PositiveInt = 1024


class TrainConfig(Section):
    """How classifiers learn. ``learner: head`` trains a head on cached frozen features (then, with
    ``top_blocks``, the first backbone's top blocks on cached activations); ``learner: finetune`` trains
    the whole first backbone on streamed images (see ``FineTuneConfig``).

    ``multiscale`` pools several stages of each backbone (the registry's taps), not just the last one.
    The top blocks are those after the backbone's registry cut point; their probabilities are averaged
    with the head's.
    """

    learner: Literal["auto", "head", "finetune"] = "auto"  # auto: finetune where the task has it, else head
    optimizer: OptimizerName = "adam"  # heads and top blocks
    head_epochs: PositiveInt = 60
    head_lr: PositiveFloat = 2e-3
    head_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.1
    multiscale: bool = True
    views: Views = ["identity", "hflip", "vflip", "rot90"]
    top_blocks: bool = False
    top_blocks_epochs: PositiveInt = 8
    top_blocks_lr: PositiveFloat = 3e-4
    batch_size: PositiveInt = 64
    patience: PositiveInt = 8
    class_weights: bool = True


class FineTuneConfig(Section):
    """Whole-network fine-tuning (``train.learner: finetune``) in stages of gradual unfreezing: the new
    head alone, then the blocks above the backbone's cut point, then everything above the stem.

    The epoch budget is fixed in advance, with a cosine schedule per stage: nothing is chosen on the
    fold being scored, so the CV is honest. ``scored_folds`` of the K folds train and are scored (2 of 5 for
    20 epochs: on Plant Seedlings at its own 160 px, 1270 s of a 2-core CPU's 30 minutes, held-out 0.952 where 3 x 14
    scored 0.950 in 1501 s; the time budget trims on a slower machine, see ``learners.budget``); with ``refit``
    the submission's model then trains on every labelled image with the same budget, otherwise the scored folds'
    models are averaged.
    """

    epochs: PositiveInt = 20
    head_epochs: Annotated[int, Field(ge=0)] = 1
    top_epochs: Annotated[int, Field(ge=0)] = 2
    optimizer: OptimizerName = "adamw"
    lr: PositiveFloat = 1e-3
    lower_lr_factor: Annotated[float, Field(gt=0, le=1)] = 0.3  # LR multiplier for layers below the cut
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1  # of a stage's steps (at least 10, or half the stage)
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4  # decoupled (AdamW, SGD)
    clipnorm: PositiveFloat = 1.0
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0  # momentum of an EMA of the weights; 0: off
    batch_size: PositiveInt = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.2
    # the head starts as a linear probe fitted on the frozen features (LP-FT), not random: a random head
    # on unnormalised features starts at a loss of 4.8 (chance: 2.5) and wrecks the backbone it unfreezes
    probe: bool = True
    # progressive resizing (fast.ai; EfficientNetV2's progressive learning): the first ``progressive_share`` of the
    # epochs see images at ``progressive_scale`` of ``image_size`` (rounded to a multiple of 8), the rest at the size
    # the network predicts at. 1.0: off. Plant Seedlings on 2 cores: an epoch at 128 px cost 0.6 of one at 160, but
    # the seconds saved bought no accuracy (docs/benchmarks.md), so it is off by default
    progressive_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    progressive_share: Annotated[float, Field(ge=0, lt=1)] = 0.5
    freeze_stem: bool = True  # layers up to the backbone's first tap stay frozen (halves a CPU step)
    train_batchnorm: bool = False  # False: BatchNorm stays in inference mode (small batches would wreck it)
    # balanced class weights suit metrics that weigh classes equally (macro F1); accuracy and micro-F1 count
    # images, and on Plant Seedlings weighting cost 0.013 of held-out-fold micro-F1 (0.940 vs 0.953)
    class_weights: bool = False
    scored_folds: PositiveInt = 2
    refit: bool = False
    holdout_curve: bool = False  # score the held-out fold after every epoch (a curve; one more pass per epoch)
    # test-time views added to ``tta`` where the time budget still fits them once its folds and epochs are planned
    # (never at their cost; without a budget, never): on Plant Seedlings all 8 dihedral views beat the default 4
    spare_views: OptionalViews = ["rot180", "rot270", "transpose", "antitranspose"]


class DeviceConfig(Section):
    """Where and how numbers are computed; ``auto`` picks per machine (see kagglekit.learners.devices)."""

    strategy: Literal["auto", "none", "mirrored", "multi_worker", "tpu", "data_parallel"] = "auto"
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"
    jit_compile: Literal["auto", "on", "off"] = "auto"


class MultiLabelConfig(Section):
    """Multi-label classification (sigmoid head): loss, per-class weights, OOF-tuned thresholds."""

    loss: Literal["bce", "focal"] = "bce"
    focal_gamma: Annotated[float, Field(ge=0)] = 2.0
    class_weights: bool = True  # weight each class's positives by sqrt(negatives / positives)
    top1_fallback: bool = True  # an image predicted with no label gets its likeliest one
    # the F-score the thresholds maximise (kagglekit.learners.thresholds); auto: the one the competition's metric averages
    threshold_average: Literal["auto", "macro", "samples", "micro"] = "auto"


class SegmentationConfig(Section):
    """Segmentation on a pretrained backbone (the first of ``backbones``); CPU-sized defaults."""

    head: Literal["deeplabv3plus", "unet"] = "deeplabv3plus"  # kagglekit.models.segmentation.SEGMENTATION_HEADS
    input_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] = [160, 224]  # height, width
    freeze_encoder: bool = True
    epochs: PositiveInt = 6
    batch_size: PositiveInt = 8
    optimizer: OptimizerName = "adamw"
    lr: PositiveFloat = 1e-3
    encoder_lr_factor: Annotated[float, Field(gt=0, le=1)] = 0.3  # an unfrozen encoder's share of ``lr``
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4  # decoupled (AdamW, SGD)
    dice_weight: Annotated[float, Field(ge=0)] = 1.0  # loss = sparse cross-entropy + dice_weight * soft Dice
    hflip: bool = True  # augmentations applied identically to image and mask
    scale: Annotated[float, Field(ge=0, lt=1)] = 0.25  # random crop of 1 - scale .. 1 of each side, resized back
    valid_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2  # grouped hold-out, scored (mIoU), never tuned on
    scored_folds: Annotated[int, Field(ge=0)] = 0  # multi-label + segmentation: segmenters on this many folds (0: all K)
    consistency: Literal["auto", "on", "off"] = "auto"  # drop mask classes the classifier rules out
    max_train_images: Annotated[int, Field(ge=0)] = 0  # 0: all; >0 caps the images a quick run trains on


class RunConfig(Section):
    competition: str = "seedlings"
    data: str | None = None
    backbones: Names = ["efficientnet_lite0"]  # fine-tuning trains the first; heads read every one's features
    image_size: Annotated[int, Field(ge=32, le=2048)] = 224
    folds: Annotated[int, Field(ge=2)] = 5
    seed: Annotated[int, Field(ge=0)] = 42
    weights_dir: str | None = None
    output_dir: str = "submissions"
    # the whole run's wall time (kagglekit.learners.budget): fine-tuning and segmentation measure their step time
    # here and fit the epochs (at most the configured ones) and scored folds to it; null: the fixed epoch budget
    time_budget: Duration | None = 1800.0
    tta: Views = ["identity", "hflip", "vflip", "rot90"]
    augment: AugmentConfig = AugmentConfig()
    stream: StreamConfig = StreamConfig()
    train: TrainConfig = TrainConfig()
    finetune: FineTuneConfig = FineTuneConfig()
    device: DeviceConfig = DeviceConfig()
    multilabel: MultiLabelConfig = MultiLabelConfig()
    segmentation: SegmentationConfig = SegmentationConfig()

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

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


#: Named configs shipped with kagglekit (``--preset NAME``): plain config files in ``core/presets/``.
PRESETS_DIR = Path(__file__).with_name("presets")
PRESETS = ("fast", "accurate", "gpu")


def preset_file(name: str) -> Path:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS_DIR / f"{name}.yaml"


def read_config_file(path: str | Path) -> dict:
    """The mapping a config file sets (only the keys it names: defaults are not filled in)."""
    path = Path(path)
    raw = read_yaml(path, "config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of settings, got {type(raw).__name__}")
    from_dict(RunConfig, raw, where=str(path))  # names, types and ranges checked against the file itself
    return raw


def read_yaml(path: Path, what: str):
    """The data of a YAML file; ConfigError naming ``path`` (and the line, where YAML knows it) unless it
    is readable UTF-8 YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise bare IndexError, KeyError,
        # ValueError, AttributeError or RecursionError on a malformed tagged scalar ("!!float" alone,
        # "2001-13-45", "!!bool x") or deep nesting: all of them mean the file is wrong
        raise ConfigError(f"{what} {path} is not valid YAML: {type(exc).__name__}: {exc}") from None


def merge(base: dict, overrides: dict, nulls: bool = False) -> dict:
    """Deep-merge ``overrides`` into ``base``. None means 'not given' (command-line options), unless ``nulls``:
    then it is a value (a config file's ``time_budget: null`` turns the budget off)."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None and not nulls:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, nulls)
        else:
            out[key] = value
    return out


def from_dict(cls: type[BaseModel], raw, where: str = "config"):
    """Build ``cls`` from a mapping; every problem is reported with its dotted key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {raw!r}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_errors(exc)}") from None


#: Shows a wrong value briefly: a config may hold a huge string or an alias-expanded ("billion laughs") tree.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxlong = 2, 4, 4, 60, 40


def describe_errors(exc: ValidationError) -> str:
    """Every problem pydantic found, each with its dotted key: what a user needs to fix a settings file."""
    return "; ".join(_describe(error) for error in exc.errors())


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key}"
    return f"{key}: {error['msg'].lower()} (got {_SHORT.repr(error.get('input'))})"
