"""A run's fitted pieces composed into one differentiable Keras graph: raw RGB in [0, 255] in,
probabilities out.

A head-based run saves heads on cached features, not a network; a fine-tuned run saves one network
per fold; a segmentation run one segmenter per fold. Exports, Grad-CAM and adversarial attacks all
need the whole path from pixels to probabilities as one model, so it is built here, once:

- ``features_ensemble``: every TTA view through the frozen backbones (each with its registry
  preprocessing), the features rounded to float16 as the run's feature cache stores them, every fold's
  fitted models (standardisation + dense layers, or fine-tuned top blocks) on them, all averaged;
- ``networks_ensemble``: fine-tuned networks on pixels rounded to bytes, over the TTA views;
- ``segmenters_ensemble``: segmenters over the flip-type views, each view's output flipped back;
- ``features_cam`` and ``network_cam``: a head-based run's identity view, or one network, split at a
  backbone layer for Grad-CAM: (image -> the layer's maps, [maps, image] -> probabilities).

The two roundings are straight-through: the forward pass is the rounded value exactly, the gradient
passes as if nothing were rounded (a rounding's own gradient is zero almost everywhere, which would
leave attacks and Grad-CAM blind).
"""

from __future__ import annotations

import keras

#: The TTA views (kagglekit.data.views) as tensor ops on NHWC batches, so they live inside the graph.
VIEW_OPS = {
    "identity": lambda x: x,
    "hflip": lambda x: keras.ops.flip(x, axis=2),
    "vflip": lambda x: keras.ops.flip(x, axis=1),
    "rot90": lambda x: keras.ops.swapaxes(keras.ops.flip(x, axis=2), 1, 2),
    "rot180": lambda x: keras.ops.flip(keras.ops.flip(x, axis=1), axis=2),
    "rot270": lambda x: keras.ops.flip(keras.ops.swapaxes(x, 1, 2), axis=2),
    "transpose": lambda x: keras.ops.swapaxes(x, 1, 2),
    "antitranspose": lambda x: keras.ops.flip(keras.ops.flip(keras.ops.swapaxes(x, 1, 2), axis=1), axis=2),
}


@keras.saving.register_keras_serializable(package="kagglekit")
class DihedralView(keras.layers.Layer):
    """One TTA view (a flip or quarter turn) of an image batch, by name."""

    def __init__(self, view: str, **kwargs):
        super().__init__(**kwargs)
        self.view = view

    def call(self, x):
        return VIEW_OPS[self.view](x)

    def compute_output_shape(self, shape):
        return (shape[0], shape[2], shape[1], shape[3]) if self.view in ("rot90", "rot270", "transpose", "antitranspose") else shape

    def get_config(self):
        return {**super().get_config(), "view": self.view}


def straight_through(x, rounded):
    """``rounded`` in the forward pass (exactly: x + (r - x) is r when r is x rounded), x's gradient in the backward one."""
    return x + keras.ops.stop_gradient(rounded - x)


@keras.saving.register_keras_serializable(package="kagglekit")
class RoundToBytes(keras.layers.Layer):
    """Pixels rounded to whole values in 0..255: how fine-tuned networks saw images in the run."""

    def call(self, x):
        return straight_through(x, keras.ops.round(keras.ops.clip(x, 0.0, 255.0)))


@keras.saving.register_keras_serializable(package="kagglekit")
class RoundToFloat16(keras.layers.Layer):
    """Features rounded to float16 and back: what the run's heads were trained and evaluated on."""

    def call(self, x):
        return straight_through(x, keras.ops.cast(keras.ops.cast(x, "float16"), x.dtype))


def features_ensemble(image_size: int, extractor_groups: list[list[keras.Model]], folds: list[list[keras.Model]],
                      views: list[str], name: str) -> keras.Model:
    """Frozen-feature models as one model: every view through every extractor (image -> features),
    features rounded to float16 as the run's cache stores them, every fold's models on them
    (``folds[k][j]`` reads the concatenated outputs of ``extractor_groups[j]``), all averaged."""
    image = keras.Input((image_size, image_size, 3), name="image")
    # every sub-model gets a name of its own: one graph cannot hold two nodes called "head"
    extractors = [[rename(e, f"input{g}_{e.name}_{i}") for i, e in enumerate(group)]
                  for g, group in enumerate(extractor_groups)]
    fold_models = [[rename(m, f"fold{k}_{m.name}_{j}") for j, m in enumerate(models)] for k, models in enumerate(folds)]
    outputs = []
    for x in views_of(image, views):
        inputs = [concat([RoundToFloat16()(net(x)) for net in group]) for group in extractors]
        outputs += [model(features) for models in fold_models for model, features in zip(models, inputs)]
    return keras.Model(image, average(outputs), name=name)


def features_cam(image_size: int, extractor_groups: list[list[keras.Model]], folds: list[list[keras.Model]],
                 layer: str) -> tuple[keras.Model, keras.Model]:
    """``features_ensemble`` on the identity view, split for Grad-CAM at ``layer`` of the first
    extractor: (image -> that layer's maps, [maps, image] -> probabilities). The maps reach the
    probabilities through the layers above them in the first backbone; whatever does not depend on
    them (its earlier stages' pooled taps, other backbones, fine-tuned top blocks on an earlier cut)
    is computed from the image and is a constant to the gradient."""
    first = extractor_groups[0][0]
    target = first.get_layer(layer).output
    features = keras.Model(first.input, target, name=f"{first.name}_maps")
    maps = keras.Input(target.shape[1:], name="feature_maps")
    image = keras.Input((image_size, image_size, 3), name="image")
    above = keras.Model([target, first.input], first.output, name=f"{first.name}_above")
    extractors = [[rename(e, f"input{g}_{e.name}_{i}") for i, e in enumerate(group)]
                  for g, group in enumerate(extractor_groups)]
    pooled = [[above([maps, image]) if (g, i) == (0, 0) else net(image) for i, net in enumerate(group)]
              for g, group in enumerate(extractors)]
    inputs = [concat([RoundToFloat16()(x) for x in group]) for group in pooled]
    fold_models = [[rename(m, f"fold{k}_{m.name}_{j}") for j, m in enumerate(models)] for k, models in enumerate(folds)]
    outputs = [model(x) for models in fold_models for model, x in zip(models, inputs)]
    return features, keras.Model([maps, image], average(outputs), name="head_on_maps")


def network_cam(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """One network split for Grad-CAM at ``layer``, a layer every path from input to output passes (a
    CNN's last feature map is): (image -> its maps, [maps, image] -> probabilities; the image unused)."""
    target = model.get_layer(layer)
    features = keras.Model(model.input, target.output, name=f"{model.name}_maps")
    maps = keras.Input(target.output.shape[1:], name="feature_maps")
    image = keras.Input(model.input.shape[1:], name="image")
    x = maps
    for block in model.layers[model.layers.index(target) + 1:]:
        x = block(x)
    return features, keras.Model([maps, image], x, name=f"{model.name}_head")


def networks_ensemble(image_size: int, networks: list[keras.Model], views: list[str], name: str) -> keras.Model:
    """Fine-tuned networks as one model: pixels rounded to bytes (as the run stored its images), every
    network on every view, all averaged."""
    image = keras.Input((image_size, image_size, 3), name="image")
    pixels = RoundToBytes(name="bytes")(image)
    nets = [rename(m, f"network{i}") for i, m in enumerate(networks)]
    return keras.Model(image, average([net(x) for x in views_of(pixels, views) for net in nets]), name=name)


def segmenters_ensemble(input_shape: tuple[int, int], segmenters: list[keras.Model], views: list[str],
                        name: str) -> keras.Model:
    """Segmenters with flip-type TTA (``views`` must be self-inverse): each view flipped back after
    every network, the models averaged per view, then the views averaged (as the run computes it)."""
    image = keras.Input((*input_shape, 3), name="image")
    pixels = RoundToBytes(name="bytes")(image)
    nets = [rename(s, f"segmenter{k}") for k, s in enumerate(segmenters)]
    outputs = []
    for view, x in zip(views, views_of(pixels, views)):
        per_view = average([net(x) for net in nets], f"mean_{view}")
        outputs.append(per_view if view == "identity" else DihedralView(view, name=f"unview_{view}")(per_view))
    return keras.Model(image, average(outputs), name=name)


def views_of(x, views: list[str]) -> list:
    return [x if view == "identity" else DihedralView(view, name=f"view_{view}")(x) for view in views]


def average(outputs: list, name: str = "probabilities"):
    return keras.layers.Average(name=name)(outputs) if len(outputs) > 1 else outputs[0]


def rename(model: keras.Model, name: str) -> keras.Model:
    return keras.Model(model.input, model.output, name=name)


def concat(tensors: list):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate()(tensors)
