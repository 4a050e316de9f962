"""Single-label classification by whole-network fine-tuning (``train.learner: finetune``), top to bottom.

1. read the competition's images and encode them once into TFRecord shards in the cache (reused by
   later runs over the same files), streamed from there by every epoch and prediction;
2. stratified K folds (duplicates grouped); ``finetune.scored_folds`` of them train a fine-tuned network
   for a fixed epoch budget and are scored on their held-out images (TTA-averaged): the CV; with a
   ``time_budget`` the epochs (at most ``finetune.epochs``) and scored folds are first fitted to it from this
   machine's measured step time, and again after each fold from the seconds it took (``pipelines.budgeting``);
3. with ``finetune.refit`` one more network trains on every labelled image with the same budget and
   predicts the test set; otherwise the scored folds' networks are averaged;
4. the submission is written and validated; config, metrics, OOF predictions and plots are saved.

Each network checkpoints every epoch and each finished fold saves its predictions, so
``kagglekit run --resume RUN_DIR`` continues where a killed run stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import numpy as np

from kagglekit.competitions.contract import Competition, ImageTable
from kagglekit.core.config import RunConfig
from kagglekit.core.fileio import atomic_open, atomic_write_json
from kagglekit.core.progress import Stopwatch
from kagglekit.data.shards import build_shards
from kagglekit.data.streams import ImageRows, steps_per_epoch
from kagglekit.evaluation import baseline
from kagglekit.evaluation.folds import content_groups, stratified_folds
from kagglekit.evaluation.metrics import METRICS
from kagglekit.learners import budget
from kagglekit.learners.devices import Devices, resolve_devices, slowest
from kagglekit.learners.finetune import HISTORY, PROBE_IMAGES, FineTunedClassifier
from kagglekit.learners.usage import usage
from kagglekit.models.backbones import get_backbone
from kagglekit.models.losses import balanced_class_weights
from kagglekit.pipelines.classification import read_images, write_folds, write_outputs
from kagglekit.pipelines import FoldHook, hyperparameters
from kagglekit.pipelines.budgeting import budgeted, deadline, replanned, stopped
from kagglekit.pipelines.inputs import checked_test
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

log = logging.getLogger(__name__)


def run(competition: Competition, config: RunConfig, run_dir: Path, on_fold: FoldHook | None = None) -> RunResult:
    started, watch = time.time(), Stopwatch()
    data = Path(config.data)
    get_backbone(config.backbones[0])  # a typo fails now, not after reading every image
    if not (run_dir / RUN_FILES.config).exists():  # a resumed run keeps the config it started with
        config.save(run_dir / RUN_FILES.config)
    devices = resolve_devices(config.device)
    train, test = read_images(competition, data, run_dir)
    groups, _ = content_groups(train.paths)
    folds = stratified_folds(train.labels, groups, config.folds, config.seed, competition.classes)
    write_folds(run_dir, train, folds)
    classes, metric = competition.classes, METRICS.get(competition.metric)
    images = ImageRows.every(build_shards(train.paths, config.stream, train.ids,
                                          np.eye(len(classes), dtype=np.float32)[train.labels], what="train"))
    weights = None
    if config.finetune.class_weights:
        weights = balanced_class_weights(train.labels)
    watch.lap("read images into shards")
    min_epochs = config.finetune.head_epochs + config.finetune.top_epochs + 1
    config, time_plan = budgeted(config, run_dir, "finetune", started,
                                 functools.partial(network(config, devices, run_dir, "fold0", len(classes)).timings,
                                                   images.subset(folds[0][0]), train.labels[folds[0][0]]),
                                 finetune_seconds(config, len(train), len(test)), min_epochs,
                                 config.finetune.scored_folds)

    oof = np.full((len(train), len(classes)), np.nan, dtype=np.float32)
    fold_scores, histories, trained = [], [], []
    for k, (tr, va) in enumerate(folds):
        if k >= config.finetune.scored_folds:  # a re-plan may drop folds
            break
        model = network(config, devices, run_dir, f"fold{k}", len(classes), time_plan and time_plan.epochs_for(k))
        trained.append(model)
        saved = model.workdir / RUN_FILES.fold_oof
        if saved.exists():  # finished before a resume
            oof[va] = np.load(saved)
        else:
            curve = (images.subset(va), train.labels[va]) if config.finetune.holdout_curve else None
            fitting = time.perf_counter()
            model.fit(images.subset(tr), train.labels[tr], valid=curve, class_weight=weights,
                      deadline=deadline(config, time_plan, started,
                                        len(va) + len(test) * (1 if config.finetune.refit else k + 1)))
            time_plan = stopped(run_dir, time_plan, model, started)
            scoring = time.perf_counter()
            oof[va] = model.predict_proba(images.subset(va), config.tta)
            with atomic_open(saved, "wb") as out:  # a kill mid-write must not leave half a file to resume from
                np.save(out, oof[va])
            fit_s, score_s, spent_s = slowest(config.device, [scoring - fitting, time.perf_counter() - scoring,
                                                               time.time() - started])  # one collective
            config, time_plan = replanned(config, run_dir, "finetune", time_plan, spent_s, k + 1, min_epochs,
                                          measured_rest(config, folds, len(test), k, model.epochs, fit_s, score_s))
        histories.append(model.history or _saved_history(model))
        fold_scores.append(metric(train.labels[va], oof[va].argmax(1)))
        log.info("fold %d/%d: %s %.4f", k + 1, len(folds), competition.metric, fold_scores[-1])
        if on_fold:
            on_fold(k, fold_scores[-1])
        watch.lap(f"fold {k}: train and score")
    scored = folds[:config.finetune.scored_folds]
    if config.finetune.refit:
        full = network(config, devices, run_dir, "full", len(classes), time_plan and time_plan.epochs_for(len(scored)))
        trained.append(full)
        if not full.done:
            full.fit(images, train.labels, class_weight=weights,
                     deadline=deadline(config, time_plan, started, len(test)))
            time_plan = stopped(run_dir, time_plan, full, started)
        watch.lap("refit on all images")
    atomic_write_json(run_dir / RUN_FILES.classes, classes)

    predicting = time.perf_counter()
    test_proba = predict_proba(config, devices, run_dir, test, len(classes))
    predict_seconds = time.perf_counter() - predicting
    submission = write_submission(competition.submission_frame(test.ids, test_proba.argmax(1)),
                                  run_dir / RUN_FILES.submission)
    competition.validate(submission, data).raise_if_invalid()
    watch.lap("predict, write and validate the submission")

    rows = np.concatenate([va for _, va in scored])
    constant = baseline.single_label(train.labels, [va for _, va in scored], classes, metric)
    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)),
        fold_scores=[float(s) for s in fold_scores], submission=submission, seconds=time.time() - started,
        extra={"baseline": baseline.record(constant, float(np.mean(fold_scores)), competition.metric),
               "oof_score": float(metric(train.labels[rows], oof[rows].argmax(1))), "train_images": len(train),
               "test_images": len(test), "scored_images": len(rows), "learner": "finetune",
               "epochs": [len(h.get("loss", [])) for h in histories],
               "timing": usage([n.time for n in trained], len(test) * len(config.tta), predict_seconds), "stages": watch.laps,
               "time_budget": budget.record(time_plan, time.time() - started)},
    )
    write_outputs(result, competition, train, test, oof, test_proba, histories, rows)
    return result


def finetune_seconds(config: RunConfig, n_train: int, n_test: int):
    """``budgeting.budgeted``'s estimate for fine-tuning ``n_train`` images: each scored fold's network (its
    linear probe's forward pass, its epochs, its held-out curve's pass per epoch if asked, its held-out images'
    TTA), the refit's, the test's TTA (in ``views`` views; None: ``config.tta``'s)."""
    ft, k = config.finetune, config.folds

    def seconds(step_s: float, image_s: float, scored: int, epochs: int, views: int | None = None) -> float:
        views = len(config.tta) if views is None else views

        def train(n: float, watched: float = 0.0) -> float:
            probe = min(n, PROBE_IMAGES) * image_s if ft.probe else 0.0
            return epochs * (steps_per_epoch(int(n), ft.batch_size) * step_s + watched * image_s) + probe

        curve = n_train / k if ft.holdout_curve else 0.0
        total = scored * (train(n_train * (k - 1) / k, curve) + n_train / k * views * image_s)
        if ft.refit:
            total += train(n_train)
        return total + n_test * views * image_s * (1 if ft.refit else scored)

    return seconds


def measured_rest(config: RunConfig, folds: list, n_test: int, last: int, epochs: int, fit_s: float,
                  score_s: float):
    """``budget.replan``'s rest after fold ``last``, scaled from the seconds it measured: ``fit_s`` for its
    ``epochs`` (an image's epoch: its probe, compile and cheaper first stages included) and ``score_s`` for its
    held-out images' views (as the test's views cost): the folds left, a refit, the test's prediction."""
    ft, views = config.finetune, len(config.tta)
    train_s = fit_s / (epochs * len(folds[last][0]))
    view_s = score_s / (len(folds[last][1]) * views)

    def rest(scored: int, epochs_left: int) -> float:
        total = sum(len(tr) * epochs_left * train_s + len(va) * views * view_s for tr, va in folds[last + 1:scored])
        if ft.refit:
            total += sum(len(va) for _, va in folds) * epochs_left * train_s
        return total + n_test * views * view_s * (1 if ft.refit else scored)

    return rest


def network(config: RunConfig, devices: Devices, run_dir: Path, name: str, n_classes: int,
            epochs: int | None = None) -> FineTunedClassifier:
    """The network of one fold (``fold<k>``) or of the refit on all images (``full``); ``epochs``: a re-plan's,
    else the config's."""
    seed = config.seed + (int(name[4:]) if name.startswith("fold") else 1000)
    settings = hyperparameters.finetuned(config) | ({"epochs": epochs} if epochs else {})
    return FineTunedClassifier(config.backbones[0], config.image_size, n_classes, run_dir / RUN_FILES.folds / name, seed=seed,
                               devices=devices, **settings)


def predictors(config: RunConfig, devices: Devices, run_dir: Path, n_classes: int) -> list[FineTunedClassifier]:
    """The saved networks that predict: the refit, or else every scored fold's."""
    names = ["full"] if config.finetune.refit else [f"fold{k}" for k in range(config.finetune.scored_folds)]
    return [network(config, devices, run_dir, name, n_classes).load() for name in names]


def predict_proba(config: RunConfig, devices: Devices, run_dir: Path, images: ImageTable,
                  n_classes: int) -> np.ndarray:
    """Class probabilities from a finished run's saved networks, TTA-averaged: the run's and
    ``kagglekit predict``'s one path."""
    rows = ImageRows.every(build_shards(images.paths, config.stream, images.ids, what="test"))
    return np.mean([m.predict_proba(rows, config.tta) for m in predictors(config, devices, run_dir, n_classes)],
                   axis=0)


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path):
    """The submission of a finished run, recomputed from its saved networks."""
    test = checked_test(competition.load_test(data))
    proba = predict_proba(config, resolve_devices(config.device), run_dir, test, len(competition.classes))
    return competition.submission_frame(test.ids, proba.argmax(1))


def _saved_history(model: FineTunedClassifier) -> dict:
    path = model.workdir / HISTORY
    return json.loads(path.read_text()) if path.exists() else {}
