"""Export a finished run as one self-contained model: raw RGB in [0, 255] at the run's image size in,
the fold ensemble's class probabilities out, TTA views and all.

The exported graph is the run's prediction path, node for node: each TTA view of the image goes through
the backbones, the features are rounded to float16 exactly as the run's feature cache stores them,
every fold's models read them, and the probabilities are averaged over views, models and folds (all
equally many, so one mean is the run's mean of means). Formats: ``keras`` (a ``.keras`` file; loading
it needs kagglekit imported, for its layers), ``savedmodel`` (TensorFlow Serving), ``onnx`` (via
tf2onnx, run with onnxruntime) and ``tflite`` (LiteRT, for phones). ``parity`` runs an export with
its own runtime and compares it with the run's predictor.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from kagglekit.core.errors import ConfigError
from kagglekit.data.augment import is_augmented
from kagglekit.serving.predictor import RunPredictor

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


def ensemble_model(predictor: RunPredictor) -> keras.Model:
    """The run's whole prediction path as one Keras model (sharing the predictor's loaded weights)."""
    config = predictor.config
    augmented = [view for view in config.tta if is_augmented(view)]
    if augmented:
        raise ConfigError(f"{predictor.run_dir}: TTA views {augmented} are random draws and cannot be exported; "
                          "export a run whose tta lists only flips and turns")
    image = keras.Input((config.image_size, config.image_size, 3), name="image")
    pixels = RoundToBytes(name="bytes")(image) if predictor.networks else image
    views = [pixels if view == "identity" else DihedralView(view, name=f"view_{view}")(pixels) for view in config.tta]
    if predictor.networks:  # fine-tuned networks: each sees every view
        nets = [rename(m.model, f"network{i}") for i, m in enumerate(predictor.networks)]
        outputs = [net(x) for x in views for net in nets]
        return keras.Model(image, average(outputs), name=f"{predictor.competition.name}_ensemble")
    # every sub-model gets a name of its own: one graph cannot hold two nodes called "head"
    extractors = [[rename(e.model, f"input{g}_{e.model.name}_{i}") for i, e in enumerate(group)]
                  for g, group in enumerate(predictor.extractors)]
    folds = [[rename(m.model, f"fold{k}_{m.stage}") for m in models] for k, models in enumerate(predictor.folds)]
    outputs = []
    for x in views:
        inputs = [concat([RoundToFloat16()(net(x)) for net in group]) for group in extractors]
        outputs += [model(features) for models in folds for model, features in zip(models, inputs)]
    return keras.Model(image, average(outputs), name=f"{predictor.competition.name}_ensemble")


def average(outputs: list):
    return keras.layers.Average(name="probabilities")(outputs) if len(outputs) > 1 else outputs[0]


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
    import tempfile

    from tf2onnx import convert, tf_loader

    with tempfile.TemporaryDirectory(prefix="kagglekit-onnx-") as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        graph_def, inputs, outputs = tf_loader.from_saved_model(tmp, None, None, signatures=["serving_default"])
        convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=17, output_path=str(path))


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


def parity(predictor: RunPredictor, path: Path, fmt: str, batch: np.ndarray) -> float:
    """Max absolute difference between the export's probabilities and the run predictor's on ``batch``."""
    return float(np.abs(run_export(path, fmt, batch) - predictor.predict_batch(batch)).max())
