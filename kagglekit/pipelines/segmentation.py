"""Semantic segmentation (``segmentation-folder`` competitions such as CamVid), top to bottom.

1. read images and masks; hold out whole groups (e.g. video sequences) for validation;
2. train a segmenter (pretrained encoder, U-Net or DeepLabV3+ head) with paired augmentations for a
   fixed epoch budget on a cosine schedule (the held-out group is watched, never tuned on);
3. score the hold-out at each image's original size: mIoU (void ignored) and the competition's Dice;
4. predict the test set with the saved model (``kagglekit predict`` takes the same path), resize back to each image's size, write and validate the RLE submission;
5. config, metrics, learning curves and the worst hold-out images with their masks are saved in the run
   directory, and what ``kagglekit blend`` needs: the hold-out and test probability maps at the model's
   input size (``runs.probability_maps``) and which images were held out (``folds.json``).

The segmenter checkpoints every epoch (``learners.checkpoints``): ``kagglekit run --resume RUN_DIR`` continues
a killed run from its last finished epoch, or, if it was killed after training, from the saved segmenter.
"""

from __future__ import annotations

import json
import functools
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition, ImageTable
from kagglekit.core.config import RunConfig
from kagglekit.core.fileio import atomic_write_json
from kagglekit.data.images import read_rgb
from kagglekit.data.masks import image_size, read_label_map
from kagglekit.evaluation import baseline
from kagglekit.evaluation.folds import grouped_holdout
from kagglekit.evaluation.reports import segmentation_report
from kagglekit.evaluation.segmentation import mask_dice
from kagglekit.learners import budget
from kagglekit.learners.devices import Devices, resolve_devices
from kagglekit.learners.segmenter import Segmenter, predict_label_maps, segmentation_seconds, segmenter_views
from kagglekit.learners.usage import usage
from kagglekit.pipelines import FoldHook, hyperparameters
from kagglekit.pipelines.budgeting import budgeted, deadline, stopped
from kagglekit.pipelines.classification import write_folds
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.runs import plots
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.probability_maps import MapsWriter, maps_writer
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

log = logging.getLogger(__name__)


def run(competition: Competition, config: RunConfig, run_dir: Path, on_fold: FoldHook | None = None) -> RunResult:
    started = time.time()
    data = Path(config.data)
    if not (run_dir / RUN_FILES.config).exists():  # a resumed run keeps the config it started with
        config.save(run_dir / RUN_FILES.config)
    devices = resolve_devices(config.device)
    classes, void = competition.classes, competition.void_label
    train, skipped = usable_train(cap_images(competition.load_train(data), config.segmentation.max_train_images),
                                  len(classes), void)
    test = checked_test(competition.load_test(data))
    fit, valid = grouped_holdout(competition.groups(train.ids), config.segmentation.valid_fraction, config.seed,
                                 "training images", f" (by the competition's group_pattern on their ids, e.g. "
                                 f"{train.ids[0]!r}): add images of another group (another video or drive), or "
                                 "remove group_pattern from the competition's YAML")
    write_folds(run_dir, train, [(fit, valid)])  # the hold-out is fold 0, the rest scored by no fold
    fit, valid = train.subset(fit), train.subset(valid)
    atomic_write_json(run_dir / RUN_FILES.data_report, {
        "train_images": len(fit), "valid_images": len(valid), "test_images": len(test),
        "valid_ids": valid.ids, "skipped_unreadable_train": skipped,
    })

    config, time_plan = budgeted(config, run_dir, "segmentation", started,
                                 functools.partial(Segmenter(len(classes), void, run_dir / RUN_FILES.segmenter, devices=devices,
                                                             **hyperparameters.segmenter(config)).timings,
                                                   fit.paths, fit.masks),
                                 segmentation_seconds(config.segmentation, config.tta, len(fit), len(valid) + len(test),
                                                      len(valid)),
                                 1, 1)
    segmenter = Segmenter(len(classes), void, run_dir / RUN_FILES.segmenter, devices=devices,
                          **hyperparameters.segmenter(config))
    segmenter.fit_once(fit.paths, fit.masks, valid.paths, valid.masks,
                       deadline=deadline(config, time_plan, started, len(valid) + len(test),
                                          len(segmenter_views(config.tta))))
    time_plan = stopped(run_dir, time_plan, segmenter, started)
    truths = [read_label_map(m) for m in valid.masks]
    with maps_writer(run_dir / RUN_FILES.holdout_maps, valid.ids, classes) as kept:
        predicted = segmenter.predict(valid.paths, [t.shape for t in truths], config.tta, on_proba=kept)
    scores = segmentation_report(truths, predicted, classes, void)
    log.info("hold-out (%d images): mIoU %.4f, Dice %.4f", len(valid), scores["miou"], scores["dice"])
    if on_fold:  # the hold-out is the one "fold"
        on_fold(0, scores["dice"])

    predicting = time.perf_counter()
    with maps_writer(run_dir / RUN_FILES.test_maps, test.ids, classes) as kept:
        frame = predict_images(competition, config, devices, run_dir, test, kept)
    submission = write_submission(frame, run_dir / RUN_FILES.submission)
    timing = usage([segmenter.time], len(test), time.perf_counter() - predicting)
    competition.validate(submission, data).raise_if_invalid()

    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=scores["dice"], cv_std=0.0, fold_scores=[scores["dice"]], submission=submission,
        seconds=time.time() - started,
        extra={"baseline": baseline.record(baseline.per_class_masks(truths, [np.arange(len(truths))], classes),
                                           scores["dice"], competition.metric),
               "validation": "grouped hold-out", **scores, "epochs": len(segmenter.history.get("loss", [])),
               "timing": timing, "time_budget": budget.record(time_plan, time.time() - started)},
    )
    write_outputs(result, competition, [segmenter.history], valid, truths, predicted)
    return result


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path) -> pd.DataFrame:
    """The submission of a finished run, recomputed from its saved segmenter (the run writes this too)."""
    return predict_images(competition, config, resolve_devices(config.device), run_dir,
                          checked_test(competition.load_test(data)))


def predict_images(competition: Competition, config: RunConfig, devices: Devices, run_dir: Path, test: ImageTable,
                   on_proba: MapsWriter | None = None) -> pd.DataFrame:
    """The submission for checked test images, from the run's saved segmenter (``on_proba`` keeps the
    probability maps): each image's label map is encoded as its rows as it is predicted, never all held."""
    segmenter = Segmenter(len(competition.classes), competition.void_label, run_dir / RUN_FILES.segmenter, devices=devices,
                          **hyperparameters.segmenter(config)).load()
    return competition.submission_frame(test.ids, predict_label_maps(
        [segmenter], test.paths, [image_size(p) for p in test.paths], config.tta, on_proba=on_proba))


def cap_images(table: ImageTable, limit: int) -> ImageTable:
    """Evenly spaced ``limit`` images (0: all), for quick runs that still see every part of the set."""
    if not limit or limit >= len(table):
        return table
    return table.subset(np.linspace(0, len(table) - 1, limit).round().astype(int))


def write_outputs(result: RunResult, competition: Competition, histories: list[dict], valid: ImageTable,
                  truths: list[np.ndarray], predicted: list[np.ndarray], background: int | None = None) -> None:
    run_dir = result.run_dir
    metrics = result.metrics()
    atomic_write_json(run_dir / RUN_FILES.metrics, metrics)
    title = f"{competition.name}: hold-out {result.metric} {result.cv_mean:.4f}"
    if "miou" in result.extra:
        title += f", mIoU {result.extra['miou']:.4f}"
    plots.learning_curves(histories, run_dir / RUN_FILES.learning_curves, title)
    # the worst-segmented hold-out images first: where the model needs looking at
    n_classes = len(competition.classes) + (background is not None)
    dice = np.array([mask_dice(t, p, n_classes).mean() for t, p in zip(truths, predicted)])
    shown = np.argsort(dice, kind="stable")[:4]
    plots.mask_overlays([read_rgb(valid.paths[i]) for i in shown], [truths[i] for i in shown],
                        [predicted[i] for i in shown], n_classes, run_dir / RUN_FILES.masks,
                        f"{competition.name}: the {len(shown)} worst of {len(valid)} hold-out images", background,
                        [f"{valid.ids[i]}: mean Dice over classes {dice[i]:.3f}" for i in shown])
    log.info("run directory %s\n%s", run_dir, json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=1))
