"""Train and apply a segmentation model: images and masks in, label maps at each image's own size out.

Training images and masks are streamed from shards (``data.streams.segmentation_stream``): each epoch
draws augmentations that move image and mask together (a random crop of the full-resolution decode,
rescaled, a horizontal flip), and memory does not grow with the number of images. Predictions are made
at the input size, a chunk of images at a time, and resized back to every image's original size with
nearest-neighbour interpolation, so a submission's masks line up with the test images.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np
from PIL import Image

from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.data.images import read_rgb
from kagglekit.data.masks import read_label_map, resize_labels
from kagglekit.data.shards import build_shards
from kagglekit.data.streams import ImageRows, covering_steps, eval_stream, segmentation_stream
from kagglekit.data.views import apply_view
from kagglekit.learners.usage import TrainingTime, epoch_timer
from kagglekit.models.losses import SegmentationLoss
from kagglekit.models.optimizers import make_optimizer

#: Views that undo themselves and keep a non-square input's shape: usable for dense predictions.
SELF_INVERSE_VIEWS = ("identity", "hflip", "vflip", "rot180")


def load_resized(paths: list[Path], size: tuple[int, int], masks: bool = False, workers: int = 4) -> np.ndarray:
    """(n, height, width[, 3]) uint8: images resized bilinearly, label maps by nearest neighbour."""
    height, width = size

    def one(path):
        if masks:
            return resize_labels(read_label_map(path), (height, width))
        return resize_image(read_rgb(path), size)

    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(one, paths)))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) uint8 image resized bilinearly to (height, width): the segmenter's input."""
    height, width = size
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def label_maps(proba: np.ndarray, sizes: list[tuple[int, int]], allowed: np.ndarray | None = None) -> list[np.ndarray]:
    """Per image, the likeliest class of each pixel at its original (height, width); ``allowed`` (n,
    classes) bool limits each image to some classes (e.g. background plus what a classifier predicts)."""
    if allowed is not None:
        proba = np.where(allowed[:, None, None, :], proba, -1.0)
    return [resize_labels(m, size) for m, size in zip(proba.argmax(-1).astype(np.uint8), sizes)]


class Segmenter:
    """scikit-learn shaped: ``fit(paths, masks, valid_paths, valid_masks)``, ``predict(paths)``."""

    def __init__(self, n_classes: int, void_label: int | None, config: RunConfig, workdir: Path):
        self.n_classes, self.void_label, self.config = n_classes, void_label, config
        self.cfg = config.segmentation
        self.size = tuple(self.cfg.input_size)
        self.workdir = Path(workdir)
        self.model = None
        self.history: dict[str, list[float]] = {}
        self.time = TrainingTime()

    @property
    def weights_path(self) -> Path:
        return self.workdir / "segmenter.weights.h5"

    def build(self) -> keras.Model:
        from kagglekit.models.segmentation import build_segmenter

        self.model = build_segmenter(self.cfg.head, self.config.backbones[0], self.size, self.n_classes,
                                     self.config.weights_dir, self.cfg.freeze_encoder)
        return self.model

    def fit(self, paths, masks, valid_paths=None, valid_masks=None) -> "Segmenter":
        """Train for ``segmentation.epochs`` on a cosine schedule with a short warm-up. The validation
        images, if given, are only watched (learning curves): nothing (epochs, learning rate, weights
        kept) is chosen on them, so they can be scored honestly."""
        from kagglekit.core.progress import epoch_bar

        keras.utils.set_random_seed(self.config.seed)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        images = ImageRows.every(build_shards(paths, self.config.stream, masks=masks, what="segmentation"))
        per_epoch = covering_steps(len(images), cfg.batch_size)
        stream = functools.reduce(lambda a, b: a.concatenate(b), [
            segmentation_stream(images, self.size, cfg.batch_size, self.config.seed, epoch, cfg.scale, cfg.hflip)
            for epoch in range(cfg.epochs)])
        steps = per_epoch * cfg.epochs
        model = self.build()
        # an unfrozen encoder learns at encoder_lr_factor of the rate: its ImageNet features need less change
        # than the randomly initialised decoder (the encoder is a nested model; its variables carry its layers' names)
        encoder = {inner.name: cfg.encoder_lr_factor
                   for layer in model.layers if isinstance(layer, keras.Model) for inner in layer.layers}
        # warm-up: the decoder starts random
        model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.lr, steps, min(per_epoch, steps // 10),
                                               cfg.weight_decay, encoder),
                      loss=SegmentationLoss(self.n_classes, self.void_label, cfg.dice_weight))
        validation = None
        if valid_paths:
            held_out = build_shards(valid_paths, self.config.stream, masks=valid_masks, what="segmentation")
            validation = eval_stream(ImageRows.every(held_out), self.size, cfg.batch_size, masks=True)
        callbacks = [keras.callbacks.CSVLogger(self.workdir / "log.csv"), epoch_bar(cfg.epochs, desc="segmenter"),
                     epoch_timer(self.time, len(images))]
        history = self.model.fit(stream, epochs=cfg.epochs, steps_per_epoch=per_epoch, callbacks=callbacks, verbose=0,
                                 shuffle=False, validation_data=validation)
        self.history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.model.save_weights(self.weights_path)
        return self

    def load(self) -> "Segmenter":
        """The trained model saved by ``fit`` (what ``kagglekit predict`` and the run itself predict with)."""
        self.build().load_weights(self.weights_path)
        return self

    def proba_resized(self, x: np.ndarray, tta: list[str] = ("identity",)) -> np.ndarray:
        """(n, height, width, classes) probabilities for images already at the input size, averaged over
        the TTA views that are their own inverse (a flipped prediction is flipped back before averaging)."""
        x = np.asarray(x, dtype=np.float32)
        views = [v for v in tta if v in SELF_INVERSE_VIEWS] or ["identity"]
        total = 0
        for view in views:
            proba = self.model.predict(apply_view(view, x), batch_size=self.cfg.batch_size, verbose=0)
            total = total + apply_view(view, proba)
        return total / len(views)

    def predict(self, paths: list[Path], sizes: list[tuple[int, int]], tta=("identity",),
                allowed: np.ndarray | None = None, on_proba: Callable[[np.ndarray], None] | None = None) -> list[np.ndarray]:
        """One uint8 label map per image, at its original (height, width) (``predict_label_maps``)."""
        return predict_label_maps([self], paths, sizes, tta, allowed, on_proba)


def proba_chunks(segmenters: list[Segmenter], paths: list[Path], tta=("identity",),
                 chunk: int = 64) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, mean probabilities of ``segmenters`` at the input size), ``chunk`` images at a time so
    memory stays bounded whatever the number of images."""
    for start in range(0, len(paths), chunk):
        part = slice(start, start + chunk)
        x = load_resized(paths[part], segmenters[0].size)
        yield part, np.mean([s.proba_resized(x, tta) for s in segmenters], axis=0)


def predict_label_maps(segmenters: list[Segmenter], paths: list[Path], sizes: list[tuple[int, int]], tta=("identity",),
                       allowed: np.ndarray | None = None,
                       on_proba: Callable[[np.ndarray], None] | None = None) -> list[np.ndarray]:
    """Label maps at each image's original size from the mean probabilities of ``segmenters`` (a fold
    ensemble; ``label_maps``); ``on_proba`` sees each chunk's probabilities at the input size, in order
    (a run keeps them for blending: ``runs.probability_maps``)."""
    out = []
    for part, proba in proba_chunks(segmenters, paths, tta):
        if on_proba is not None:
            on_proba(proba)
        out += label_maps(proba, sizes[part], None if allowed is None else allowed[part])
    return out


def saved_segmenters(n_classes: int, void_label: int | None, config: RunConfig, folder: Path) -> list[Segmenter]:
    """The trained segmenters a run saved under ``folder``: one there, or one per ``fold<k>/`` inside it."""
    folder = Path(folder)
    single = Segmenter(n_classes, void_label, config, folder)
    if single.weights_path.is_file():
        return [single.load()]
    found = sorted((p for p in folder.glob("fold*") if (p / single.weights_path.name).is_file()),
                   key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1)
    if not found:
        raise ConfigError(f"{folder}: no trained segmenter ({single.weights_path.name}) here or in fold*/; is the run finished?")
    return [Segmenter(n_classes, void_label, config, p).load() for p in found]
