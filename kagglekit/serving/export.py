"""Export a finished run as self-contained models: raw RGB in [0, 255] at the model's input size in,
the run's probabilities out, TTA views and fold ensemble included.

``exportables`` says what a run exports: a classification run one model (class probabilities, one
label per image or several); a segmentation run one model (per-pixel class probabilities at the
segmenter's input size, the flip-type TTA views flipped back and averaged); a multi-label +
segmentation run two, ``labels`` and ``masks``, because its classifier and segmenter read different
input sizes. Thresholds and the consistency rule, which turn probabilities into a submission, go into
``export.json``.

A classifier's graph is the run's prediction path, node for node: each TTA view of the image goes through
the backbones, the features are rounded to float16 exactly as the run's feature cache stores them,
every fold's models read them, and the probabilities are averaged over views, models and folds (all
equally many, so one mean is the run's mean of means). Formats: ``keras`` (a ``.keras`` file; loading
it needs kagglekit imported, for its layers), ``savedmodel`` (TensorFlow Serving), ``onnx`` (via
tf2onnx, run with onnxruntime) and ``tflite`` (LiteRT, for phones). ``parity`` runs an export with
its own runtime and compares it with the run's predictor.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kagglekit.core.errors import ConfigError
from kagglekit.data.augment import is_augmented
from kagglekit.data.images import read_rgb
from kagglekit.data.loaders import image_batches
from kagglekit.learners.segmenter import SELF_INVERSE_VIEWS, resize_image
from kagglekit.serving.predictor import ClassifierPredictor, LabelPredictor, RunPredictor, SegmenterPredictor

#: Format -> what it is written as inside the output folder.
FORMATS = {"keras": "model.keras", "savedmodel": "saved_model", "onnx": "model.onnx", "tflite": "model.tflite"}
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


@keras.saving.register_keras_serializable(package="kagglekit")
class RoundToBytes(keras.layers.Layer):
    """Pixels rounded to whole values in 0..255: how fine-tuned networks saw images in the run."""

    def call(self, x):
        return keras.ops.round(keras.ops.clip(x, 0.0, 255.0))


@keras.saving.register_keras_serializable(package="kagglekit")
class RoundToFloat16(keras.layers.Layer):
    """Features rounded to float16 and back: what the run's heads were trained and evaluated on."""

    def call(self, x):
        return keras.ops.cast(keras.ops.cast(x, "float16"), x.dtype)


@dataclass
class Exportable:
    """One model a run exports, with what its parity check needs."""

    name: str  # the sub-folder it is written to when a run exports several
    model: keras.Model
    input_shape: tuple[int, int]  # (height, width) of the RGB input
    reference: Callable[[np.ndarray], np.ndarray]  # the run predictor's output for a batch at input_shape
    batch: Callable[[list[Path]], np.ndarray]  # image files resized to input_shape as the run resizes them


def exportables(predictor: RunPredictor) -> list[Exportable]:
    """What a run exports (see the module docstring)."""
    check_views(predictor)
    if isinstance(predictor, ClassifierPredictor):
        return [Exportable("model", ensemble_model(predictor), predictor.input_shape, predictor.predict_batch,
                           square_batch(predictor.config.image_size))]
    if isinstance(predictor, LabelPredictor):
        return [labels_exportable(predictor, "model")]
    assert isinstance(predictor, SegmenterPredictor)
    masks = Exportable("masks", segmenter_model(predictor), predictor.input_shape, predictor.predict_batch,
                       segmenter_batch(predictor.input_shape))
    return [labels_exportable(predictor.labeller, "labels"), masks] if predictor.multilabel else [masks]


def labels_exportable(predictor: LabelPredictor, name: str) -> Exportable:
    model = features_ensemble(predictor, [predictor.extractors], [[h] for h in predictor.heads],
                              f"{predictor.competition.name}_labels")
    return Exportable(name, model, predictor.input_shape, predictor.predict_batch, square_batch(predictor.config.image_size))


def square_batch(size: int):
    return lambda paths: next(image_batches(paths, size, len(paths)))


def segmenter_batch(shape: tuple[int, int]):
    return lambda paths: np.stack([resize_image(read_rgb(p), shape) for p in paths]).astype(np.float32)


def check_views(predictor: RunPredictor) -> None:
    augmented = [view for view in predictor.config.tta if is_augmented(view)]
    if augmented and not (isinstance(predictor, SegmenterPredictor) and not predictor.multilabel):
        raise ConfigError(f"{predictor.run_dir}: TTA views {augmented} are random draws and cannot be exported; "
                          "export a run whose tta lists only flips and turns")


def ensemble_model(predictor: ClassifierPredictor) -> keras.Model:
    """A classification run's whole prediction path as one Keras model (sharing the predictor's weights)."""
    if not predictor.networks:
        return features_ensemble(predictor, predictor.extractors, predictor.folds, f"{predictor.competition.name}_ensemble")
    image = keras.Input((predictor.config.image_size, predictor.config.image_size, 3), name="image")
    pixels = RoundToBytes(name="bytes")(image)
    nets = [rename(m.model, f"network{i}") for i, m in enumerate(predictor.networks)]
    outputs = [net(x) for x in views_of(pixels, predictor.config.tta) for net in nets]  # every net sees every view
    return keras.Model(image, average(outputs), name=f"{predictor.competition.name}_ensemble")


def features_ensemble(predictor: RunPredictor, extractor_groups: list[list], folds: list[list], name: str) -> keras.Model:
    """Frozen-feature heads as one model: every view through every extractor, features rounded to
    float16 as the run's cache stores them, every fold's models on them, all averaged."""
    size = predictor.config.image_size
    image = keras.Input((size, size, 3), name="image")
    # every sub-model gets a name of its own: one graph cannot hold two nodes called "head"
    extractors = [[rename(e.model, f"input{g}_{e.model.name}_{i}") for i, e in enumerate(group)]
                  for g, group in enumerate(extractor_groups)]
    fold_models = [[rename(m.model, f"fold{k}_{m.stage}") for m in models] for k, models in enumerate(folds)]
    outputs = []
    for x in views_of(image, predictor.config.tta):
        inputs = [concat([RoundToFloat16()(net(x)) for net in group]) for group in extractors]
        outputs += [model(features) for models in fold_models for model, features in zip(models, inputs)]
    return keras.Model(image, average(outputs), name=name)


def segmenter_model(predictor: SegmenterPredictor) -> keras.Model:
    """The run's segmenters with its TTA: each flip-type view is flipped back after every network,
    then the per-pixel probabilities are averaged (what ``SegmenterPredictor.predict_batch`` computes)."""
    image = keras.Input((*predictor.input_shape, 3), name="image")
    pixels = RoundToBytes(name="bytes")(image)
    nets = [rename(s.model, f"segmenter{k}") for k, s in enumerate(predictor.segmenters)]
    views = [v for v in predictor.config.tta if v in SELF_INVERSE_VIEWS] or ["identity"]
    outputs = []
    for view, x in zip(views, views_of(pixels, views)):
        per_view = average([net(x) for net in nets], f"mean_{view}")  # the run averages models, then views
        outputs.append(per_view if view == "identity" else DihedralView(view, name=f"unview_{view}")(per_view))
    return keras.Model(image, average(outputs), name=f"{predictor.competition.name}_segmenter")


def views_of(x, views: list[str]) -> list:
    return [x if view == "identity" else DihedralView(view, name=f"view_{view}")(x) for view in views]


def average(outputs: list, name: str = "probabilities"):
    return keras.layers.Average(name=name)(outputs) if len(outputs) > 1 else outputs[0]


def rename(model: keras.Model, name: str) -> keras.Model:
    return keras.Model(model.input, model.output, name=name)


def concat(tensors: list):
    return tensors[0] if len(tensors) == 1 else keras.layers.Concatenate()(tensors)


def export_model(model: keras.Model, fmt: str, out: Path) -> Path:
    """Write ``model`` in ``fmt`` under the folder ``out``; the path written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    path = Path(out) / FORMATS[fmt]
    if fmt == "keras":
        model.save(path)
    elif fmt == "onnx":
        saved_model_to_onnx(model, path)
    else:
        model.export(str(path), format={"savedmodel": "tf_saved_model", "tflite": "litert"}[fmt], verbose=False)
    return path


def saved_model_to_onnx(model: keras.Model, path: Path) -> None:
    """ONNX by way of a SavedModel's frozen graph. ``model.export(format="onnx")`` converts the live
    function, where tf2onnx takes the constants a Keras ``Normalization`` layer captures (the heads'
    standardisation) for inputs the caller would have to feed; freezing makes them constants."""
    from tf2onnx import convert, tf_loader

    with tempfile.TemporaryDirectory(prefix="kagglekit-onnx-") as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        with native_stderr_held():
            graph_def, inputs, outputs = tf_loader.from_saved_model(tmp, None, None, tag="serve", signatures=["serving_default"])
            convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=17, output_path=str(path))


@contextlib.contextmanager
def native_stderr_held():
    """Grappler, which tf2onnx runs, logs through absl's C++ logger straight to file descriptor 2 and
    ignores ``TF_CPP_MIN_LOG_LEVEL``; no Python setting reaches it. Unless the user asked for TensorFlow's
    logs (``--verbose`` leaves ``TF_CPP_MIN_LOG_LEVEL`` unset), that output is held and shown only if the
    conversion fails."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace")[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run_export(path: Path, fmt: str, batch: np.ndarray) -> np.ndarray:
    """The probabilities an exported model gives for ``batch``, computed by that format's own runtime."""
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if fmt == "keras":
        return np.asarray(keras.saving.load_model(path).predict(batch, verbose=0))
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # held: its functions use its variables
        return loaded.serve(tf.constant(batch)).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: batch})[0]
    if fmt == "tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(path))
        (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])
    raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")


def parity(part: Exportable, path: Path, fmt: str, batch: np.ndarray) -> float:
    """Max absolute difference between the export's probabilities and the run predictor's on ``batch``."""
    return float(np.abs(run_export(path, fmt, batch) - part.reference(batch)).max())
