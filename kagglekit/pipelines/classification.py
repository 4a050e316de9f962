"""Single-label image classification, top to bottom.

1. read the competition's images (unreadable training images are skipped and listed);
2. extract frozen-backbone features once per image and view (cached on disk by content);
3. stratified K-fold CV (duplicates grouped): a head per fold, trained on all train views,
   early-stopped on the validation fold, scored on out-of-fold TTA-averaged predictions;
4. the fold ensemble predicts the test set (TTA-averaged), the submission is written and validated;
5. config, metrics, OOF predictions, plots and weights are saved in the run directory.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from kagglekit.competition import Competition, ImageTable
from kagglekit.config import RunConfig
from kagglekit.cv import content_groups, stratified_folds
from kagglekit.data.images import find_unreadable
from kagglekit.errors import DataError
from kagglekit.features import FeatureExtractor
from kagglekit.fileio import atomic_write_json, atomic_write_text, sha256_file
from kagglekit.heads import HeadClassifier
from kagglekit.metrics import METRICS
from kagglekit.pipelines import PIPELINES, RunResult
from kagglekit import plots
from kagglekit.submission import validate_submission, write_submission

log = logging.getLogger(__name__)


@PIPELINES.decorator("classification")
def run(competition: Competition, config: RunConfig, run_dir: Path) -> RunResult:
    started = time.time()
    data = Path(config.data)
    config.save(run_dir / "config.yaml")

    train, test = read_images(competition, data, run_dir)
    groups, train_shas = content_groups(train.paths)
    test_shas = [sha256_file(p) for p in test.paths]
    folds = stratified_folds(train.labels, groups, config.folds, config.seed)
    classes = competition.classes
    metric = METRICS.get(competition.metric)

    views = list(dict.fromkeys(config.train.views + config.tta))
    x_train = extract_features(config, train.paths, train_shas, views, "train")
    x_test = extract_features(config, test.paths, test_shas, config.tta, "test")
    fit_views = [views.index(v) for v in config.train.views]
    tta_views = [views.index(v) for v in config.tta]

    weights = None
    if config.train.class_weights:
        present = np.unique(train.labels)
        weights = dict(zip(present.tolist(), compute_class_weight("balanced", classes=present, y=train.labels)))

    oof = np.zeros((len(train), len(classes)), dtype=np.float32)
    heads, fold_scores = [], []
    for k, (tr, va) in enumerate(folds):
        head = HeadClassifier(len(classes), config.train, config.seed + k, run_dir / "folds" / f"fold{k}")
        x_fit = x_train[fit_views][:, tr].reshape(-1, x_train.shape[-1])
        y_fit = np.tile(train.labels[tr], len(fit_views))
        head.fit(x_fit, y_fit, x_train[views.index("identity") if "identity" in views else 0, va],
                 train.labels[va], weights)
        oof[va] = ensemble_proba([head], x_train[tta_views][:, va])
        fold_scores.append(metric(train.labels[va], oof[va].argmax(1)))
        heads.append(head)
        log.info("fold %d/%d: %s %.4f", k + 1, len(folds), competition.metric, fold_scores[-1])

    test_proba = ensemble_proba(heads, x_test)
    submission = write_submission(competition.submission_frame(test.ids, test_proba.argmax(1)), run_dir / "submission.csv")
    validate_submission(competition, submission, competition.sample_submission_path(data)).raise_if_invalid()

    cv_score = metric(train.labels, oof.argmax(1))
    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)),
        fold_scores=[float(s) for s in fold_scores], submission=submission, seconds=time.time() - started,
        extra={"oof_score": float(cv_score), "feature_dim": int(x_train.shape[-1]), "train_images": len(train),
               "test_images": len(test), "epochs": [len(h.history.get("loss", [])) for h in heads]},
    )
    write_outputs(result, competition, train, test, oof, test_proba, heads)
    return result


def read_images(competition: Competition, data: Path, run_dir: Path) -> tuple[ImageTable, ImageTable]:
    """Load both splits; skip (and list) unreadable training images, refuse unreadable test images."""
    train, test = competition.load_train(data), competition.load_test(data)
    bad_train = find_unreadable(train.paths)
    bad_test = find_unreadable(test.paths)
    atomic_write_json(run_dir / "data_report.json", {
        "train_images": len(train), "test_images": len(test),
        "skipped_unreadable_train": {str(p): r for p, r in bad_train.items()},
        "class_counts": dict(zip(competition.classes, np.bincount(train.labels, minlength=len(competition.classes)).tolist())),
    })
    if bad_test:
        listed = "\n  ".join(bad_test.values())
        raise DataError(f"{len(bad_test)} test image(s) cannot be read, and each needs a prediction:\n  {listed}")
    if bad_train:
        log.warning("skipping %d unreadable training image(s):\n  %s", len(bad_train), "\n  ".join(bad_train.values()))
        keep = [i for i, p in enumerate(train.paths) if p not in bad_train]
        train = train.subset(keep)
    return train, test


def extract_features(config: RunConfig, paths: list[Path], shas: list[str], views: list[str], desc: str) -> np.ndarray:
    """(views, images, features): each backbone's features side by side."""
    parts = [
        FeatureExtractor(name, config.image_size, weights_dir=config.weights_dir).transform(paths, shas, views, desc)
        for name in config.backbones
    ]
    return np.concatenate(parts, axis=-1)


def ensemble_proba(heads: list[HeadClassifier], x_views: np.ndarray) -> np.ndarray:
    """Mean class probabilities over fold heads and views; x_views is (views, images, features)."""
    return np.mean([head.predict_proba(x) for head in heads for x in x_views], axis=0)


def write_outputs(result: RunResult, competition: Competition, train: ImageTable, test: ImageTable,
                  oof: np.ndarray, test_proba: np.ndarray, heads: list[HeadClassifier]) -> None:
    run_dir, classes = result.run_dir, competition.classes
    oof_frame = pd.DataFrame(oof, columns=classes).assign(id=train.ids, label=[classes[i] for i in train.labels])
    atomic_write_text(run_dir / "oof.csv", oof_frame.to_csv(index=False, float_format="%.6f"))
    test_frame = pd.DataFrame(test_proba, columns=classes).assign(id=test.ids)
    atomic_write_text(run_dir / "test_probabilities.csv", test_frame.to_csv(index=False, float_format="%.6f"))
    metrics = {
        "metric": result.metric, "cv_mean": result.cv_mean, "cv_std": result.cv_std,
        "fold_scores": result.fold_scores, "seconds": round(result.seconds, 1), **result.extra,
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    title = f"{competition.name}: CV {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}"
    plots.learning_curves([h.history for h in heads], run_dir / "plots" / "learning_curves.png", title)
    plots.confusion_matrix(train.labels, oof.argmax(1), classes, run_dir / "plots" / "confusion_matrix.png",
                           f"{competition.name}: out-of-fold predictions")
    log.info("run directory %s\n%s", run_dir, json.dumps(metrics, indent=1))
