"""Train and apply a segmentation model: images and masks in, label maps at each image's own size out.

Training images and masks are streamed from shards (``data.streams.segmentation_stream``): each epoch
draws augmentations that move image and mask together (a random crop of the full-resolution decode,
rescaled, a horizontal flip), and memory does not grow with the number of images. Predictions are made
at the input size, a chunk of images at a time, and resized back to every image's original size with
nearest-neighbour interpolation, so a submission's masks line up with the test images.
"""

from __future__ import annotations

import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np
from PIL import Image

from kagglekit.core.config import StreamConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json
from kagglekit.data.images import read_rgb
from kagglekit.data.masks import read_label_map, resize_labels
from kagglekit.data.shards import build_shards
from kagglekit.data.streams import ImageRows, covering_steps, eval_stream, segmentation_stream
from kagglekit.data.views import apply_view
from kagglekit.learners import budget
from kagglekit.learners.checkpoints import (clear_checkpoints, load_checkpoint, read_checkpoint, reseed,
                                            save_weights, write_checkpoint)
from kagglekit.learners.devices import ONE_DEVICE, Devices
from kagglekit.learners.params import Params
from kagglekit.learners.usage import TrainingTime, epoch_timer
from kagglekit.models.losses import SegmentationLoss
from kagglekit.models.optimizers import make_optimizer

log = logging.getLogger(__name__)

HISTORY = "history.json"  # a finished fit's losses per epoch
#: Views that undo themselves and keep a non-square input's shape: usable for dense predictions.
SELF_INVERSE_VIEWS = ("identity", "hflip", "vflip", "rot180")
CHUNK_VALUES = 2 ** 23  # probabilities predicted at a time (32 MB as float32): ``proba_chunks``


def segmenter_views(tta) -> list[str]:
    """The views of ``tta`` a segmenter predicts with: those that are their own inverse (identity where none is)."""
    return [v for v in tta if v in SELF_INVERSE_VIEWS] or ["identity"]


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


def segmentation_seconds(cfg, tta, n_fit: int, n_predicted: int, n_watched: int = 0):
    """``budgeting.budgeted``'s estimate for segmenters each trained on ``n_fit`` images, watching ``n_watched``
    validation images after every epoch (one forward pass each) and predicting ``n_predicted`` (hold-out and
    test) with the TTA views a segmenter uses: (step_s, image_s, segmenters, epochs)."""
    views = len(segmenter_views(tta))

    def seconds(step_s: float, image_s: float, segmenters: int, epochs: int) -> float:
        return segmenters * (epochs * (-(-n_fit // cfg.batch_size) * step_s + n_watched * image_s)
                             + n_predicted * views * image_s)

    return seconds


def label_maps(proba: np.ndarray, sizes: list[tuple[int, int]], allowed: np.ndarray | None = None) -> list[np.ndarray]:
    """Per image, the likeliest class of each pixel at its original (height, width); ``allowed`` (n,
    classes) bool limits each image to some classes (e.g. background plus what a classifier predicts)."""
    if allowed is not None:
        proba = np.where(allowed[:, None, None, :], proba, -1.0)
    return [resize_labels(m, size) for m, size in zip(proba.argmax(-1).astype(np.uint8), sizes)]


class Segmenter(Params):
    """scikit-learn shaped: ``fit(paths, masks, valid_paths, valid_masks)``, ``predict(paths)``; the
    constructor takes the hyperparameters (``pipelines.hyperparameters`` unpacks a run's config), and the
    network is built, compiled and loaded under ``devices``."""

    def __init__(self, n_classes: int, void_label: int | None, workdir: Path, *, head: str = "deeplabv3plus",
                 backbone: str = "efficientnet_lite0", input_size: tuple[int, int] = (160, 224),
                 freeze_encoder: bool = True, epochs: int = 6, batch_size: int = 8, optimizer: str = "adamw",
                 lr: float = 1e-3, encoder_lr_factor: float = 0.3, weight_decay: float = 1e-4, dice_weight: float = 1.0,
                 hflip: bool = True, scale: float = 0.25, stream: StreamConfig = StreamConfig(), seed: int = 0,
                 weights_dir: str | None = None, devices: Devices = ONE_DEVICE):
        self.n_classes, self.void_label, self.workdir = n_classes, void_label, Path(workdir)
        self.head, self.backbone, self.input_size = head, backbone, tuple(input_size)
        self.freeze_encoder, self.epochs, self.batch_size = freeze_encoder, epochs, batch_size
        self.optimizer, self.lr, self.encoder_lr_factor = optimizer, lr, encoder_lr_factor
        self.weight_decay = weight_decay
        self.dice_weight, self.hflip, self.scale, self.stream = dice_weight, hflip, scale, stream
        self.seed, self.weights_dir, self.devices = seed, weights_dir, devices
        self.model = None
        self.history: dict[str, list[float]] = {}
        self.time = TrainingTime()
        self.stopped_at: int | None = None  # the epochs trained when fit stopped at its deadline

    @property
    def weights_path(self) -> Path:
        return self.workdir / "segmenter.weights.h5"

    def build(self) -> keras.Model:
        from kagglekit.models.segmentation import build_segmenter

        with self.devices.scope():
            self.model = build_segmenter(self.head, self.backbone, self.input_size, self.n_classes, self.weights_dir,
                                         self.freeze_encoder)
        return self.model

    def timings(self, paths: list[Path], masks: list[Path]) -> tuple[float, float]:
        """(seconds per training step, per image's forward pass) on this machine, of a throwaway copy of the
        network as it trains (its loss included), fed the first batches of its real training stream over
        ``paths`` and ``masks``: what ``learners.budget`` plans from."""
        images = ImageRows.every(build_shards(paths, self.stream, masks=masks, what="segmentation"))
        stream = segmentation_stream(images, self.input_size, self.batch_size, self.seed, 0, self.scale, self.hflip)
        forward = eval_stream(images, self.input_size, self.batch_size)
        try:
            return budget.timings(self.build(), stream, forward,
                                  SegmentationLoss(self.n_classes, self.void_label, self.dice_weight))
        finally:
            self.model = None

    @property
    def done(self) -> bool:
        """A fit finished here: its final weights (and history) are saved."""
        return self.weights_path.is_file()

    def fit(self, paths, masks, valid_paths=None, valid_masks=None,
            deadline: budget.Deadline | None = None) -> "Segmenter":
        """Train for ``segmentation.epochs`` on a cosine schedule with a short warm-up. The validation
        images, if given, are only watched (learning curves): nothing (epochs, learning rate, weights
        kept) is chosen on them, so they can be scored honestly. Every epoch ends with a checkpoint
        (``learners.checkpoints``): a fit killed mid-way resumes at its last finished epoch and ends with the
        weights an uninterrupted one ends with. With a ``deadline`` training stops after the first epoch after which
        another would overrun it (``budget.deadline_stop``; ``stopped_at``: the epochs trained)."""
        from kagglekit.core.progress import epoch_bar

        keras.utils.set_random_seed(self.seed)
        self.workdir.mkdir(parents=True, exist_ok=True)
        state = read_checkpoint(self.workdir)
        start = state["epoch"] if state else 0
        self.history = state["history"] if state else {}
        images = ImageRows.every(build_shards(paths, self.stream, masks=masks, what="segmentation"))
        per_epoch = covering_steps(len(images), self.batch_size)
        steps = per_epoch * self.epochs
        model = self.build()
        # an unfrozen encoder learns at encoder_lr_factor of the rate: its ImageNet features need less change
        # than the randomly initialised decoder (the encoder is a nested model; its variables carry its layers' names)
        encoder = {inner.name: self.encoder_lr_factor
                   for layer in model.layers if isinstance(layer, keras.Model) for inner in layer.layers}
        with self.devices.scope():
            # warm-up: the decoder starts random
            model.compile(optimizer=make_optimizer(self.optimizer, self.lr, steps, min(per_epoch, steps // 10),
                                                   self.weight_decay, encoder),
                          loss=SegmentationLoss(self.n_classes, self.void_label, self.dice_weight))
            if state:
                model.optimizer.build(model.trainable_variables)  # so the checkpoint's optimizer state has a home
                load_checkpoint(model, self.workdir, state)
                log.info("%s: resumed after epoch %d of %d", self.workdir, start, self.epochs)
        validation = None
        if valid_paths:
            held_out = build_shards(valid_paths, self.stream, masks=valid_masks, what="segmentation")
            validation = eval_stream(ImageRows.every(held_out), self.input_size, self.batch_size, masks=True)
        guard = budget.deadline_stop(deadline, self.workdir.name, self.epochs, per_epoch)
        callbacks = [keras.callbacks.CSVLogger(self.workdir / "log.csv", append=start > 0),
                     epoch_bar(self.epochs - start, desc="segmenter"), epoch_timer(self.time, len(images)),
                     self._epoch_checkpoints(), guard]
        if start < self.epochs:  # else killed after the last epoch's checkpoint, before the final save
            # epoch k's batches are a function of (seed, k) alone: a resumed fit sees what an uninterrupted one saw
            stream = functools.reduce(lambda a, b: a.concatenate(b), [
                segmentation_stream(images, self.input_size, self.batch_size, self.seed, epoch, self.scale, self.hflip)
                for epoch in range(start, self.epochs)])
            self.model.fit(stream, initial_epoch=start, epochs=self.epochs, steps_per_epoch=per_epoch,
                           callbacks=callbacks, verbose=0, shuffle=False, validation_data=validation)
        self.stopped_at = guard.stopped_at
        atomic_write_json(self.workdir / HISTORY, self.history)
        save_weights(self.model, self.weights_path)  # last: ``done`` means weights and history are there
        clear_checkpoints(self.workdir)
        return self

    def _epoch_checkpoints(self) -> keras.callbacks.Callback:
        """Dropout reseeded from ``(seed, epoch)`` before each epoch; its losses kept and a checkpoint after it."""
        segmenter = self

        class EpochCheckpoints(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                reseed(segmenter.model, segmenter.seed * 1000 + epoch)

            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    segmenter.history.setdefault(key, []).append(float(value))
                write_checkpoint(segmenter.model, segmenter.workdir, epoch + 1, history=segmenter.history)

        return EpochCheckpoints()

    def fit_once(self, paths, masks, valid_paths=None, valid_masks=None,
                 deadline: budget.Deadline | None = None) -> "Segmenter":
        """``fit``, unless a fit already finished here (a resumed run's finished fold): then its saved model."""
        if not self.done:
            return self.fit(paths, masks, valid_paths, valid_masks, deadline)
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
        views = segmenter_views(tta)
        total = 0
        for view in views:
            proba = self.model.predict(apply_view(view, x), batch_size=self.batch_size, verbose=0)
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
    height, width = segmenters[0].input_size
    chunk = int(np.clip(CHUNK_VALUES // (height * width * segmenters[0].n_classes), 1, 64))
    for start in range(0, len(paths), chunk):
        part = slice(start, start + chunk)
        x = load_resized(paths[part], segmenters[0].input_size)
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


def saved_segmenters(folder: Path, n_classes: int, void_label: int | None, **params) -> list[Segmenter]:
    """The trained segmenters a run saved under ``folder``: one there, or one per ``fold<k>/`` inside it
    (``params``: the ``Segmenter`` hyperparameters they were trained with)."""
    folder = Path(folder)
    single = Segmenter(n_classes, void_label, folder, **params)
    if single.weights_path.is_file():
        return [single.load()]
    found = sorted((p for p in folder.glob("fold*") if (p / single.weights_path.name).is_file()),
                   key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1)
    if not found:
        raise ConfigError(f"{folder}: no trained segmenter ({single.weights_path.name}) here or in fold*/; is the run finished?")
    return [Segmenter(n_classes, void_label, p, **params).load() for p in found]
