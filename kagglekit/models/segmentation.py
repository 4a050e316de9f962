"""Segmentation heads on the pretrained backbones: U-Net and DeepLabV3+ (one registry line each).

Both tap the encoder at the strides ``backbones.feature_layers`` names and end in per-pixel softmax
probabilities at the input size. Decoders are kept light (separable convolutions, few filters) so a
frozen-encoder model trains on a CPU in minutes.
"""

from __future__ import annotations

import keras
from keras import layers

from kagglekit.core.registry import Registry

SEGMENTATION_HEADS: Registry = Registry("segmentation head")


def conv_bn_relu(x, filters: int, name: str, kernel: int = 3, dilation: int = 1):
    conv = layers.SeparableConv2D if kernel > 1 else layers.Conv2D
    x = conv(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9, not Keras's 0.99: a short CPU run takes a few hundred steps, and with 0.99 the moving
    # statistics used at validation/prediction time would still be far from the batch statistics
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def upsample(x, factor: int, name: str):
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x) if factor > 1 else x


def unet(features: dict, n_classes: int):
    """U-Net decoder: up from stride 32, concatenating the encoder's map at each stride, logits at stride 2."""
    widths = {16: 96, 8: 64, 4: 48, 2: 32}
    x = features[32]
    for stride, width in widths.items():
        x = upsample(x, 2, f"unet_up{stride}")
        x = layers.Concatenate(name=f"unet_cat{stride}")([x, features[stride]])
        x = conv_bn_relu(x, width, f"unet_dec{stride}a")
        x = conv_bn_relu(x, width, f"unet_dec{stride}b")
    x = layers.Conv2D(n_classes, 1, name="unet_logits")(x)
    return upsample(x, 2, "unet_up1")


#: Atrous rates for stride-32 maps of small (CPU-sized) inputs; the paper's 6/12/18 are for stride 16 at 513 px.
ASPP_RATES = (1, 2, 3)


def deeplabv3plus(features: dict, n_classes: int):
    """DeepLabV3+: atrous spatial pyramid pooling on the encoder output, fused with stride-4 detail."""
    top = features[32]
    height, width = top.shape[1], top.shape[2]
    branches = [conv_bn_relu(top, 128, "aspp_1x1", kernel=1)]
    branches += [conv_bn_relu(top, 128, f"aspp_rate{r}", dilation=r) for r in ASPP_RATES if r > 1]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(top)
    pooled = conv_bn_relu(pooled, 128, "aspp_pool_proj", kernel=1)
    branches.append(layers.UpSampling2D((height, width), name="aspp_pool_up")(pooled))
    x = layers.Concatenate(name="aspp_cat")(branches)
    x = conv_bn_relu(x, 128, "aspp_proj", kernel=1)
    x = upsample(x, 8, "deeplab_up4")
    detail = conv_bn_relu(features[4], 48, "deeplab_detail", kernel=1)
    x = layers.Concatenate(name="deeplab_cat")([x, detail])
    x = conv_bn_relu(x, 128, "deeplab_dec_a")
    x = conv_bn_relu(x, 128, "deeplab_dec_b")
    x = layers.Conv2D(n_classes, 1, name="deeplab_logits")(x)
    return upsample(x, 4, "deeplab_up1")


SEGMENTATION_HEADS.register("unet", unet)
SEGMENTATION_HEADS.register("deeplabv3plus", deeplabv3plus)


def build_segmenter(head: str, backbone: str, input_size, n_classes: int, weights_dir: str | None = None,
                    freeze_encoder: bool = True) -> keras.Model:
    """Raw RGB [0, 255] (height, width, 3) in, (height, width, n_classes) softmax probabilities out."""
    from kagglekit.models.backbones import feature_layers, get_backbone, require_pretrained

    height, width = input_size
    if height % 32 or width % 32:
        raise ValueError(f"segmentation input size must be a multiple of 32 on both sides, got {height}x{width}")
    spec = require_pretrained(backbone, "a frozen encoder") if freeze_encoder else get_backbone(backbone)
    net = spec.build((height, width), weights_dir=weights_dir, pooling=None)
    taps = feature_layers(net)
    strides = [2, 4, 8, 16, 32]
    maps = {}
    for stride in strides:
        if stride in taps:
            maps[stride] = net.get_layer(taps[stride]).output
        else:  # a backbone that stops at stride 16 (scratch_cnn): the heads' deepest map is one pooling further
            maps[stride] = layers.MaxPooling2D(2, name=f"encoder_pool{stride}")(maps[stride // 2])
    encoder = keras.Model(net.input, [maps[s] for s in strides], name=f"{backbone}_encoder")
    encoder.trainable = not freeze_encoder
    for layer in encoder.layers:  # fine-tuned or not, the encoder's BatchNorm keeps its ImageNet statistics:
        if isinstance(layer, layers.BatchNormalization):  # batches of 8 would wreck them
            layer.trainable = False
    inputs = keras.Input((height, width, 3), name="image")
    features = dict(zip(strides, encoder(inputs, training=False) if freeze_encoder else encoder(inputs)))
    logits = SEGMENTATION_HEADS.get(head)(features, n_classes)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=f"{head}_{backbone}")
