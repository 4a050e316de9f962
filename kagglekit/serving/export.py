"""Export a finished run as self-contained models: raw RGB in [0, 255] at the model's input size in,
the run's probabilities out, TTA views and fold ensemble included.

``exportables`` says what a run exports: a classification run one model (class probabilities, one
label per image or several); a segmentation run one model (per-pixel class probabilities at the
segmenter's input size, the flip-type TTA views flipped back and averaged); a multi-label +
segmentation run two, ``labels`` and ``masks``, because its classifier and segmenter read different
input sizes. Thresholds and the consistency rule, which turn probabilities into a submission, go into
``export.json``.

The graphs themselves are composed in ``models.composition`` (the run's prediction path node for node,
shared with Grad-CAM and adversarial attacks). Formats: ``keras`` (a ``.keras`` file; loading
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
from kagglekit.learners.segmenter import resize_image, segmenter_views
from kagglekit.models.composition import features_ensemble, networks_ensemble, segmenters_ensemble
from kagglekit.serving.predictor import ClassifierPredictor, LabelPredictor, RunPredictor, SegmenterPredictor

#: Format -> what it is written as inside the output folder.
FORMATS = {"keras": "model.keras", "savedmodel": "saved_model", "onnx": "model.onnx", "tflite": "model.tflite"}


@dataclass
class Exportable:
    """One model a run exports, with what its parity check needs."""

    name: str  # the sub-folder it is written to when a run exports several
    model: keras.Model
    input_shape: tuple[int, int]  # (height, width) of the RGB input
    reference: Callable[[np.ndarray], np.ndarray]  # the run predictor's output for a batch at input_shape
    batch: Callable[[list[Path]], np.ndarray]  # image files resized to input_shape as the run resizes them


def exportables(predictor: RunPredictor) -> list[Exportable]:
    """What a run exports (see the module docstring), composed under the devices its models were loaded under."""
    check_views(predictor)
    with predictor.devices.scope():
        return _exportables(predictor)


def _exportables(predictor: RunPredictor) -> list[Exportable]:
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
    return Exportable(name, labels_model(predictor), predictor.input_shape, predictor.predict_batch,
                      square_batch(predictor.config.image_size))


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
    name, size = f"{predictor.competition.name}_ensemble", predictor.config.image_size
    if predictor.networks:
        return networks_ensemble(size, [m.model for m in predictor.networks], predictor.config.tta, name)
    return features_ensemble(size, [[e.model for e in group] for group in predictor.extractors],
                             [[m.model for m in models] for models in predictor.folds], predictor.config.tta, name)


def labels_model(predictor: LabelPredictor) -> keras.Model:
    """A multi-label run's fold heads on its frozen features, as one Keras model."""
    return features_ensemble(predictor.config.image_size, [[e.model for e in predictor.extractors]],
                             [[h.model] for h in predictor.heads], predictor.config.tta,
                             f"{predictor.competition.name}_labels")


def segmenter_model(predictor: SegmenterPredictor) -> keras.Model:
    """The run's segmenters with its flip-type TTA views (what ``SegmenterPredictor.predict_batch`` computes)."""
    views = segmenter_views(predictor.config.tta)
    return segmenters_ensemble(predictor.input_shape, [s.model for s in predictor.segmenters], views,
                               f"{predictor.competition.name}_segmenter")


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
        interpreter = litert_interpreter()(model_path=str(path))
        (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(source["index"], batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])
    raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")


def litert_interpreter():
    """LiteRT's ``Interpreter`` class (``ai_edge_litert``, the ``tflite`` extra). TensorFlow still converts
    (``model.export``), but its ``tf.lite.Interpreter`` is deprecated, scheduled for deletion, and warns."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ConfigError(f"running a tflite export needs LiteRT ({exc}): pip install 'kagglekit[tflite]'") from None
    return Interpreter


def parity(part: Exportable, path: Path, fmt: str, batch: np.ndarray) -> float:
    """Max absolute difference between the export's probabilities and the run predictor's on ``batch``."""
    return float(np.abs(run_export(path, fmt, batch) - part.reference(batch)).max())
