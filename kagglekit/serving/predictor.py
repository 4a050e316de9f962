"""A finished run, loaded once, that predicts any images: files, or decoded uploads.

``load_predictor`` picks the predictor for the run's task. Each one runs the run's own prediction path
on images it has never seen: the same models, TTA views and fold ensemble, only without the on-disk
feature cache (keyed by image content, pointless for uploads).

- ``ClassifierPredictor``: class probabilities, from ``pipelines.classification`` (frozen features,
  float16, fold heads) or ``pipelines.finetuning`` (the saved fine-tuned networks).
- ``LabelPredictor``: a multi-label run's labels (fold heads, the run's thresholds) and probabilities.
- ``SegmenterPredictor``: a label map per image at its own size, from the run's saved segmenter; for a
  multi-label + segmentation run also the image's labels (a ``LabelPredictor``) and its
  classifier-consistency choice, exactly as ``pipelines.multilabel_segmentation`` predicts.

Every predictor is safe to share between threads: model calls are serialised by a lock (TensorFlow runs each call
on all cores anyway); decoding happens outside it, in the caller's thread.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from kagglekit.core.errors import ConfigError
from kagglekit.data.images import read_rgb
from kagglekit.data.loaders import image_batches, resized_batch
from kagglekit.data.masks import label_png
from kagglekit.data.streams import decode_images, to_uint8
from kagglekit.learners.devices import resolve_devices
from kagglekit.learners.segmenter import label_maps, resize_image, saved_segmenters
from kagglekit.pipelines import finetuning, hyperparameters, resolve_learner
from kagglekit.pipelines.classification import (
    ensemble_proba,
    feature_width,
    input_extractors,
    load_fold_models,
    tta_proba,
)
from kagglekit.pipelines.inputs import require_readable
from kagglekit.pipelines.multilabel_classification import load_label_heads, read_postprocess, saved_tuner
from kagglekit.pipelines.rebuild import load_run_config, run_competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.tasks import TASKS, resolve

BATCH = 32  # images per model call: bounds memory for any number of files


def read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's {what} ({exc}); is the run finished?") from None


def view_features(extractors: list, views: list[str], batch: np.ndarray) -> np.ndarray:
    """(views, n, features): every extractor's float16 features of each view of ``batch``, concatenated,
    as the run's feature cache holds them."""
    return np.stack([np.concatenate([e.features(view, batch) for e in extractors], axis=-1) for view in views])


def rounded(classes: list[str], proba: np.ndarray) -> dict[str, float]:
    """Each class's probability for a JSON answer (7 decimals: float32's precision)."""
    return dict(zip(classes, (round(float(p), 7) for p in proba)))


def load_predictor(run_dir: Path, weights_dir: str | None = None) -> "RunPredictor":
    """The predictor for a run directory's task (the task registry names it)."""
    return resolve(TASKS.get(run_competition(Path(run_dir)).task).predictor)(run_dir, weights_dir)


class RunPredictor:
    """What every predictor shares: the run's config and competition, its devices (``config.device``: what
    its models are loaded and run under), a lock, metadata, file reading."""

    postprocess: dict | None = None  # a multi-label run's thresholds (``postprocess.json``)

    def __init__(self, run_dir: Path, weights_dir: str | None = None):
        self.run_dir = Path(run_dir)
        self.config = load_run_config(self.run_dir, weights_dir=weights_dir)
        self.competition = run_competition(self.run_dir)
        self.devices = resolve_devices(self.config.device)
        self._lock = threading.Lock()

    def predict_images(self, images: list[np.ndarray]):
        raise NotImplementedError

    def predict_files(self, paths: list[Path]):
        """Predictions for image files, BATCH at a time; DataError naming every one that cannot be read."""
        require_readable(paths, "image(s)")
        return [r for part in self.file_chunks(paths) for r in part]

    def file_chunks(self, paths: list[Path]) -> Iterator[list]:
        """The predictions of readable image files (``require_readable``), a list per BATCH of them: a caller
        writes each as it comes, so memory never holds every image's prediction (a mask at the image's size)."""
        for i in range(0, len(paths), BATCH):
            yield self.predict_images([read_rgb(p) for p in paths[i:i + BATCH]])

    def metadata(self) -> dict:
        """What a client needs to trust and use the model: competition, classes, input, CV, provenance."""
        metrics = read_json(self.run_dir / RUN_FILES.metrics, "metrics")
        provenance = self.run_dir / RUN_FILES.provenance
        config = self.config
        return {
            "run": self.run_dir.name, "competition": self.competition.name, "task": self.competition.task,
            "classes": self.classes, "input_shape": list(self.input_shape),
            "backbones": list(config.backbones), "folds": config.folds, "tta": list(config.tta),
            "cv": {key: metrics.get(key) for key in ("metric", "cv_mean", "cv_std", "fold_scores")},
            "provenance": read_json(provenance, "provenance") if provenance.is_file() else None,
        }


class ImageLevelPredictor(RunPredictor):
    """A predictor with one row of class probabilities per image, from square inputs at the run's image size."""

    classes: list[str]

    @property
    def input_shape(self) -> tuple[int, int]:
        return self.config.image_size, self.config.image_size

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_files(self, paths: list[Path]) -> np.ndarray:
        """(n, classes) probabilities for image files, decoded and resized as the run's own loader does."""
        require_readable(paths, "image(s)")
        batches = [self.predict_batch(b) for b in self.file_batches(paths)]
        return np.concatenate(batches) if batches else np.zeros((0, len(self.classes)), dtype=np.float32)

    def file_batches(self, paths: list[Path]):
        """(b, S, S, 3) float32 batches of image files, decoded and resized as the run's own loader does."""
        return image_batches(paths, self.config.image_size, BATCH)

    def predict_images(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, classes) probabilities for decoded (H, W, 3) uint8 images of any sizes."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate([self.predict_batch(resized_batch(images[i:i + BATCH], self.config.image_size))
                               for i in range(0, len(images), BATCH)])


class ClassifierPredictor(ImageLevelPredictor):
    """Class probabilities for RGB images from a classification run's saved models."""

    def __init__(self, run_dir: Path, weights_dir: str | None = None):
        super().__init__(run_dir, weights_dir)
        self.classes: list[str] = read_json(self.run_dir / RUN_FILES.classes, "classes")
        if resolve_learner(self.competition.task, self.config.train.learner) == "finetune":
            self.networks = finetuning.predictors(self.config, self.devices, self.run_dir, len(self.classes))
            self.extractors = []
        else:
            self.networks, self.extractors = [], input_extractors(self.config, self.devices)
            self.folds = load_fold_models(self.config, self.devices, self.run_dir, feature_width(self.extractors[0]),
                                          len(self.classes))

    def file_batches(self, paths: list[Path]):
        """Fine-tuned networks read streamed shards: the same decode, without the shards."""
        if not self.networks:
            return super().file_batches(paths)
        return (decode_images(paths[i:i + BATCH], self.config.image_size, self.config.stream)
                for i in range(0, len(paths), BATCH))

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities for (n, S, S, 3) float32 RGB in [0, 255] at the run's image size."""
        with self._lock:
            if self.networks:  # fine-tuned networks see the pixels themselves, as bytes (like the run)
                pixels = to_uint8(batch)
                proba = [m.predict_pixels(pixels, self.config.tta) for m in self.networks]
                return np.mean(proba, axis=0).astype(np.float32)
            inputs = [view_features(group, self.config.tta, batch) for group in self.extractors]
            return ensemble_proba(self.folds, inputs).astype(np.float32)

    def answer(self, name: str, proba: np.ndarray) -> dict:
        """One image's prediction as JSON: its likeliest class and every class's probability."""
        return {"file": name, "class": self.classes[int(proba.argmax())], "probabilities": rounded(self.classes, proba)}


class LabelPredictor(ImageLevelPredictor):
    """Image labels from a multi-label run's fold heads, thresholds and TTA views (a ``multilabel-csv``
    competition, or the classification half of a multi-label + segmentation run)."""

    def __init__(self, run_dir: Path, weights_dir: str | None = None):
        super().__init__(run_dir, weights_dir)
        self.classes = list(self.competition.classes)
        self.postprocess = read_postprocess(self.run_dir)
        self.tuner = saved_tuner(self.postprocess)
        (self.extractors,) = input_extractors(self.config, self.devices)
        self.heads = load_label_heads(self.config, self.devices, self.run_dir, feature_width(self.extractors),
                                      len(self.classes))

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(n, classes) label probabilities for (n, S, S, 3) float32 RGB at the run's image size:
        every fold head over every TTA view, averaged."""
        with self._lock:
            x = view_features(self.extractors, self.config.tta, batch)
            return np.mean([tta_proba(head, x) for head in self.heads], axis=0)

    def labels(self, proba: np.ndarray) -> list[list[str]]:
        """Each row's labels: the run's thresholds (and top-1 fallback) applied."""
        return self.label_names(self.tuner.predict(np.atleast_2d(proba)))

    def label_names(self, rows: np.ndarray) -> list[list[str]]:
        """The classes each 0/1 row holds."""
        return [[c for c, on in zip(self.classes, row) if on] for row in rows]

    def answer(self, name: str, proba: np.ndarray) -> dict:
        """One image's labels and every class's probability."""
        return {"file": name, "labels": self.labels(proba)[0], "probabilities": rounded(self.classes, proba)}


@dataclass
class MaskPrediction:
    """One image's segmentation: a label map at the image's own size (pixel value = index into
    ``SegmenterPredictor.mask_classes``) and, for a multi-label run, its labels and their probabilities."""

    mask: np.ndarray
    labels: list[str] | None = None
    probabilities: np.ndarray | None = None


class SegmenterPredictor(RunPredictor):
    """Label maps (and, for multi-label + segmentation runs, image labels) from a run's saved models."""

    def __init__(self, run_dir: Path, weights_dir: str | None = None):
        super().__init__(run_dir, weights_dir)
        self.classes = list(self.competition.classes)
        task = TASKS.get(self.competition.task)
        self.multilabel = task.labels is not None  # the run also predicts each image's labels (PASCAL VOC)
        self.mask_classes = task.mask_classes(self.classes)
        self.segmenters = saved_segmenters(self.run_dir / RUN_FILES.segmenter, len(self.mask_classes),
                                           self.competition.void_label, devices=self.devices,
                                           **hyperparameters.segmenter(self.config))
        if self.multilabel:
            self.labeller = LabelPredictor(run_dir, weights_dir)
            self.postprocess = self.labeller.postprocess
            self.consistency = bool(self.postprocess["consistency"])

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.config.segmentation.input_size)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """(n, height, width, mask classes) pixel probabilities for (n, height, width, 3) float32 RGB in
        [0, 255] at the segmenter's input size, TTA views and fold segmenters averaged (what an export computes). Pixels are
        rounded to bytes first: the run resized its images to uint8."""
        with self._lock:
            pixels = to_uint8(batch)
            return np.mean([s.proba_resized(pixels, self.config.tta) for s in self.segmenters], axis=0)

    def predict_images(self, images: list[np.ndarray]) -> list[MaskPrediction]:
        """A ``MaskPrediction`` per decoded (H, W, 3) uint8 image of any size."""
        out = []
        for start in range(0, len(images), BATCH):
            chunk = images[start:start + BATCH]
            proba = self.predict_batch(np.stack([resize_image(image, self.input_shape) for image in chunk]))
            sizes = [image.shape[:2] for image in chunk]
            if not self.multilabel:
                out += [MaskPrediction(mask) for mask in label_maps(proba, sizes)]
                continue
            label_p = self.labeller.predict_images(chunk)
            labels = self.labeller.tuner.predict(label_p).astype(bool)
            allowed = np.hstack([np.ones((len(chunk), 1), bool), labels]) if self.consistency else None
            out += [MaskPrediction(mask, names, p) for mask, names, p in
                    zip(label_maps(proba, sizes, allowed), self.labeller.label_names(labels), label_p)]
        return out

    def metadata(self) -> dict:
        return {**super().metadata(), "mask_classes": self.mask_classes}

    def pixel_share(self, mask: np.ndarray) -> dict[str, float]:
        """The fraction of the image's pixels given to each mask class."""
        counts = np.bincount(mask.ravel(), minlength=len(self.mask_classes))[:len(self.mask_classes)]
        return {c: round(float(n) / mask.size, 6) for c, n in zip(self.mask_classes, counts)}

    def describe(self, name: str, prediction: MaskPrediction) -> dict:
        """One image's prediction without its mask: size, each mask class's share of the pixels, and
        any image labels with their probabilities."""
        height, width = prediction.mask.shape
        out = {"file": name, "height": height, "width": width, "pixel_share": self.pixel_share(prediction.mask)}
        if prediction.labels is not None:
            out["labels"] = prediction.labels
            out["probabilities"] = rounded(self.classes, prediction.probabilities)
        return out

    def answer(self, name: str, prediction: MaskPrediction) -> dict:
        """``describe`` plus the mask as a base64 palette PNG (pixel = index into ``mask_classes``)."""
        return {**self.describe(name, prediction), "mask_classes": self.mask_classes,
                "mask_png_base64": base64.b64encode(label_png(prediction.mask)).decode("ascii")}
