"""Multi-label classification + segmentation (the PASCAL VOC course competition), top to bottom.

1. read images, labels and masks; multilabel-stratified K folds (identical images kept together);
2. classification: cached frozen-backbone features, a sigmoid head per fold (BCE or focal loss,
   per-class weights) -> out-of-fold probabilities -> per-class F1-optimal thresholds fitted on them
   (top-1 fallback) -> fold-ensemble test labels; per-class F1 and mAP reported;
3. segmentation: a segmenter trained on fold 0's training part, early-stopped and scored on its
   validation part (whose classifier predictions are out-of-fold, so the comparison is honest);
   "consistency" (limit each image's pixels to background + the classes the classifier predicts)
   is kept only if it raises the hold-out Dice (``segmentation.consistency: auto``);
4. both kinds of rows are written as row-major RLE at each image's original size and validated;
5. the run directory explains itself: config, metrics (per-class F1/AP, thresholds, mIoU, Dice with
   and without consistency), OOF and test probabilities, learning curves, masks over images.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition, ImageTable
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text, sha256_file
from kagglekit.data.masks import image_size, read_label_map
from kagglekit.evaluation.folds import content_groups, inner_split, multilabel_folds
from kagglekit.evaluation.reports import multilabel_report, segmentation_report
from kagglekit.evaluation.segmentation import stack_dice
from kagglekit.learners.multilabel_head import MultiLabelHead
from kagglekit.learners.segmenter import Segmenter
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.models.losses import positive_weights
from kagglekit.pipelines.classification import model_inputs, tta_proba
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.pipelines.segmentation import cap_images, write_outputs
from kagglekit.runs import plots
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

log = logging.getLogger(__name__)
#: What turns probabilities into the submission: per-class thresholds, top-1 fallback, consistency.
POSTPROCESS = "postprocess.json"


def nested_labels(oof: np.ndarray, labels: np.ndarray, folds: list, top1_fallback: bool) -> np.ndarray:
    """OOF labels whose thresholds never saw the fold they label: each fold's come from a tuner fitted
    on the other folds' OOF probabilities (the scored CV must not tune on itself)."""
    out = np.zeros(labels.shape, dtype=np.int64)
    for tr, va in folds:
        out[va] = ThresholdTuner(top1_fallback).fit(oof[tr], labels[tr]).predict(oof[va])
    return out


def run(competition: Competition, config: RunConfig, run_dir: Path) -> RunResult:
    started = time.time()
    data = Path(config.data)
    config.save(run_dir / "config.yaml")
    if config.segmentation.consistency not in ("auto", "on", "off"):
        raise ConfigError(f"segmentation.consistency must be auto, on or off, not {config.segmentation.consistency!r}")
    classes, void = competition.classes, competition.void_label
    train, skipped = usable_train(cap_images(competition.load_train(data), config.segmentation.max_train_images))
    test = checked_test(competition.load_test(data))
    groups, train_shas = content_groups(train.paths)
    folds = multilabel_folds(train.labels, groups, config.folds, config.seed)
    atomic_write_json(run_dir / "data_report.json", {
        "train_images": len(train), "test_images": len(test), "duplicate_images": int(len(groups) - len(set(groups))),
        "label_counts": dict(zip(classes, train.labels.sum(0).tolist())),
        "labels_per_image": np.bincount(train.labels.sum(1)).tolist(), "skipped_unreadable_train": skipped,
    })

    # --- classification -------------------------------------------------------------------------------
    if config.train.top_blocks:
        raise ConfigError("train.top_blocks is not used by the multilabel-segmentation pipeline; set it to false")
    views = list(dict.fromkeys(config.train.views + config.tta))
    (x_train,) = model_inputs(config, train.paths, train_shas, views, "train")
    fit_views, tta_views = [views.index(v) for v in config.train.views], [views.index(v) for v in config.tta]
    ml = config.multilabel
    if ml.loss not in ("bce", "focal"):
        raise ConfigError(f"multilabel.loss must be bce or focal, not {ml.loss!r}")
    pos_weight = positive_weights(train.labels) if ml.class_weights else None
    oof = np.zeros(train.labels.shape, dtype=np.float32)
    heads = []
    for k, (tr, va) in enumerate(folds):
        head = MultiLabelHead(x_train.shape[-1], len(classes), config.train, config.seed + k,
                              run_dir / "folds" / f"fold{k}", pos_weight, ml.focal_gamma if ml.loss == "focal" else 0.0)
        fit, stop = inner_split(tr, train.labels, groups, config.seed + k)  # never stop on va
        head.fit(x_train[fit_views][:, fit].reshape(-1, x_train.shape[-1]), np.tile(train.labels[fit], (len(fit_views), 1)),
                 x_train[tta_views[0], stop], train.labels[stop])
        oof[va] = tta_proba(head, x_train[tta_views][:, va])
        heads.append(head)
    tuner = ThresholdTuner(ml.top1_fallback).fit(oof, train.labels)  # for the test set: every OOF row
    oof_labels = nested_labels(oof, train.labels, folds, ml.top1_fallback)
    report = multilabel_report(train.labels, oof, oof_labels, classes)
    for c, t in zip(classes, tuner.thresholds_):
        report["per_class"][c]["threshold"] = float(t)
    log.info("classification (OOF): mAP %.4f, macro F1 %.4f, label Dice %.4f",
             report["mAP"], report["macro_f1"], report["label_dice"])

    # --- segmentation on fold 0 -----------------------------------------------------------------------
    fit, valid = train.subset(folds[0][0]), train.subset(folds[0][1])
    segmenter = Segmenter(len(classes) + 1, void, config, run_dir / "segmenter")
    segmenter.fit(fit.paths, fit.masks, valid.paths, valid.masks)
    truths = [read_label_map(m) for m in valid.masks]
    sizes = [t.shape for t in truths]
    allowed_valid = np.hstack([np.ones((len(valid), 1), bool), oof_labels[folds[0][1]].astype(bool)])
    plain = segmenter.predict(valid.paths, sizes, config.tta)
    consistent = segmenter.predict(valid.paths, sizes, config.tta, allowed=allowed_valid)
    foreground = range(1, len(classes) + 1)
    dice_plain = float(np.mean([stack_dice(t, p, foreground, void) for t, p in zip(truths, plain)]))
    dice_consistent = float(np.mean([stack_dice(t, p, foreground, void) for t, p in zip(truths, consistent)]))
    mode = config.segmentation.consistency
    use_consistency = mode == "on" or (mode == "auto" and dice_consistent > dice_plain)
    predicted = consistent if use_consistency else plain
    seg_scores = segmentation_report(truths, predicted, ["background"] + classes, void)
    log.info("segmentation hold-out: Dice %.4f plain, %.4f with classifier consistency (%s); mIoU %.4f",
             dice_plain, dice_consistent, "kept" if use_consistency else "dropped", seg_scores["miou"])

    # --- estimated leaderboard score on the hold-out: both kinds of rows -----------------------------
    y_valid, l_valid = train.labels[folds[0][1]], oof_labels[folds[0][1]]
    label_dice = 2 * (y_valid & l_valid).sum(1) / np.maximum(y_valid.sum(1) + l_valid.sum(1), 1)
    mask_rows = [stack_dice(t, p, foreground, void) for t, p in zip(truths, predicted)]
    estimate = float(np.mean(np.concatenate([label_dice, mask_rows])))

    # --- test: from the saved models, exactly as ``kagglekit predict`` does ---------------------------
    atomic_write_json(run_dir / POSTPROCESS, {"thresholds": tuner.thresholds_.tolist(),
                                              "top1_fallback": ml.top1_fallback, "consistency": use_consistency})
    frame, test_proba = predict_with_proba(competition, config, run_dir, test)
    submission = write_submission(frame, run_dir / "submission.csv")
    competition.validate(submission, data).raise_if_invalid()

    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=estimate, cv_std=0.0, fold_scores=[estimate], submission=submission, seconds=time.time() - started,
        extra={
            "validation": f"fold 0 of {len(folds)} multilabel-stratified folds (classifier: all folds, out-of-fold)",
            "classification_rows_dice": float(label_dice.mean()), "segmentation_rows_dice": float(np.mean(mask_rows)),
            "segmentation_dice_plain": dice_plain, "segmentation_dice_consistent": dice_consistent,
            "consistency_used": bool(use_consistency), "segmentation": seg_scores, "classification": report,
            "train_images": len(train), "test_images": len(test),
        },
    )
    write_probabilities(run_dir, classes, train, oof, test, test_proba)
    plots.learning_curves([h.history for h in heads], run_dir / "plots" / "classifier_learning_curves.png",
                          f"{competition.name}: classifier heads, OOF mAP {report['mAP']:.4f}")
    write_outputs(result, competition, [segmenter.history], valid, truths, predicted, background=0)
    return result


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path) -> pd.DataFrame:
    """The submission of a finished run, recomputed from its saved heads, thresholds and segmenter."""
    return predict_with_proba(competition, config, run_dir, checked_test(competition.load_test(data)))[0]


def predict_with_proba(competition: Competition, config: RunConfig, run_dir: Path, test: ImageTable):
    """(submission frame, test class probabilities) of checked test images, from what the run directory holds."""
    post = json.loads((run_dir / POSTPROCESS).read_text())
    (x_test,) = model_inputs(config, test.paths, [sha256_file(p) for p in test.paths], config.tta, "test")
    n_classes = len(competition.classes)
    heads = [MultiLabelHead(x_test.shape[-1], n_classes, config.train, 0, run_dir / "folds" / f"fold{k}").load()
             for k in range(config.folds)]
    proba = np.mean([tta_proba(h, x_test) for h in heads], axis=0)
    labels = ThresholdTuner.from_thresholds(post["thresholds"], post["top1_fallback"]).predict(proba)
    allowed = np.hstack([np.ones((len(test), 1), bool), labels.astype(bool)]) if post["consistency"] else None
    segmenter = Segmenter(n_classes + 1, competition.void_label, config, run_dir / "segmenter").load()
    maps = segmenter.predict(test.paths, [image_size(p) for p in test.paths], config.tta, allowed=allowed)
    return competition.submission_frame(test.ids, labels, maps), proba


def write_probabilities(run_dir: Path, classes, train, oof, test, test_proba) -> None:
    oof_frame = pd.DataFrame(oof, columns=classes).assign(id=train.ids)
    oof_frame = oof_frame.join(pd.DataFrame(train.labels, columns=[f"true_{c}" for c in classes]))
    atomic_write_text(run_dir / "oof.csv", oof_frame.to_csv(index=False, float_format="%.6f"))
    test_frame = pd.DataFrame(test_proba, columns=classes).assign(id=test.ids)
    atomic_write_text(run_dir / "test_probabilities.csv", test_frame.to_csv(index=False, float_format="%.6f"))
