"""Multi-label classification (``multilabel-csv`` competitions: ``id,labels`` with "cat dog"), top to bottom.

1. read images and their 0/1 label vectors; multilabel-stratified K folds (identical images kept together);
2. cached frozen-backbone features, a sigmoid head per fold (BCE or focal loss, per-class weights),
   early-stopped on an inner split of its training part -> out-of-fold probabilities;
3. per-class F1-optimal thresholds, fitted nested (each fold's labels come from thresholds tuned on the
   other folds), with a top-1 fallback if ``multilabel.top1_fallback``; the CV is the competition's
   metric on those labels, fold by fold;
4. the test set: fold-ensemble probabilities, thresholds tuned on every OOF row, written and validated;
5. the run directory explains itself: config, metrics (per-class F1/AP, thresholds), OOF and test
   probabilities, learning curves.

``fit_label_heads`` and ``label_proba`` are the classification half of the PASCAL VOC pipeline too.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition, ImageTable
from kagglekit.core.config import MultiLabelConfig, RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text, sha256_file
from kagglekit.evaluation import baseline
from kagglekit.evaluation.folds import content_groups, inner_split, multilabel_folds
from kagglekit.evaluation.metrics import METRICS
from kagglekit.evaluation.reports import multilabel_report
from kagglekit.learners.devices import Devices, resolve_devices
from kagglekit.learners.multilabel_head import MultiLabelHead
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.learners.usage import usage
from kagglekit.models.losses import positive_weights
from kagglekit.pipelines.classification import model_inputs, tta_proba, write_folds
from kagglekit.pipelines import FoldHook, hyperparameters
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.runs import plots
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

log = logging.getLogger(__name__)


@dataclass
class LabelHeads:
    """What ``fit_label_heads`` learned: out-of-fold probabilities, the labels nested thresholds give
    them, the thresholds for the test set (tuned on every OOF row), the heads and a report."""

    oof: np.ndarray
    oof_labels: np.ndarray
    tuner: ThresholdTuner
    heads: list[MultiLabelHead]
    report: dict


def label_tuner(competition: Competition, ml: MultiLabelConfig) -> ThresholdTuner:
    """The run's unfitted threshold tuner: it maximises the F-score the competition's metric averages
    (``multilabel.threshold_average: auto``) or the one the config names."""
    if ml.threshold_average == "auto":
        return ThresholdTuner.for_metric(competition.metric, ml.top1_fallback)
    return ThresholdTuner(ml.top1_fallback, ml.threshold_average)


def nested_labels(oof: np.ndarray, labels: np.ndarray, folds: list, tuner: ThresholdTuner) -> np.ndarray:
    """OOF labels whose thresholds never saw the fold they label: each fold's come from a clone of ``tuner``
    fitted on the other folds' OOF probabilities (the scored CV must not tune on itself)."""
    out = np.zeros(labels.shape, dtype=np.int64)
    for tr, va in folds:
        out[va] = tuner.clone().fit(oof[tr], labels[tr]).predict(oof[va])
    return out


def fit_label_heads(competition: Competition, config: RunConfig, devices: Devices, run_dir: Path, train: ImageTable,
                    groups: np.ndarray, shas: list[str], folds: list) -> LabelHeads:
    """A sigmoid head per fold on frozen features, never early-stopped on the fold it predicts."""
    if config.train.top_blocks:
        raise ConfigError(f"train.top_blocks is not used by the {competition.task} pipeline; set it to false")
    classes = competition.classes
    views = list(dict.fromkeys(config.train.views + config.tta))
    (x_train,) = model_inputs(config, devices, train.paths, shas, views, "train")
    fit_views, tta_views = [views.index(v) for v in config.train.views], [views.index(v) for v in config.tta]
    ml = config.multilabel
    pos_weight = positive_weights(train.labels) if ml.class_weights else None
    oof = np.zeros(train.labels.shape, dtype=np.float32)
    heads = []
    for k, (tr, va) in enumerate(folds):
        head = MultiLabelHead(x_train.shape[-1], len(classes), run_dir / RUN_FILES.folds / f"fold{k}", pos_weight=pos_weight,
                              gamma=ml.focal_gamma if ml.loss == "focal" else 0.0, seed=config.seed + k,
                              devices=devices, **hyperparameters.head(config.train))
        fit, stop = inner_split(tr, train.labels, groups, config.seed + k)  # never stop on va
        head.fit(x_train[fit_views][:, fit].reshape(-1, x_train.shape[-1]), np.tile(train.labels[fit], (len(fit_views), 1)),
                 x_train[tta_views[0], stop], train.labels[stop])
        oof[va] = tta_proba(head, x_train[tta_views][:, va])
        heads.append(head)
    unfitted = label_tuner(competition, ml)
    tuner = unfitted.clone().fit(oof, train.labels)  # for the test set: every OOF row
    oof_labels = nested_labels(oof, train.labels, folds, unfitted)
    report = multilabel_report(train.labels, oof, oof_labels, classes)
    for c, t in zip(classes, tuner.saved_thresholds()):
        report["per_class"][c]["threshold"] = t  # None: no positive example, never predicted
    log.info("classification (OOF): mAP %.4f, macro F1 %.4f, label Dice %.4f",
             report["mAP"], report["macro_f1"], report["label_dice"])
    return LabelHeads(oof, oof_labels, tuner, heads, report)


def label_proba(config: RunConfig, devices: Devices, run_dir: Path, test: ImageTable, n_classes: int) -> np.ndarray:
    """(n, classes) probabilities of checked images from the run's saved fold heads, TTA views averaged."""
    (x_test,) = model_inputs(config, devices, test.paths, [sha256_file(p) for p in test.paths], config.tta, "test")
    heads = load_label_heads(config, devices, run_dir, x_test.shape[-1], n_classes)
    return np.mean([tta_proba(h, x_test) for h in heads], axis=0)


def load_label_heads(config: RunConfig, devices: Devices, run_dir: Path, feature_dim: int,
                     n_classes: int) -> list[MultiLabelHead]:
    """Every fold's saved sigmoid head, loaded, in fold order."""
    return [MultiLabelHead(feature_dim, n_classes, Path(run_dir) / RUN_FILES.folds / f"fold{k}", devices=devices,
                           **hyperparameters.head(config.train)).load()
            for k in range(config.folds)]


def write_postprocess(run_dir: Path, tuner: ThresholdTuner, top1_fallback: bool, **more) -> None:
    """``postprocess.json``: the thresholds (and anything else, e.g. VOC's consistency switch) that turn a
    run's saved probabilities into its submission."""
    atomic_write_json(Path(run_dir) / RUN_FILES.postprocess,
                      {"thresholds": tuner.saved_thresholds(), "top1_fallback": top1_fallback, **more})


def read_postprocess(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_FILES.postprocess
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the run's thresholds ({exc}); is the run finished?") from None


def saved_tuner(post: dict) -> ThresholdTuner:
    """The threshold tuner a ``read_postprocess`` dict describes."""
    return ThresholdTuner.from_thresholds(post["thresholds"], post["top1_fallback"])


def run(competition: Competition, config: RunConfig, run_dir: Path, on_fold: FoldHook | None = None) -> RunResult:
    started = time.time()
    data = Path(config.data)
    config.save(run_dir / RUN_FILES.config)
    devices = resolve_devices(config.device)
    classes = competition.classes
    train, skipped = usable_train(competition.load_train(data))
    test = checked_test(competition.load_test(data))
    groups, shas = content_groups(train.paths)
    folds = multilabel_folds(train.labels, groups, config.folds, config.seed)
    write_data_report(run_dir, classes, train, test, groups, skipped)
    write_folds(run_dir, train, folds)
    fitted = fit_label_heads(competition, config, devices, run_dir, train, groups, shas, folds)
    metric = label_metric(competition)
    fold_scores = [metric(train.labels[va], fitted.oof_labels[va]) for _, va in folds]
    constant = baseline.multi_label(train.labels, [va for _, va in folds], classes, metric)

    write_postprocess(run_dir, fitted.tuner, config.multilabel.top1_fallback)
    for k, score in enumerate(fold_scores) if on_fold else ():  # known only once every fold is out of fold
        on_fold(k, score)
    predicting = time.perf_counter()
    test_proba = label_proba(config, devices, run_dir, test, len(classes))
    timing = usage([h.time for h in fitted.heads], len(test) * len(config.tta), time.perf_counter() - predicting)
    submission = write_submission(competition.submission_frame(test.ids, fitted.tuner.predict(test_proba)),
                                  run_dir / RUN_FILES.submission)
    competition.validate(submission, data).raise_if_invalid()

    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)), fold_scores=fold_scores,
        submission=submission, seconds=time.time() - started,
        extra={"baseline": baseline.record(constant, float(np.mean(fold_scores)), competition.metric),
               "validation": f"{len(folds)} multilabel-stratified folds, thresholds nested",
               "classification": fitted.report, "train_images": len(train), "test_images": len(test),
               "timing": timing},
    )
    write_probabilities(run_dir, classes, train, fitted.oof, test, test_proba)
    atomic_write_json(run_dir / RUN_FILES.metrics, result.metrics())
    plots.learning_curves([h.history for h in fitted.heads], run_dir / RUN_FILES.learning_curves,
                          f"{competition.name}: CV {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}")
    return result


def label_metric(competition: Competition):
    """The competition's metric on 0/1 label rows: ``metric(truth, predicted)`` of the same images, each row
    written as the submission cell that holds it."""
    metric, options = METRICS.get(competition.metric), competition.metric_options()

    def score(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(metric(competition.label_cells(truth), competition.label_cells(predicted), **options))

    return score


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path) -> pd.DataFrame:
    """The submission of a finished run, recomputed from its saved heads and thresholds."""
    test = checked_test(competition.load_test(data))
    proba = label_proba(config, resolve_devices(config.device), run_dir, test, len(competition.classes))
    return competition.submission_frame(test.ids, saved_tuner(read_postprocess(run_dir)).predict(proba))


def write_data_report(run_dir: Path, classes: list[str], train: ImageTable, test: ImageTable, groups: np.ndarray,
                      skipped: dict) -> None:
    atomic_write_json(run_dir / RUN_FILES.data_report, {
        "train_images": len(train), "test_images": len(test), "duplicate_images": int(len(groups) - len(set(groups))),
        "label_counts": dict(zip(classes, train.labels.sum(0).tolist())),
        "labels_per_image": np.bincount(train.labels.sum(1)).tolist(), "skipped_unreadable_train": skipped,
    })


def write_probabilities(run_dir: Path, classes, train, oof, test, test_proba) -> None:
    """The classes and the out-of-fold (with the true labels) and test probabilities: what a blend reads."""
    atomic_write_json(run_dir / RUN_FILES.classes, list(classes))
    oof_frame = pd.DataFrame(oof, columns=classes).assign(id=train.ids)
    oof_frame = oof_frame.join(pd.DataFrame(train.labels, columns=[f"true_{c}" for c in classes]))
    atomic_write_text(run_dir / RUN_FILES.oof, oof_frame.to_csv(index=False, float_format="%.6f"))
    test_frame = pd.DataFrame(test_proba, columns=classes).assign(id=test.ids)
    atomic_write_text(run_dir / RUN_FILES.test_probabilities, test_frame.to_csv(index=False, float_format="%.6f"))
