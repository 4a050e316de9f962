"""Whole-network fine-tuning of a pretrained backbone, in stages, resumable after ``kill -9``.

Stages of gradual unfreezing (the ULMFiT / Kaggle recipe): the new head alone (so random head
gradients do not wreck the pretrained features), then the blocks above the backbone's fine-tuning cut,
then everything above the stem, the lower layers at a smaller learning rate. Each stage has its own
optimizer (``finetune.optimizer``, AdamW by default) with a warm-up and a cosine decay over that stage's steps. BatchNorm stays in inference
mode unless asked (batches of 32 on a CPU would wreck its statistics).

Before any stage the head is fitted as a linear probe on the frozen backbone's pooled features (LP-FT,
Kumar et al. 2022), and every warm-up lasts at least ``MIN_WARMUP_STEPS`` (or half its stage): on 120
seedlings images a Glorot head on unnormalised features started at a loss of 4.8 (chance: 2.5), its one
7-step head epoch could not train it, and a fresh Adam at full rate after a 1-step warm-up moved every
pretrained weight by about the learning rate, so training accuracy fell when a stage unfroze (0.51 to
0.34) and fine-tuning ended below the frozen-feature head on the same images (0.28 vs 0.45).

With ``progressive_scale`` below 1 the first epochs see smaller images (progressive resizing: cheaper steps, so
more epochs fit a time budget) and the last ones the size the network predicts at; the network is built for any
size while it trains.

Every stage is one ``fit`` call per image size on a stream of its epochs, each epoch's order, size and augmentation
a function of ``(seed, epoch)`` alone; every epoch ends with a checkpoint of the weights and the optimizer state:
a killed run resumes at its last finished epoch and ends with the same weights as an uninterrupted one (on a
deterministic backend: TensorFlow on a CPU here).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kagglekit.core.config import AugmentConfig
from kagglekit.core.fileio import atomic_write_json
from kagglekit.core.progress import progress
from kagglekit.data.streams import ImageRows, eval_stream, steps_per_epoch, training_stream
from kagglekit.data.views import apply_view, average_views
from kagglekit.learners import budget
from kagglekit.learners.checkpoints import (clear_checkpoints, load_checkpoint, read_checkpoint, reseed,
                                            save_weights, write_checkpoint)
from kagglekit.learners.devices import ONE_DEVICE, Devices
from kagglekit.learners.params import Params
from kagglekit.learners.usage import TrainingTime

log = logging.getLogger(__name__)

#: Adam's first steps move every weight by about the learning rate whatever its gradient: a stage's
#: warm-up spans at least this many steps (or half the stage), however few steps its epochs have.
MIN_WARMUP_STEPS = 10
#: Inverse L2 strength of the linear probe on standardised features.
PROBE_C = 0.1
#: Training images the linear probe is fitted on, at most (a fixed random sample of them): it only starts the
#: head, and a logistic regression on 1,280 standardised features is settled by a few thousand. Its forward pass
#: is most of a large competition's cold start: 40,000 images at 384 px on 2 cores spent 131 s of the 380 s before
#: the first training step probing 4,096 (bench/scale.py); 2,560 still covers a Plant Seedlings fold (2,127).
PROBE_IMAGES = 2560
#: Images decoded at once for prediction.
PREDICT_CHUNK = 256
HISTORY = "history.json"  # in the workdir: a finished fit's losses per epoch (the learner's file, not the run's)


@dataclass(frozen=True)
class Stage:
    name: str
    first_epoch: int
    epochs: int
    trainable_from: int  # index of the first trainable layer
    lower_until: int  # layers in [trainable_from, lower_until) get the lower learning rate


def epoch_hooks(learner: "FineTunedClassifier", stage: "Stage", steps: int):
    """The Keras callback that makes every epoch reproducible and resumable: dropout reseeded from
    ``(seed, epoch)`` before it, a checkpoint and a log line after it, and its batches' progress."""
    import keras

    class EpochHooks(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            reseed(learner.model, learner.seed * 1000 + epoch)  # dropout's state is in no checkpoint
            self.began, self.epoch = time.perf_counter(), epoch
            self.bar = progress(steps, f"{learner.workdir.name} epoch {epoch + 1}/{learner.epochs} [{stage.name}]",
                                unit="batch")

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if not learner.stepped:  # a long cold start (shards, probe) ends here: say so, off a terminal too
                learner.stepped = True
                log.info("%s: first training step done (epoch %d)", learner.workdir.name, self.epoch + 1)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.close()
            learner.end_epoch(epoch, stage, logs or {}, time.perf_counter() - self.began, steps)

    return EpochHooks()


class FineTunedClassifier(Params):
    """Backbone + dropout + softmax, fine-tuned on streamed images (``ImageRows`` of a shard set); scikit-learn
    shaped: the constructor takes the hyperparameters (``pipelines.hyperparameters`` unpacks a run's config),
    and the network is built, compiled and loaded under ``devices``."""

    def __init__(self, backbone: str, image_size: int, n_classes: int, workdir: Path, *, epochs: int = 20,
                 head_epochs: int = 1, top_epochs: int = 2, optimizer: str = "adamw", lr: float = 1e-3,
                 lower_lr_factor: float = 0.3, warmup_fraction: float = 0.1, weight_decay: float = 1e-4,
                 clipnorm: float = 1.0, ema: float = 0.0, batch_size: int = 32, dropout: float = 0.2,
                 probe: bool = True, progressive_scale: float = 1.0, progressive_share: float = 0.5,
                 freeze_stem: bool = True, train_batchnorm: bool = False,
                 augment: AugmentConfig = AugmentConfig(), label_smoothing: float = 0.1, seed: int = 0,
                 weights_dir: str | None = None, devices: Devices = ONE_DEVICE):
        self.backbone, self.image_size, self.n_classes, self.workdir = backbone, image_size, n_classes, Path(workdir)
        self.epochs, self.head_epochs, self.top_epochs = epochs, head_epochs, top_epochs
        self.optimizer, self.lr, self.lower_lr_factor = optimizer, lr, lower_lr_factor
        self.warmup_fraction, self.weight_decay, self.clipnorm, self.ema = warmup_fraction, weight_decay, clipnorm, ema
        self.batch_size = batch_size
        self.dropout, self.probe, self.freeze_stem, self.train_batchnorm = dropout, probe, freeze_stem, train_batchnorm
        self.progressive_scale, self.progressive_share = progressive_scale, progressive_share
        self.augment, self.label_smoothing, self.seed = augment, label_smoothing, seed
        self.weights_dir, self.devices = weights_dir, devices
        self.model = None
        self.history: dict[str, list[float]] = {}
        self.time = TrainingTime()  # epochs trained by this process
        self.stepped = False  # whether this process has taken a training step yet
        self.stopped_at: int | None = None  # the epochs trained when fit stopped at its deadline

    @property
    def weights_path(self) -> Path:
        return self.workdir / "finetuned.weights.h5"

    @property
    def done(self) -> bool:
        return self.weights_path.exists()

    @property
    def small_size(self) -> int:
        """The image size of the first epochs under progressive resizing (``image_size`` when it is off)."""
        return max(32, 8 * round(self.image_size * self.progressive_scale / 8)) if self.progressive_scale < 1 \
            else self.image_size

    @property
    def small_epochs(self) -> int:
        """How many of the first epochs train at ``small_size``."""
        return round(self.progressive_share * self.epochs) if self.small_size < self.image_size else 0

    def size_at(self, epoch: int) -> int:
        return self.small_size if epoch < self.small_epochs else self.image_size

    def build(self, any_size: bool = False):
        """The network, for ``image_size`` images (what it predicts, exports and serves), or for ``any_size`` (what
        progressive resizing trains)."""
        import keras

        from kagglekit.models.backbones import get_backbone

        with self.devices.scope():
            net = get_backbone(self.backbone).build((None, None) if any_size else self.image_size,
                                                    weights_dir=self.weights_dir, pooling="avg")
            x = keras.layers.Dropout(self.dropout, name="head_dropout")(net.output)
            outputs = keras.layers.Dense(self.n_classes, activation="softmax", dtype="float32", name="classes")(x)
            return keras.Model(net.input, outputs, name=f"{self.backbone}_finetuned")

    def stages(self, model) -> list[Stage]:
        """The unfreezing plan over the epoch budget; stages a backbone cannot have are skipped. An
        untrained backbone has nothing to protect: it trains whole from the first epoch, at the full rate."""
        from kagglekit.models.backbones import get_backbone

        spec, names = get_backbone(self.backbone), [layer.name for layer in model.layers]
        head = names.index("head_dropout")
        if not spec.pretrained:
            return [Stage("all", 0, self.epochs, 1, 1)]
        cut = names.index(spec.finetune_cut) + 1 if spec.finetune_cut in names else head
        floor = names.index(spec.taps[0]) + 1 if self.freeze_stem and spec.taps else 1
        plan = [("head", self.head_epochs, head, head), ("top", self.top_epochs, cut, cut),
                ("all", None, floor, cut)]
        stages, first = [], 0
        for name, epochs, start, lower in plan:
            epochs = self.epochs - first if epochs is None else min(epochs, self.epochs - first)
            if epochs > 0 and not (name == "top" and cut == head):
                stages.append(Stage(name, first, epochs, start, lower))
                first += epochs
        return stages

    def fit(self, images: ImageRows, labels: np.ndarray, valid: tuple[ImageRows, np.ndarray] | None = None,
            class_weight: dict[int, float] | None = None,
            deadline: budget.Deadline | None = None) -> "FineTunedClassifier":
        """Train (or resume) for the whole budget; the final weights (EMA when on) are saved. With a ``deadline``
        training stops after the first epoch after which another would overrun it (``budget.deadline_stop``: a time
        budget's last guard; ``stopped_at``: the epochs trained)."""
        import keras

        from kagglekit.models.backbones import get_backbone

        self.workdir.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(self.seed)
        self.model = self.build(any_size=self.small_epochs > 0)
        stages = self.stages(self.model)
        state = read_checkpoint(self.workdir)
        start = state["epoch"] if state else 0
        self.history = state["history"] if state else {}
        if state is None and self.probe and get_backbone(self.backbone).pretrained:
            self._probe(images, labels, class_weight)
        targets = np.eye(self.n_classes, dtype=np.float32)[labels]
        valid_data = eval_stream(valid[0], self.image_size, 64, np.eye(self.n_classes, dtype=np.float32)[valid[1]]) \
            if valid else None
        steps = steps_per_epoch(len(images), self.batch_size)
        self._started, self._start_epoch = time.perf_counter(), start
        # a checkpoint holds the optimizer state of the stage it was written in (maybe the one before)
        checkpointed = next(s for s in stages if s.name == state["stage"]) if state else None
        guard = budget.deadline_stop(deadline, self.workdir.name, self.epochs, steps)  # one for every fit below
        if state and start >= self.epochs:  # killed after the last epoch's checkpoint, before the final save
            self._compile(checkpointed, len(images))
            load_checkpoint(self.model, self.workdir, state)
        for stage in stages:
            first, last = max(start, stage.first_epoch), stage.first_epoch + stage.epochs
            if first >= last:
                continue
            resuming = state is not None and first == start
            written_in = checkpointed if resuming else stage
            self._compile(written_in, len(images))
            if resuming:
                load_checkpoint(self.model, self.workdir, state)
                log.info("%s: resumed after epoch %d of %d", self.workdir.name, start, self.epochs)
            if written_in != stage:
                self._compile(stage, len(images))
            # one fit per stage and size over one stream of its epochs (a fit per epoch paid seconds of tf.data
            # teardown each time); epoch k of the stream is still a function of (seed, k) alone
            for n, (begin, end) in enumerate(self._same_size(first, last)):
                if n:  # a new size: a fresh trace for its shape (a retrace of the last one would be shape-generic)
                    self.model.make_train_function(force=True)
                streams = [training_stream(images, targets, self.size_at(epoch), self.batch_size, self.seed, epoch,
                                           self.augment) for epoch in range(begin, end)]
                stream = functools.reduce(lambda a, b: a.concatenate(b), streams)
                self.model.fit(stream, initial_epoch=begin, epochs=end, steps_per_epoch=steps, verbose=0,
                               shuffle=False, validation_data=valid_data, class_weight=class_weight,
                               callbacks=[epoch_hooks(self, stage, steps), guard])
                if guard.stopped_at:
                    break
            if guard.stopped_at:
                break
        self.stopped_at = guard.stopped_at
        if self.ema:
            self.model.optimizer.swap_in_ema(self.model.trainable_variables)
        save_weights(self.model, self.weights_path)
        atomic_write_json(self.workdir / HISTORY, self.history)
        clear_checkpoints(self.workdir)
        return self

    def _same_size(self, first: int, last: int) -> list[tuple[int, int]]:
        """``[first, last)`` cut where the image size changes: the epoch ranges of one size each."""
        cut = self.small_epochs
        return [(a, b) for a, b in ((first, min(last, cut)), (max(first, cut), last)) if a < b]

    def _probe(self, images: ImageRows, labels: np.ndarray, class_weight: dict[int, float] | None) -> None:
        """Set the head to a multinomial logistic regression on the frozen pooled features of the
        training images (at most ``PROBE_IMAGES`` of them; standardised as ``learners.head`` does, the variance floored at its median, then
        folded into the head's kernel and bias): fine-tuning starts from the frozen-feature classifier."""
        import warnings

        import keras
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        if len(images) > PROBE_IMAGES:
            sample = np.sort(np.random.default_rng(self.seed).choice(len(images), PROBE_IMAGES, replace=False))
            images, labels = images.subset(sample), labels[sample]
        present = np.unique(labels)
        if len(present) < 2:
            return
        pooled = keras.Model(self.model.input, self.model.get_layer("head_dropout").input)
        # at the size the head first trains at
        x = pooled.predict(eval_stream(images, self.size_at(0), 64), verbose=0).astype(np.float64)
        labels = labels[images.stream_order()]  # the rows of x
        mean, var = x.mean(0), x.var(0)
        scale = np.sqrt(np.maximum(var, max(np.median(var), 1e-6)))  # small images: most features constant
        weights = {int(c): w for c, w in class_weight.items() if c in present} if class_weight else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # an unconverged probe is still a good start
            fitted = LogisticRegression(C=PROBE_C, max_iter=1000, class_weight=weights).fit((x - mean) / scale, labels)
        coef, intercept = fitted.coef_, fitted.intercept_
        if len(present) == 2:  # sklearn's one logit of class 1 against 0, as two softmax logits
            coef, intercept = np.stack([-coef[0], coef[0]]) / 2, np.array([-intercept[0], intercept[0]]) / 2
        kernel = np.zeros((x.shape[1], self.n_classes))
        bias = np.full(self.n_classes, intercept.min() - 10.0)  # a class with no training image: never predicted
        kernel[:, present] = (coef / scale).T
        bias[present] = intercept - coef @ (mean / scale)
        head = self.model.get_layer("classes")
        head.kernel.assign(kernel.astype(np.float32))
        head.bias.assign(bias.astype(np.float32))
        log.info("%s: head fitted as a linear probe (training accuracy %.3f)", self.workdir.name,
                 fitted.score((x - mean) / scale, labels))

    def end_epoch(self, epoch: int, stage: Stage, logs: dict, seconds: float, steps: int) -> None:
        """Record, checkpoint and report a finished epoch (called by ``epoch_hooks``)."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.time.add(steps * self.batch_size, seconds)
        self._write_checkpoint(epoch + 1, stage)
        per_epoch = (time.perf_counter() - self._started) / (epoch + 1 - self._start_epoch)
        log.info("%s epoch %d/%d [%s] loss %.3f%s: %.0f s/epoch, about %.0f s left", self.workdir.name,
                 epoch + 1, self.epochs, stage.name, self.history["loss"][-1],
                 f", holdout accuracy {self.history['val_accuracy'][-1]:.3f}" if "val_accuracy" in logs else "",
                 per_epoch, per_epoch * (self.epochs - epoch - 1))

    def timings(self, images: ImageRows, labels: np.ndarray) -> tuple[float, float]:
        """(seconds per training step, per image's forward pass) on this machine, of a throwaway copy of the
        network with the last (dearest) stage's layers trainable, fed the first batches of its real training
        stream over ``images``: what ``learners.budget`` plans from. Under progressive resizing the step is the
        mean over the epochs' sizes (each size timed)."""
        import keras

        self.model = self.build(any_size=self.small_epochs > 0)
        self._set_trainable(self.stages(self.model)[-1])
        targets = np.eye(self.n_classes, dtype=np.float32)[labels]

        def step(size: int) -> float:
            stream = training_stream(images, targets, size, self.batch_size, self.seed, 0, self.augment)
            return budget.step_seconds(self.model, stream, keras.losses.CategoricalCrossentropy(), self.devices.scope)

        try:
            small = self.small_epochs / self.epochs
            mean_step = (1 - small) * step(self.image_size) + (small * step(self.small_size) if small else 0.0)
            return mean_step, budget.forward_seconds(self.model, eval_stream(images, self.image_size, 64))
        finally:
            self.model = None

    def _set_trainable(self, stage: Stage) -> None:
        import keras

        from kagglekit.models.backbones import get_backbone

        # pretrained BatchNorm statistics stay unless asked; an untrained network's must be learnt
        train_batchnorm = self.train_batchnorm or not get_backbone(self.backbone).pretrained
        for i, layer in enumerate(self.model.layers):
            layer.trainable = i >= stage.trainable_from and (
                train_batchnorm or not isinstance(layer, keras.layers.BatchNormalization))

    def _compile(self, stage: Stage, n_images: int) -> None:
        import keras

        from kagglekit.models.optimizers import make_optimizer

        self._set_trainable(stage)
        steps = stage.epochs * steps_per_epoch(n_images, self.batch_size)
        warmup = max(int(steps * self.warmup_fraction), min(MIN_WARMUP_STEPS, steps // 2)) \
            if self.warmup_fraction else 0
        lower = {layer.name: self.lower_lr_factor
                 for layer in self.model.layers[stage.trainable_from:stage.lower_until]}
        with self.devices.scope():
            self.model.compile(
                optimizer=make_optimizer(self.optimizer, self.lr, steps, warmup,
                                         self.weight_decay, lower, clipnorm=self.clipnorm,
                                         use_ema=self.ema > 0, ema_momentum=self.ema or 0.99),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing),
                metrics=["accuracy"], jit_compile=self.devices.jit_compile)
            self.model.optimizer.build(self.model.trainable_variables)

    def _write_checkpoint(self, epoch: int, stage: Stage) -> None:
        """After ``epoch`` finished epochs: weights, optimizer state, the stage it was written in, the history."""
        write_checkpoint(self.model, self.workdir, epoch, stage=stage.name, history=self.history)

    # --- prediction --------------------------------------------------------------------------------

    def load(self) -> "FineTunedClassifier":
        self.model = self.build()
        self.model.load_weights(self.weights_path)
        return self

    def predict_proba(self, images: ImageRows, views: list[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities of streamed images, in the order of their rows, averaged over the test-time
        ``views``; the stream is read in chunks of ``PREDICT_CHUNK`` images (a view of a chunk at a time:
        memory bounded)."""
        chunks = eval_stream(images, self.image_size, PREDICT_CHUNK).as_numpy_iterator()
        streamed = np.concatenate([self.predict_pixels(chunk, views, batch_size) for chunk in chunks]
                                  or [np.zeros((0, self.n_classes), np.float32)])
        proba = np.empty_like(streamed)
        proba[images.stream_order()] = streamed
        return proba

    def predict_pixels(self, pixels: np.ndarray, views: list[str], batch_size: int = 64) -> np.ndarray:
        """Probabilities of (n, S, S, 3) pixels (``streams.finish`` rounded), averaged over the test-time
        ``views`` (``predict``, not ``predict_on_batch``: under a distribution strategy only ``predict``
        splits a batch across the replicas correctly)."""
        if len(pixels) == 0:
            return np.zeros((0, self.n_classes), np.float32)
        return average_views([self.model.predict(apply_view(view, pixels).astype(np.float32), batch_size=batch_size,
                                                 verbose=0) for view in views])
