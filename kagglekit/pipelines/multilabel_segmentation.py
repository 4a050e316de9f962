"""Multi-label classification + segmentation (the PASCAL VOC course competition), top to bottom.

1. read images, labels and masks; multilabel-stratified K folds (identical images kept together);
2. classification: cached frozen-backbone features, a sigmoid head per fold (BCE or focal loss,
   per-class weights) -> out-of-fold probabilities -> per-class F1-optimal thresholds fitted on them
   (top-1 fallback) -> fold-ensemble test labels; per-class F1 and mAP reported;
3. segmentation: a segmenter per fold (``segmentation.scored_folds`` of them; all K by default),
   trained for a fixed epoch budget on the fold's training part and scored on its validation part
   (whose classifier predictions are out-of-fold too, so the comparison is honest); "consistency"
   (limit each image's pixels to background + the classes the classifier predicts) is kept only if
   it raises the out-of-fold Dice (``segmentation.consistency: auto``); the test masks come from the
   fold segmenters' mean probabilities;
4. both kinds of rows are written as row-major RLE at each image's original size and validated;
5. the run directory explains itself: config, metrics (per-class F1/AP, thresholds, mIoU, Dice with
   and without consistency), OOF and test probabilities, learning curves, masks over images, and what
   ``kagglekit blend`` needs besides the label probabilities: the segmenters' class-probability maps of
   every scored fold's images (out of fold) and of the test images (``runs.probability_maps``).

``kagglekit run --resume RUN_DIR`` continues a killed run: the classifier heads train again (seconds, on
cached features), a finished fold's segmenter is loaded, an unfinished one resumes at its last finished
epoch (``learners.checkpoints``), and everything after is recomputed from them as an uninterrupted run does.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition, ImageTable
from kagglekit.core.config import RunConfig
from kagglekit.data.masks import image_size, read_label_map
from kagglekit.evaluation import baseline
from kagglekit.evaluation.folds import content_groups, multilabel_folds
from kagglekit.evaluation.reports import segmentation_report
from kagglekit.evaluation.segmentation import stack_dice
from kagglekit.learners import budget
from kagglekit.learners.devices import Devices, resolve_devices
from kagglekit.learners.segmenter import (Segmenter, label_maps, predict_label_maps, proba_chunks, saved_segmenters,
                                       segmentation_seconds, segmenter_views)
from kagglekit.learners.usage import usage
from kagglekit.pipelines import FoldHook, hyperparameters
from kagglekit.pipelines.budgeting import budgeted, deadline, stopped
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.pipelines.multilabel_classification import (
    fit_label_heads,
    label_proba,
    read_postprocess,
    saved_tuner,
    write_data_report,
    write_postprocess,
    write_probabilities,
)
from kagglekit.pipelines.classification import write_folds
from kagglekit.pipelines.segmentation import cap_images, write_outputs
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
                                  len(classes) + 1, void)
    test = checked_test(competition.load_test(data))
    groups, train_shas = content_groups(train.paths)
    folds = multilabel_folds(train.labels, groups, config.folds, config.seed)
    write_data_report(run_dir, classes, train, test, groups, skipped)
    write_folds(run_dir, train, folds)

    # --- classification (kagglekit.pipelines.multilabel_classification) --------------------------------
    fitted = fit_label_heads(competition, config, devices, run_dir, train, groups, train_shas, folds)
    oof, oof_labels, tuner, report = fitted.oof, fitted.oof_labels, fitted.tuner, fitted.report

    # --- segmentation: a segmenter per scored fold, trained on its training part, scored on the rest ---
    k, first = len(folds), train.subset(folds[0][0])
    config, time_plan = budgeted(config, run_dir, "segmentation", started,
                                 functools.partial(Segmenter(len(classes) + 1, void, run_dir / RUN_FILES.segmenter / "fold0",
                                                             devices=devices, **hyperparameters.segmenter(config)).timings,
                                                   first.paths, first.masks),
                                 segmentation_seconds(config.segmentation, config.tta, len(train) * (k - 1) // k,
                                                      len(train) // k + len(test), len(train) // k),
                                 1, config.segmentation.scored_folds or k)
    scored = folds[:config.segmentation.scored_folds or k]
    rows = np.concatenate([va for _, va in scored])
    truths, plain, consistent, histories, times = [], [], [], [], [h.time for h in fitted.heads]
    with maps_writer(run_dir / RUN_FILES.oof_maps, [train.ids[i] for i in rows], mask_classes(classes)) as kept:
        for k, (tr, va) in enumerate(scored):  # every scored image's maps kept, in the order of rows
            fit, valid = train.subset(tr), train.subset(va)
            segmenter = Segmenter(len(classes) + 1, void, run_dir / RUN_FILES.segmenter / f"fold{k}", devices=devices,
                                  **hyperparameters.segmenter(config))
            segmenter.fit_once(fit.paths, fit.masks, valid.paths, valid.masks,  # valid only watched, never tuned on
                               deadline=deadline(config, time_plan, started, len(va) + len(test) * (k + 1),
                                                  len(segmenter_views(config.tta))))
            time_plan = stopped(run_dir, time_plan, segmenter, started)
            histories.append(segmenter.history)
            times.append(segmenter.time)
            fold_truths = [read_label_map(m) for m in valid.masks]
            allowed = allowed_classes(oof_labels[va])
            for part, proba in proba_chunks([segmenter], valid.paths, config.tta):  # one pass serves both variants
                kept(proba)
                sizes = [t.shape for t in fold_truths[part]]
                plain += label_maps(proba, sizes)
                consistent += label_maps(proba, sizes, allowed[part])
            truths += fold_truths
    dice_plain = float(np.mean(mask_rows_dice(truths, plain, len(classes), void)))
    dice_consistent = float(np.mean(mask_rows_dice(truths, consistent, len(classes), void)))
    use_consistency = keeps_consistency(config.segmentation.consistency, dice_plain, dice_consistent)
    predicted = consistent if use_consistency else plain
    seg_scores = segmentation_report(truths, predicted, mask_classes(classes), void)
    log.info("segmentation out-of-fold (%d folds): Dice %.4f plain, %.4f with classifier consistency (%s); mIoU %.4f",
             len(scored), dice_plain, dice_consistent, "kept" if use_consistency else "dropped", seg_scores["miou"])

    # --- estimated leaderboard score out of fold: both kinds of rows, per fold ------------------------
    foreground_dice = np.full(len(train), np.nan)  # by training row; truths/predicted are in the order of rows
    foreground_dice[rows] = mask_rows_dice(truths, predicted, len(classes), void)
    label_dice = label_rows_dice(train.labels, oof_labels)
    fold_scores = leaderboard_folds(label_dice, foreground_dice, [va for _, va in scored])
    constant = constant_answer(train.labels[rows], truths, np.split(np.arange(len(rows)), np.cumsum(
        [len(va) for _, va in scored])[:-1]), classes, void)  # truths are in the order of rows

    # --- test: from the saved models, exactly as ``kagglekit predict`` does ---------------------------
    write_postprocess(run_dir, tuner, config.multilabel.top1_fallback, consistency=use_consistency)
    for k, score in enumerate(fold_scores) if on_fold else ():  # known only once every fold is out of fold
        on_fold(k, score)
    predicting = time.perf_counter()
    with maps_writer(run_dir / RUN_FILES.test_maps, test.ids, mask_classes(classes)) as kept:
        frame, test_proba = predict_with_proba(competition, config, devices, run_dir, test, kept)
    timing = usage(times, len(test), time.perf_counter() - predicting)
    submission = write_submission(frame, run_dir / RUN_FILES.submission)
    competition.validate(submission, data).raise_if_invalid()

    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)), fold_scores=fold_scores,
        submission=submission, seconds=time.time() - started,
        extra={
            "baseline": baseline.record(constant, float(np.mean(fold_scores)), competition.metric,
                                        row_kinds_cv(label_dice, foreground_dice, [va for _, va in scored])),
            "validation": f"{len(scored)} of {len(folds)} multilabel-stratified folds out of fold (classifier: all "
                          f"{len(folds)}); thresholds nested; nothing tuned on a scored fold but the consistency switch",
            "classification_rows_dice": float(label_dice[rows].mean()), "segmentation_rows_dice": float(foreground_dice[rows].mean()),
            "segmentation_dice_plain": dice_plain, "segmentation_dice_consistent": dice_consistent,
            "consistency_used": bool(use_consistency), "segmentation": seg_scores, "classification": report,
            "train_images": len(train), "test_images": len(test), "timing": timing,
            "time_budget": budget.record(time_plan, time.time() - started),
        },
    )
    write_probabilities(run_dir, classes, train, oof, test, test_proba)
    plots.learning_curves([h.history for h in fitted.heads], run_dir / RUN_FILES.classifier_learning_curves,
                          f"{competition.name}: classifier heads, OOF mAP {report['mAP']:.4f}")
    write_outputs(result, competition, histories, train.subset(rows), truths, predicted, background=0)
    return result


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path) -> pd.DataFrame:
    """The submission of a finished run, recomputed from its saved heads, thresholds and segmenter."""
    return predict_with_proba(competition, config, resolve_devices(config.device), run_dir,
                              checked_test(competition.load_test(data)))[0]


def predict_with_proba(competition: Competition, config: RunConfig, devices: Devices, run_dir: Path,
                       test: ImageTable, on_proba: MapsWriter | None = None):
    """(submission frame, test class probabilities) of checked test images, from what the run directory
    holds (``on_proba`` keeps the segmenters' probability maps); each image's label map is encoded as its
    rows as it is predicted, never all held."""
    n_classes = len(competition.classes)
    proba = label_proba(config, devices, run_dir, test, n_classes)
    post = read_postprocess(run_dir)
    labels = saved_tuner(post).predict(proba)
    allowed = allowed_classes(labels) if post["consistency"] else None
    segmenters = saved_segmenters(run_dir / RUN_FILES.segmenter, n_classes + 1, competition.void_label, devices=devices,
                                  **hyperparameters.segmenter(config))
    maps = predict_label_maps(segmenters, test.paths, [image_size(p) for p in test.paths], config.tta, allowed,
                              on_proba)
    return competition.submission_frame(test.ids, labels, maps), proba


def mask_classes(classes: list[str]) -> list[str]:
    """The segmenter's classes: background (label 0), then the competition's."""
    return ["background", *classes]


def allowed_classes(labels: np.ndarray) -> np.ndarray:
    """Per image, the mask classes its 0/1 ``labels`` allow (background and the classes predicted), as
    ``label_maps``' ``allowed``: the run's "consistency" (masks limited to what the classifier predicts)."""
    return np.hstack([np.ones((len(labels), 1), bool), np.asarray(labels).astype(bool)])


def keeps_consistency(mode: str, dice_plain: float, dice_consistent: float) -> bool:
    """``segmentation.consistency``: "on", "off", or "auto" (kept if it raises the out-of-fold mask Dice)."""
    return mode == "on" or (mode == "auto" and dice_consistent > dice_plain)


def label_rows_dice(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Each image's classification row's Dice (0/1 label vectors; every VOC image has a label)."""
    return 2 * (truth & predicted).sum(1) / np.maximum(truth.sum(1) + predicted.sum(1), 1)


def mask_rows_dice(truths: list[np.ndarray], maps: list[np.ndarray], n_classes: int, void: int | None) -> np.ndarray:
    """Each image's segmentation row's Dice: its stack of class masks (background excluded), void ignored."""
    foreground = range(1, n_classes + 1)
    return np.array([stack_dice(t, p, foreground, void) for t, p in zip(truths, maps)], dtype=float)


def leaderboard_folds(label_dice: np.ndarray, mask_dice: np.ndarray, folds: list[np.ndarray]) -> list[float]:
    """The leaderboard's score estimated per fold (rows ``folds``' indices): the mean over both kinds of row."""
    return [float(np.mean(np.concatenate([label_dice[va], mask_dice[va]]))) for va in folds]


def constant_answer(labels: np.ndarray, truths: list[np.ndarray], folds: list[np.ndarray], classes: list[str],
                    void: int | None) -> baseline.Baseline:
    """The best constant submission of these images (0/1 ``labels`` and label maps ``truths`` of the same
    images; ``folds`` index both), scored as the run scores itself: a label set for every image, the
    better of empty (all background) and majority masks, and their mean per fold."""
    def labels_dice(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(label_rows_dice(truth, predicted).mean())

    def masks_dice(truth: list[np.ndarray], predicted: list[np.ndarray]) -> float:
        return float(mask_rows_dice(truth, predicted, len(classes), void).mean())

    return baseline.joint({"classification rows": baseline.multi_label(labels, folds, classes, labels_dice),
                           "segmentation rows": baseline.segmentation(truths, folds, mask_classes(classes),
                                                                      masks_dice, empty=0)})


def row_kinds_cv(label_dice: np.ndarray, mask_dice: np.ndarray, folds: list[np.ndarray]) -> dict[str, float]:
    """Each kind of row's CV apart (the mean over ``folds`` of its rows' mean Dice): what the parts of
    ``constant_answer`` are compared with."""
    return {name: float(np.mean([dice[va].mean() for va in folds]))
            for name, dice in (("classification rows", label_dice), ("segmentation rows", mask_dice))}
