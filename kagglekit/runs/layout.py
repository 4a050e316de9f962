"""The run directory's schema: every file and folder a run (or a blend of runs) holds, who writes and reads it.

A run directory (``<output>/<competition>/<time>-<config hash>/``) is the interface between the pipelines
that write it and everything that reads it (predict, serve, blend, explain, attack, notebooks, compare,
tune, scores): ``RUN_FILES`` names each of its entries, and nothing else in kagglekit spells one
(``tests/runs/test_layout.py`` greps for the names). ``RUN_FILES.entries()`` lists them with a line on
what each holds, its writers and readers (module names under ``kagglekit.``) and the kinds of run that
always hold it (``TRAINED``: a run of a pipeline; ``BLEND``: ``kagglekit blend``'s).

The run records the layout's ``FORMAT_VERSION`` in ``provenance.json``, written when the directory is made;
a run without one predates the schema and is read as version 1 (the same files). A reader refuses a run of
a newer format than its own (``check_format``) rather than misread it.

Not named here, on purpose:

- the files inside a learner's own working folder (``folds/fold<k>/``, ``folds/full/``, ``segmenter/``,
  ``segmenter/fold<k>/``): weights (``<stage>.weights.h5``, ``finetuned.weights.h5``,
  ``segmenter.weights.h5``), Keras' CSV logs, ``history.json``, the epoch checkpoints
  (``learners/checkpoints.py``). They are each learner's private format, written and read by the learner
  alone through ``fit``/``load``; the learners sit beside ``runs`` in the layers and cannot import it, and
  a reader of the run never opens them (the one exception, ``FOLD_OOF``, is the fine-tuning pipeline's own
  file in the folder, so it is named here).
- the score ledger (``runs/ledger.py``): one SQLite file per user, outside every run directory; a ledger
  row points at its run by ``run_dir`` and at its submission by the file's sha256.
- what verbs write elsewhere (``predict --out``, ``explain``/``attack`` outputs, ``export``, a compare or
  tune study folder): they are not part of a run.

It imports only ``kagglekit.core``: every layer that writes or reads a run (the pipelines and above) can use
it, and it could move down to ``core`` unchanged if a layer below ``runs`` ever wrote a run file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from kagglekit.core.errors import DataError

#: The layout written by this code; 1 is every run made before runs recorded one.
FORMAT_VERSION = 2
#: The key of ``provenance.json`` that holds it.
FORMAT_KEY = "format_version"

TRAINED = "trained"  # a run of a pipeline (kagglekit run, compare's cells, tune's trials)
BLEND = "blend"  # a blend of runs (kagglekit blend)


@dataclass(frozen=True)
class RunFile:
    """One entry of a run directory: its path relative to the run, and what the schema says of it."""

    name: str
    description: str
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    always: tuple[str, ...] = ()  # the kinds of run (TRAINED, BLEND) that always hold it; others may
    folder: bool = False  # a folder whose contents belong to its writers (learners' working folders)
    attribute: str = ""  # the attribute of RUN_FILES that names it


def _entry(name: str, description: str, writers: str, readers: str = "", always: tuple[str, ...] = (),
           folder: bool = False):
    """A field of RunLayout: its value is the name; the rest rides in the field's metadata."""
    return field(default=name, metadata={"entry": (description, tuple(writers.split()), tuple(readers.split()),
                                                   always, folder)})


PLOTS = "plots"


@dataclass(frozen=True)
class RunLayout:
    """The names of a run directory's entries (``run_dir / RUN_FILES.<entry>``); ``entries()`` describes them."""

    # -- every run and blend ------------------------------------------------------------------------------
    provenance: str = _entry(
        "provenance.json", "which kagglekit made the run (version, source digest) and the run's format_version",
        "runs.provenance", "runs.layout notebook.generate serving.predictor", always=(TRAINED, BLEND))
    metrics: str = _entry(
        "metrics.json", "CV (metric, mean, std, fold scores), seconds, baseline, timing, time budget; a blend's "
        "members' scores", "pipelines.classification pipelines.segmentation pipelines.multilabel_classification "
        "pipelines.blend", "serving.predictor notebook.report notebook.generate commands.publish "
        "experiments.cells experiments.tune experiments.compare api", always=(TRAINED, BLEND))
    submission: str = _entry(
        "submission.csv", "the validated submission, as uploaded", "pipelines.classification pipelines.finetuning "
        "pipelines.multilabel_classification pipelines.segmentation pipelines.multilabel_segmentation "
        "pipelines.blend", "notebook.report notebook.generate notebook.publish notebook.template commands.scores api",
        always=(TRAINED, BLEND))
    # -- a trained run ----------------------------------------------------------------------------------------
    config: str = _entry(
        "config.yaml", "the resolved run config, after the time budget's plan (what the run computed)",
        "pipelines.classification pipelines.finetuning pipelines.multilabel_classification pipelines.segmentation "
        "pipelines.multilabel_segmentation pipelines.budgeting", "pipelines.rebuild pipelines.blend "
        "pipelines.finetuning pipelines.segmentation pipelines.multilabel_segmentation notebook.report "
        "notebook.generate notebook.publish notebook.bundle usecases.run", always=(TRAINED,))
    competition: str = _entry(
        "competition.yaml", "a copy of the competition's YAML file, for a competition passed by path",
        "usecases.run usecases.blend", "pipelines.rebuild usecases.blend")
    time_plan: str = _entry(
        "time_plan.json",
        "the time budget's plan (timings, epochs, scored folds, what measured folds changed); a resumed run reuses it",
        "pipelines.budgeting", "pipelines.budgeting")
    data_report: str = _entry(
        "data_report.json", "the images read, skipped and held out (valid_ids), classes and counts",
        "pipelines.classification pipelines.multilabel_classification pipelines.segmentation",
        "notebook.report notebook.generate inspection.adversarial", always=(TRAINED,))
    folds_file: str = _entry(
        "folds.json", "the folds (train ids' digest, each image's fold): blends check their members share them",
        "pipelines.classification pipelines.blend", "pipelines.blend pipelines.blend_segmentation "
        "inspection.adversarial", always=(TRAINED,))
    classes: str = _entry(
        "classes.json", "the class names, in the order of the probability columns",
        "pipelines.classification pipelines.finetuning pipelines.multilabel_classification pipelines.blend",
        "pipelines.blend pipelines.differentiable serving.predictor")
    oof: str = _entry(
        "oof.csv", "out-of-fold class probabilities of the scored rows, beside the truth",
        "pipelines.classification pipelines.multilabel_classification pipelines.blend", "pipelines.blend")
    test_probabilities: str = _entry(
        "test_probabilities.csv", "the test images' class probabilities",
        "pipelines.classification pipelines.multilabel_classification pipelines.blend", "pipelines.blend")
    postprocess: str = _entry(
        "postprocess.json", "a multi-label run's thresholds, top-1 fallback and mask consistency",
        "pipelines.multilabel_classification", "pipelines.multilabel_classification "
        "pipelines.blend_multilabel_segmentation")
    per_class: str = _entry(
        "per_class.csv", "precision, recall, F1 and support per class, out of fold", "pipelines.classification")
    mistakes: str = _entry(
        "mistakes.csv", "the out-of-fold mistakes, most confident first", "pipelines.classification",
        "commands.explain")
    holdout_maps: str = _entry(
        "holdout_maps.npz", "a segmentation run's class-probability maps of its hold-out images "
        "(runs/probability_maps.py)", "pipelines.segmentation pipelines.blend_segmentation",
        "pipelines.blend_segmentation")
    oof_maps: str = _entry(
        "oof_maps.npz", "a PASCAL VOC run's maps of every scored fold's images, each by its fold's segmenter",
        "pipelines.multilabel_segmentation pipelines.blend_multilabel_segmentation",
        "pipelines.blend_multilabel_segmentation")
    test_maps: str = _entry(
        "test_maps.npz", "a segmentation run's maps of the test images", "pipelines.segmentation "
        "pipelines.multilabel_segmentation pipelines.blend_segmentation pipelines.blend_multilabel_segmentation",
        "pipelines.blend_segmentation pipelines.blend_multilabel_segmentation")
    folds: str = _entry(
        "folds", "one learner's working folder per fold (fold<k>/) and for the refit (full/): its private files",
        "pipelines.classification pipelines.finetuning pipelines.multilabel_classification",
        "pipelines.classification pipelines.finetuning pipelines.multilabel_classification", folder=True)
    fold_oof: str = _entry(
        "oof.npy", "in a fine-tuned run's folds/fold<k>/: the fold's out-of-fold probabilities, so a resumed run "
        "skips the fold", "pipelines.finetuning", "pipelines.finetuning")
    segmenter: str = _entry(
        "segmenter", "the segmenter's working folder (one per fold, fold<k>/, for PASCAL VOC): its private files",
        "pipelines.segmentation pipelines.multilabel_segmentation", "pipelines.segmentation "
        "pipelines.multilabel_segmentation inspection.adversarial serving.predictor", folder=True)
    plots: str = _entry(
        PLOTS, "the run's plots, as PNG files (written as the entries below)", "", "notebook.report",
        always=(TRAINED,))
    learning_curves: str = _entry(
        f"{PLOTS}/learning_curves.png", "train and valid loss (and accuracy) per epoch, one line per fold",
        "pipelines.classification pipelines.multilabel_classification pipelines.segmentation",
        always=(TRAINED,))
    classifier_learning_curves: str = _entry(
        f"{PLOTS}/classifier_learning_curves.png", "a PASCAL VOC run's image-label heads' learning curves",
        "pipelines.multilabel_segmentation")
    confusion_matrix: str = _entry(
        f"{PLOTS}/confusion_matrix.png", "the out-of-fold confusion matrix", "pipelines.classification")
    worst_mistakes: str = _entry(
        f"{PLOTS}/worst_mistakes.png", "the most confident out-of-fold mistakes", "pipelines.classification")
    reliability: str = _entry(
        f"{PLOTS}/reliability.png", "calibration: accuracy against confidence", "pipelines.classification")
    masks: str = _entry(
        f"{PLOTS}/masks.png", "a few scored images with their true and predicted masks", "pipelines.segmentation")
    # -- a blend of runs ------------------------------------------------------------------------------------
    blend_config: str = _entry(
        "blend_config.json", "what makes a directory a blend: its members, method and competition",
        "usecases.blend", "pipelines.rebuild pipelines.blend", always=(BLEND,))
    blend: str = _entry(
        "blend.json", "the fitted blend: method, members, weights, rows", "pipelines.blend", always=(BLEND,))
    # -- after the run ----------------------------------------------------------------------------------------
    publish: str = _entry(
        "publish.json", "the run's notebook on Kaggle: dataset, kernel, versions, status (kagglekit publish); it "
        "describes the bundle's upload, so a bundle never copies it",
        "notebook.publish", "notebook.publish notebook.bundle commands.publish")

    def entries(self) -> tuple[RunFile, ...]:
        """Every entry, with its description, writers, readers and kinds of run that always hold it."""
        return tuple(RunFile(getattr(self, f.name), *f.metadata["entry"], attribute=f.name) for f in fields(self))


RUN_FILES = RunLayout()


def format_version(run_dir: Path) -> int:
    """The format a run directory was written in: its ``provenance.json``'s, else 1 (a run older than the
    schema, or one without provenance)."""
    path = Path(run_dir) / RUN_FILES.provenance
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get(FORMAT_KEY, 1)
    except FileNotFoundError:
        return 1
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"{path}: cannot be read as a run's provenance ({exc})") from exc
    if not isinstance(recorded, int) or recorded < 1:
        raise DataError(f"{path}: {FORMAT_KEY} {recorded!r} is not a format version (a whole number from 1)")
    return recorded


def check_format(run_dir: Path) -> int:
    """The run's format version; a DataError if this kagglekit is older than the code that wrote the run."""
    version = format_version(run_dir)
    if version > FORMAT_VERSION:
        raise DataError(f"{Path(run_dir) / RUN_FILES.provenance}: the run directory has format {version}, this "
                        f"kagglekit reads up to {FORMAT_VERSION}; upgrade kagglekit to read it")
    return version
