"""Single-label image classification, top to bottom.

1. read the competition's images (unreadable training images are skipped and listed);
2. extract frozen features once per image and view (several backbones, several stages each; cached
   on disk by content), and with fine-tuning the activations at the first backbone's cut point;
3. stratified K-fold CV (duplicates grouped): per fold a head on the features (and the fine-tuned top
   blocks), trained on all train views, early-stopped on an inner split of the training fold (never on
   the fold being scored), scored on out-of-fold TTA-averaged predictions;
4. the saved fold models predict the test set (TTA-averaged), the submission is written and validated;
5. config, metrics, OOF predictions, plots and weights are saved in the run directory, with an error
   analysis (per-class precision/recall/F1, the worst out-of-fold mistakes as a table and a picture
   grid, a reliability plot).
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
from kagglekit.core.progress import Stopwatch
from kagglekit.data.images import read_rgb
from kagglekit.data.views import average_views
from kagglekit.evaluation import baseline
from kagglekit.evaluation.folds import content_groups, inner_split, stratified_folds
from kagglekit.evaluation.metrics import METRICS
from kagglekit.evaluation.reports import expected_calibration_error, per_class_table, worst_mistakes
from kagglekit.learners.devices import Devices, resolve_devices
from kagglekit.learners.features import FeatureExtractor
from kagglekit.learners.head import HeadClassifier
from kagglekit.learners.top_blocks import TopBlocksClassifier
from kagglekit.learners.usage import usage
from kagglekit.models.backbones import get_backbone
from kagglekit.models.losses import balanced_class_weights
from kagglekit.pipelines import FoldHook, hyperparameters
from kagglekit.pipelines.inputs import checked_test, usable_train
from kagglekit.runs import plots
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

log = logging.getLogger(__name__)


def run(competition: Competition, config: RunConfig, run_dir: Path, on_fold: FoldHook | None = None) -> RunResult:
    started, watch = time.time(), Stopwatch()
    data = Path(config.data)
    for name in config.backbones:
        get_backbone(name)  # a typo fails now, not after reading every image
    config.save(run_dir / RUN_FILES.config)
    devices = resolve_devices(config.device)

    train, test = read_images(competition, data, run_dir)
    groups, train_shas = content_groups(train.paths)
    folds = stratified_folds(train.labels, groups, config.folds, config.seed, competition.classes)
    write_folds(run_dir, train, folds)
    classes = competition.classes
    metric = METRICS.get(competition.metric)

    views = list(dict.fromkeys(config.train.views + config.tta))
    fit_views, tta_views = [views.index(v) for v in config.train.views], [views.index(v) for v in config.tta]
    inputs = model_inputs(config, devices, train.paths, train_shas, views, "train")
    watch.lap("read images, extract features")
    weights = None
    if config.train.class_weights:
        weights = balanced_class_weights(train.labels)

    oof = np.zeros((len(train), len(classes)), dtype=np.float32)
    fold_scores, histories, times = [], [], []
    for k, (tr, va) in enumerate(folds):
        # early stopping and LR plateaus watch an inner split of the training fold, never the scored fold
        fit, stop = inner_split(tr, train.labels, groups, config.seed + k)
        for model, x in zip(fold_models(config, devices, run_dir, k, inputs[0].shape[-1], len(classes)), inputs):
            x_fit = x[fit_views][:, fit].reshape(-1, *x.shape[2:])
            model.fit(x_fit, np.tile(train.labels[fit], len(fit_views)), x[tta_views[0], stop], train.labels[stop],
                      weights)
            histories.append(model.history)
            times.append(model.time)
            oof[va] += tta_proba(model, x[tta_views][:, va]) / len(inputs)
        fold_scores.append(metric(train.labels[va], oof[va].argmax(1)))
        log.info("fold %d/%d: %s %.4f", k + 1, len(folds), competition.metric, fold_scores[-1])
        if on_fold:
            on_fold(k, fold_scores[-1])
    atomic_write_json(run_dir / RUN_FILES.classes, classes)
    watch.lap(f"{len(folds)} folds: train and score")

    predicting = time.perf_counter()
    test_proba = predict_proba(config, devices, run_dir, test, len(classes))
    predict_seconds = time.perf_counter() - predicting
    submission = write_submission(competition.submission_frame(test.ids, test_proba.argmax(1)),
                                  run_dir / RUN_FILES.submission)
    competition.validate(submission, data).raise_if_invalid()
    watch.lap("predict, write and validate the submission")

    constant = baseline.single_label(train.labels, [va for _, va in folds], classes, metric)
    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)),
        fold_scores=[float(s) for s in fold_scores], submission=submission, seconds=time.time() - started,
        extra={"baseline": baseline.record(constant, float(np.mean(fold_scores)), competition.metric),
               "oof_score": float(metric(train.labels, oof.argmax(1))), "train_images": len(train),
               "test_images": len(test), "feature_dim": int(inputs[0].shape[-1]),
               "epochs": [len(h.get("loss", [])) for h in histories],
               "timing": usage(times, len(test) * len(config.tta), predict_seconds), "stages": watch.laps},
    )
    write_outputs(result, competition, train, test, oof, test_proba, histories)
    return result


def model_inputs(config: RunConfig, devices: Devices, paths: list[Path], shas: list[str], views: list[str],
                 desc: str) -> list[np.ndarray]:
    """What each fold's models read, per view: frozen features, then (fine-tuning) cut activations."""
    return [np.concatenate([e.transform(paths, shas, views, desc) for e in group], axis=-1)
            for group in input_extractors(config, devices)]


def input_extractors(config: RunConfig, devices: Devices) -> list[list[FeatureExtractor]]:
    """Per model input (the order of ``model_inputs``), the extractors whose outputs are concatenated:
    every backbone's frozen features, then (fine-tuning) the first backbone's cut activations."""
    params = hyperparameters.extractor(config)
    features = [FeatureExtractor(name, config.image_size,
                                 taps=list(get_backbone(name).taps) if config.train.multiscale else None,
                                 devices=devices, **params)
                for name in config.backbones]
    if not config.train.top_blocks:
        return [features]
    backbone = config.backbones[0]
    cut = get_backbone(backbone).finetune_cut
    if cut is None:
        raise ConfigError(f"backbone {backbone} has no fine-tuning cut point; list another first or set train.top_blocks: false")
    return [features, [FeatureExtractor(backbone, config.image_size, taps=[cut], pool=False, devices=devices,
                                        **params)]]


def feature_width(group: list[FeatureExtractor]) -> int:
    """How many features a group of extractors gives per image (what the fold heads read)."""
    return sum(int(e.model.output.shape[-1]) for e in group)


def fold_models(config: RunConfig, devices: Devices, run_dir: Path, fold: int, feature_dim: int,
                n_classes: int) -> list:
    """The models of one fold, in the order of ``model_inputs``; saved under ``folds/fold<k>``."""
    workdir, seed = run_dir / RUN_FILES.folds / f"fold{fold}", config.seed + fold
    models = [HeadClassifier(feature_dim, n_classes, workdir, seed=seed, devices=devices,
                             **hyperparameters.head(config.train))]
    if config.train.top_blocks:
        models.append(TopBlocksClassifier(config.backbones[0], config.image_size, n_classes, workdir, seed=seed,
                                          devices=devices, **hyperparameters.top_blocks(config)))
    return models


def predict_proba(config: RunConfig, devices: Devices, run_dir: Path, images: ImageTable,
                  n_classes: int) -> np.ndarray:
    """Class probabilities from a finished run's saved fold models: fold ensemble x models x TTA views.

    The run predicts its own test set through this function, and so does ``kagglekit predict`` (and the
    generated notebooks): one path, one submission.
    """
    shas = [sha256_file(p) for p in images.paths]
    inputs = model_inputs(config, devices, images.paths, shas, config.tta, "predict")
    return ensemble_proba(load_fold_models(config, devices, run_dir, inputs[0].shape[-1], n_classes), inputs)


def load_fold_models(config: RunConfig, devices: Devices, run_dir: Path, feature_dim: int,
                     n_classes: int) -> list[list]:
    """Every fold's saved models, loaded: ``[fold][model]``."""
    return [[m.load() for m in fold_models(config, devices, run_dir, fold, feature_dim, n_classes)]
            for fold in range(config.folds)]


def ensemble_proba(folds: list[list], inputs: list[np.ndarray]) -> np.ndarray:
    """The mean over folds of the mean over each fold's models of its TTA-averaged probabilities."""
    return np.mean([np.mean([tta_proba(m, x) for m, x in zip(models, inputs)], axis=0) for models in folds], axis=0)


def predict(competition: Competition, config: RunConfig, run_dir: Path, data: Path) -> pd.DataFrame:
    """The submission of a finished run, recomputed from its saved fold models."""
    test = checked_test(competition.load_test(data))
    proba = predict_proba(config, resolve_devices(config.device), run_dir, test, len(competition.classes))
    return competition.submission_frame(test.ids, proba.argmax(1))


def tta_proba(model, x_views: np.ndarray) -> np.ndarray:
    """A model's probabilities averaged over views; ``x_views`` is (views, images, ...)."""
    return average_views([model.predict_proba(x) for x in x_views])


def read_images(competition: Competition, data: Path, run_dir: Path) -> tuple[ImageTable, ImageTable]:
    """Load both splits; skip (and list) unreadable training images, refuse unreadable test images."""
    train, skipped = usable_train(competition.load_train(data))
    test = competition.load_test(data)
    atomic_write_json(run_dir / RUN_FILES.data_report, {
        "train_images": len(train), "test_images": len(test),
        "skipped_unreadable_train": skipped,
        "class_counts": dict(zip(competition.classes, np.bincount(train.labels, minlength=len(competition.classes)).tolist())),
    })
    return train, checked_test(test)


def write_folds(run_dir: Path, train: ImageTable, folds: list) -> None:
    """Which fold holds each training image (-1: none, e.g. a segmentation run's training part of its
    hold-out split), and a hash of the labelled training set (classes, 0/1 label rows, or else the label
    maps' bytes): what a blend of runs checks before it combines their out-of-fold predictions
    (``pipelines.blend``), and which images an attack on a fold's models may use."""
    import hashlib

    fold_of = np.full(len(train), -1)
    for k, (_, va) in enumerate(folds):
        fold_of[va] = k
    if train.labels is None:  # segmentation: the masks are the labels
        rows = (sha256_file(mask) for mask in train.masks)
    else:
        rows = (" ".join(str(v) for v in np.atleast_1d(label)) for label in train.labels)  # a class, or a 0/1 row
    digest = hashlib.sha256("\n".join(f"{i}\t{label}" for i, label in zip(train.ids, rows)).encode())
    atomic_write_json(run_dir / RUN_FILES.folds_file, {"train_sha256": digest.hexdigest(), "ids": train.ids,
                                             "fold_of": fold_of.tolist()})


def write_outputs(result: RunResult, competition: Competition, train: ImageTable, test: ImageTable,
                  oof: np.ndarray, test_proba: np.ndarray, histories: list[dict], rows: np.ndarray | None = None) -> None:
    """Everything that explains a run; ``rows`` are the training images with out-of-fold predictions
    (all of them unless only some folds were scored)."""
    run_dir, classes = result.run_dir, competition.classes
    rows = np.arange(len(train)) if rows is None else np.sort(rows)
    labels, oof = train.labels[rows], oof[rows]
    oof_frame = pd.DataFrame(oof, columns=classes).assign(id=[train.ids[i] for i in rows],
                                                          label=[classes[i] for i in labels])
    atomic_write_text(run_dir / RUN_FILES.oof, oof_frame.to_csv(index=False, float_format="%.6f"))
    test_frame = pd.DataFrame(test_proba, columns=classes).assign(id=test.ids)
    atomic_write_text(run_dir / RUN_FILES.test_probabilities, test_frame.to_csv(index=False, float_format="%.6f"))
    metrics = result.metrics()
    atomic_write_json(run_dir / RUN_FILES.metrics, metrics)
    title = f"{competition.name}: CV {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}"
    plots.learning_curves(histories, run_dir / RUN_FILES.learning_curves, title)
    plots.confusion_matrix(labels, oof.argmax(1), classes, run_dir / RUN_FILES.confusion_matrix,
                           f"{competition.name}: out-of-fold predictions")
    write_error_analysis(run_dir, competition.name, classes, [train.ids[i] for i in rows],
                         [train.paths[i] for i in rows], labels, oof)
    log.info("run directory %s\n%s", run_dir, json.dumps(metrics, indent=1))


def write_error_analysis(run_dir: Path, name: str, classes: list[str], ids: list[str], paths: list[Path],
                         labels: np.ndarray, oof: np.ndarray, shown: int = 16) -> None:
    """Where the model goes wrong, out of fold: ``per_class.csv`` (precision, recall, F1, what each
    class is most often taken for), ``mistakes.csv`` (every mistake, worst first: the lowest probability
    of the true class), ``plots/worst_mistakes.png`` (the first ``shown`` of them) and
    ``plots/reliability.png`` (calibration)."""
    predicted = oof.argmax(1)
    table = per_class_table(labels, predicted, classes)
    atomic_write_text(run_dir / RUN_FILES.per_class, table.to_csv(index=False, float_format="%.4f"))
    worst = worst_mistakes(labels, oof, len(labels))
    rows = [{"id": ids[i], "image": str(paths[i]), "true": classes[labels[i]], "predicted": classes[predicted[i]],
             "p_true": float(oof[i, labels[i]]), "p_predicted": float(oof[i, predicted[i]])} for i in worst]
    columns = ["id", "image", "true", "predicted", "p_true", "p_predicted"]
    atomic_write_text(run_dir / RUN_FILES.mistakes,
                      pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format="%.4f"))
    if rows:
        plots.image_grid([thumbnail(paths[i]) for i in worst[:shown]],
                         [f"{r['id']}\ntrue: {r['true']} ({r['p_true']:.2f})\npredicted: {r['predicted']} "
                          f"({r['p_predicted']:.2f})" for r in rows[:shown]],
                         run_dir / RUN_FILES.worst_mistakes,
                         f"{name}: the {min(shown, len(rows))} worst of {len(rows)} out-of-fold mistakes "
                         "(probability in brackets)")
    correct, confidence = predicted == labels, oof.max(1)
    ece = expected_calibration_error(correct, confidence)
    plots.reliability(correct, confidence, run_dir / RUN_FILES.reliability,
                      f"{name}: calibration out of fold (ECE {ece:.3f})")
    log.info("error analysis: %d out-of-fold mistakes in %s; weakest classes by F1: %s; ECE %.3f", len(rows),
             run_dir / RUN_FILES.mistakes, ", ".join(table.nsmallest(3, "f1")["class"]), ece)


def thumbnail(path: Path, side: int = 256) -> np.ndarray:
    """The image at most ``side`` pixels on its longer side (a grid of full photos would be huge)."""
    from PIL import Image

    image = Image.fromarray(read_rgb(path))
    image.thumbnail((side, side))
    return np.asarray(image)
