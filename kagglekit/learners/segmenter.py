"""Train and apply a segmentation model: images and masks in, label maps at each image's own size out.

Images are resized once to the model's input size and kept in memory (a few hundred small arrays);
each epoch draws augmentations that move image and mask together (a random crop rescaled back, a
horizontal flip). Predictions are made at the input size and resized back to every image's original
size with nearest-neighbour interpolation, so a submission's masks line up with the test images.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np
from PIL import Image

from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json
from kagglekit.data.images import read_rgb
from kagglekit.data.masks import read_label_map, resize_labels
from kagglekit.data.views import apply_view
from kagglekit.learners.checkpoints import (clear_checkpoints, load_checkpoint, read_checkpoint, reseed,
                                            save_weights, write_checkpoint)
from kagglekit.learners.usage import TrainingTime, epoch_timer
from kagglekit.models.losses import SegmentationLoss
from kagglekit.models.optimizers import make_optimizer

log = logging.getLogger(__name__)

HISTORY = "history.json"  # a finished fit's losses per epoch
#: Views that undo themselves and keep a non-square input's shape: usable for dense predictions.
SELF_INVERSE_VIEWS = ("identity", "hflip", "vflip", "rot180")
CHUNK_VALUES = 2 ** 23  # probabilities predicted at a time (32 MB as float32): ``proba_chunks``


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


class AugmentedBatches(keras.utils.PyDataset):
    """Batches of (image, mask) with the same random crop-and-rescale and flip applied to both. Epoch
    ``epoch``'s order is drawn from ``(seed, epoch)`` and each batch's augmentations from ``(seed, epoch,
    batch)``, whatever was drawn before: a fit resumed at an epoch sees the batches an uninterrupted one saw."""

    def __init__(self, images, masks, batch_size: int, hflip: bool, scale: float, seed: int, epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.images, self.masks, self.batch_size = images, masks, batch_size
        self.hflip, self.scale, self.seed, self.epoch = hflip, scale, seed, epoch
        self._order = (-1, None)

    def __len__(self) -> int:
        return int(np.ceil(len(self.images) / self.batch_size))

    def on_epoch_end(self):
        self.epoch += 1

    def order(self) -> np.ndarray:
        if self._order[0] != self.epoch:
            self._order = (self.epoch, np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images)))
        return self._order[1]

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        batch = self.order()[index * self.batch_size:(index + 1) * self.batch_size]
        pairs = [self._augment(self.images[i], self.masks[i], rng) for i in batch]
        return np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs]).astype(np.int32)

    def _augment(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        height, width = mask.shape
        if self.scale > 0:
            fraction = rng.uniform(1 - self.scale, 1)
            h, w = max(1, round(height * fraction)), max(1, round(width * fraction))
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            box = (left, top, left + w, top + h)
            image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR, box=box))
            mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST, box=box))
        if self.hflip and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return image, mask


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

    @property
    def done(self) -> bool:
        """A fit finished here: its final weights (and history) are saved."""
        return self.weights_path.is_file()

    def fit(self, paths, masks, valid_paths=None, valid_masks=None) -> "Segmenter":
        """Train for ``segmentation.epochs`` on a cosine schedule with a short warm-up. The validation
        images, if given, are only watched (learning curves): nothing (epochs, learning rate, weights
        kept) is chosen on them, so they can be scored honestly. Every epoch ends with a checkpoint
        (``learners.checkpoints``): a fit killed mid-way resumes at its last finished epoch and ends with the
        weights an uninterrupted one ends with."""
        from kagglekit.core.progress import epoch_bar

        keras.utils.set_random_seed(self.config.seed)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        state = read_checkpoint(self.workdir)
        start = state["epoch"] if state else 0
        self.history = state["history"] if state else {}
        x, y = load_resized(paths, self.size), load_resized(masks, self.size, masks=True)
        batches = AugmentedBatches(x, y, cfg.batch_size, cfg.hflip, cfg.scale, self.config.seed, epoch=start)
        steps = len(batches) * cfg.epochs
        model = self.build()
        # an unfrozen encoder learns at encoder_lr_factor of the rate: its ImageNet features need less change
        # than the randomly initialised decoder (the encoder is a nested model; its variables carry its layers' names)
        encoder = {inner.name: cfg.encoder_lr_factor
                   for layer in model.layers if isinstance(layer, keras.Model) for inner in layer.layers}
        # warm-up: the decoder starts random
        model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.lr, steps, min(len(batches), steps // 10),
                                               cfg.weight_decay, encoder),
                      loss=SegmentationLoss(self.n_classes, self.void_label, cfg.dice_weight))
        if state:
            model.optimizer.build(model.trainable_variables)  # so the checkpoint's optimizer state has a home
            load_checkpoint(model, self.workdir, state)
            log.info("%s: resumed after epoch %d of %d", self.workdir, start, cfg.epochs)
        validation = None
        if valid_paths:
            validation = (load_resized(valid_paths, self.size).astype(np.float32),
                          load_resized(valid_masks, self.size, masks=True).astype(np.int32))
        callbacks = [keras.callbacks.CSVLogger(self.workdir / "log.csv", append=start > 0),
                     epoch_bar(cfg.epochs - start, desc="segmenter"), epoch_timer(self.time, len(x)),
                     self._epoch_checkpoints()]
        if start < cfg.epochs:
            self.model.fit(batches, initial_epoch=start, epochs=cfg.epochs, callbacks=callbacks, verbose=0,
                           validation_data=validation, validation_batch_size=cfg.batch_size)
        atomic_write_json(self.workdir / HISTORY, self.history)
        save_weights(self.model, self.weights_path)  # last: ``done`` means weights and history are there
        clear_checkpoints(self.workdir)
        return self

    def _epoch_checkpoints(self) -> keras.callbacks.Callback:
        """Dropout reseeded from ``(seed, epoch)`` before each epoch; its losses kept and a checkpoint after it."""
        segmenter = self

        class EpochCheckpoints(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                reseed(segmenter.model, segmenter.config.seed * 1000 + epoch)

            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    segmenter.history.setdefault(key, []).append(float(value))
                write_checkpoint(segmenter.model, segmenter.workdir, epoch + 1, history=segmenter.history)

        return EpochCheckpoints()

    def fit_once(self, paths, masks, valid_paths=None, valid_masks=None) -> "Segmenter":
        """``fit``, unless a fit already finished here (a resumed run's finished fold): then its saved model."""
        if not self.done:
            return self.fit(paths, masks, valid_paths, valid_masks)
        log.info("%s: trained before the run was resumed; its saved model is used", self.workdir)
        self.load()
        history = self.workdir / HISTORY
        self.history = json.loads(history.read_text()) if history.is_file() else {}
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
        return list(predict_label_maps([self], paths, sizes, tta, allowed, on_proba))


def proba_chunks(segmenters: list[Segmenter], paths: list[Path],
                 tta=("identity",)) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, mean probabilities of ``segmenters`` at the input size), a chunk of images at a time so memory
    stays bounded whatever the number of images: up to 64, fewer where their maps are large (``CHUNK_VALUES``
    probabilities: 21 images of CamVid at 160 x 224, 2 of VOC at 320 x 448), the segmenters' maps summed one
    segmenter at a time (as ``np.mean`` of their stack adds them, without the stack)."""
    height, width = segmenters[0].size
    chunk = int(np.clip(CHUNK_VALUES // (height * width * segmenters[0].n_classes), 1, 64))
    for start in range(0, len(paths), chunk):
        part = slice(start, start + chunk)
        x = load_resized(paths[part], segmenters[0].size)
        total = segmenters[0].proba_resized(x, tta)
        for segmenter in segmenters[1:]:
            total += segmenter.proba_resized(x, tta)
        yield part, total / np.float32(len(segmenters))


def predict_label_maps(segmenters: list[Segmenter], paths: list[Path], sizes: list[tuple[int, int]], tta=("identity",),
                       allowed: np.ndarray | None = None,
                       on_proba: Callable[[np.ndarray], None] | None = None) -> Iterator[np.ndarray]:
    """Label maps at each image's original size from the mean probabilities of ``segmenters`` (a fold
    ensemble; ``label_maps``), one at a time as their chunk is predicted, so a consumer that encodes each
    (``submission_frame``) never holds them all; ``on_proba`` sees each chunk's probabilities at the input
    size, in order (a run keeps them for blending: ``runs.probability_maps``)."""
    for part, proba in proba_chunks(segmenters, paths, tta):
        if on_proba is not None:
            on_proba(proba)
        yield from label_maps(proba, sizes[part], None if allowed is None else allowed[part])


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
