"""Blend finished classification runs (single- or multi-label) into a new run, top to bottom (``kagglekit blend``).

1. read each member run directory: its config, classes, fold assignment (``folds.json``), out-of-fold
   and test probabilities; refuse members of another competition, other classes, other training
   data or other folds (by hash and assignment): their out-of-fold rows would not be comparable;
2. keep the training rows every member scored out of fold (a fine-tuned run scores some folds only);
3. score every member and the blend there with the competition's metric, the blend with nested CV
   (``learners.blending``); a multi-label blend is fitted per class, and its labels come from per-class
   thresholds tuned, fold by fold, on rows other than the scored fold's;
4. fit the blend on all those rows, apply it to the members' test probabilities (multi-label: at
   thresholds tuned on the blend's out-of-fold probabilities), write and validate the submission;
5. the new run directory explains itself: ``blend.json`` (members, method, weights), metrics, OOF and
   test probabilities, provenance; with the members' ``folds.json`` it holds what a member needs, so a
   blend can be blended again (read with its first member's config: ``member_config``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.core.memory import peak_memory_gib
from kagglekit.evaluation import baseline
from kagglekit.evaluation.metrics import METRICS
from kagglekit.learners.blending import BLENDS, make_blend, nested_multilabel, nested_proba
from kagglekit.learners.thresholds import ThresholdTuner
from kagglekit.pipelines import multilabel_classification
from kagglekit.pipelines.rebuild import load_run_config, run_competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission
from kagglekit.tasks import TASKS

log = logging.getLogger(__name__)


class BlendConfig(BaseModel):
    """What a blend run is: its members and method (what ``new_run_dir`` and the ledger record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    competition: str
    members: list[str]
    method: str
    output_dir: str
    data: str

    @property
    def backbones(self) -> list[str]:
        return ["blend"]

    def hash(self) -> str:
        payload = json.dumps({"members": sorted(Path(m).name for m in self.members), "method": self.method})
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class Member:
    run_dir: Path
    config: RunConfig
    classes: list[str]
    folds: dict
    oof: pd.DataFrame  # indexed by training id: class probabilities and "label" (multi-label: "true_<class>" 0/1)
    test: pd.DataFrame  # indexed by test id: class probabilities

    @property
    def test_ids(self) -> list[str]:
        return list(self.test.index)


def require_blend_files(run_dir: Path, files, kind: str, covered: str) -> None:
    """ConfigError naming the files a blend reads that ``run_dir`` lacks (an unfinished run of ``kind``, or one
    made before blending ``covered`` what it needs)."""
    missing = [f for f in files if not (run_dir / f).is_file()]
    if missing:
        raise ConfigError(f"{run_dir}: not a finished {kind} run, or one made before blending covered {covered} "
                          f"(no {', '.join(missing)}); run it again to blend it")


def member_config(run_dir: Path) -> RunConfig:
    """The run config a blend reads a member with (competition, data, thresholds, consistency): the run's own,
    or for a blend of runs (a member too: it keeps what a run of its task keeps for blending) its first member's."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILES.config).is_file() and (run_dir / RUN_FILES.blend_config).is_file():
        return member_config(Path(json.loads((run_dir / RUN_FILES.blend_config).read_text())["members"][0]))
    return load_run_config(run_dir)


def read_member(run_dir: Path) -> Member:
    run_dir = Path(run_dir)
    require_blend_files(run_dir, [RUN_FILES.classes, RUN_FILES.folds_file, RUN_FILES.oof, RUN_FILES.test_probabilities],
                        "classification", "it")
    return Member(run_dir, member_config(run_dir), json.loads((run_dir / RUN_FILES.classes).read_text()),
                  json.loads((run_dir / RUN_FILES.folds_file).read_text()),
                  pd.read_csv(run_dir / RUN_FILES.oof, dtype={"id": str}).set_index("id"),
                  pd.read_csv(run_dir / RUN_FILES.test_probabilities, dtype={"id": str}).set_index("id"))


def check_comparable(members: list[Member], competition: Competition) -> None:
    """ConfigError naming the first member that differs from the first in what a blend needs alike
    (members of any blendable task: ``run_dir``, ``classes``, ``folds`` and ``test_ids``)."""
    first = members[0]
    for member in members[1:]:
        name = member.run_dir
        if run_competition(member.run_dir).name != competition.name:
            raise ConfigError(f"{name}: a run of {run_competition(member.run_dir).name}, not {competition.name}")
        if member.classes != first.classes:
            raise ConfigError(f"{name}: its classes differ from {first.run_dir}'s")
        if member.folds["train_sha256"] != first.folds["train_sha256"]:
            raise ConfigError(f"{name} was trained on other data than {first.run_dir} (the labelled training "
                              "images differ): their out-of-fold predictions cannot be blended")
        if member.folds["ids"] != first.folds["ids"] or member.folds["fold_of"] != first.folds["fold_of"]:
            raise ConfigError(f"{name} split its folds differently from {first.run_dir} (folds, hold-out or seed "
                              "differ): a blend fitted on one's out-of-fold rows would be scored on the other's "
                              "training rows; run both with the same folds and seed")
        if sorted(member.test_ids) != sorted(first.test_ids):
            raise ConfigError(f"{name} predicted other test images than {first.run_dir}")


@dataclass
class Blended:
    """What a blend gives, whatever the task: per-fold scores of each member and of the blend, the
    blend's out-of-fold and test probabilities, the test predictions and the fitted blend."""

    member_scores: list[list[float]]
    fold_scores: list[float]
    oof: np.ndarray
    test: np.ndarray
    predicted: np.ndarray  # test class indices, or 0/1 label rows
    blend: object
    tuner: ThresholdTuner | None = None
    oof_labels: np.ndarray | None = None  # multi-label: the blend's nested 0/1 labels of the OOF rows
    member_labels: list[np.ndarray] | None = None  # and each member's, at its own nested thresholds


def run(competition: Competition, members: list[Member], method: str, run_dir: Path, data: Path) -> RunResult:
    started = time.time()
    BLENDS.get(method)  # a typo fails now
    task = TASKS.get(competition.task)
    if task.blend != __name__:
        mine = [name for name, spec in TASKS.items() if spec.blend == __name__]
        raise ConfigError(f"{__name__} blends {' and '.join(mine)} runs, not {task.name} runs ({task.blend} does)")
    check_comparable(members, competition)
    classes = members[0].classes
    position = {id_: k for k, id_ in enumerate(members[0].folds["ids"])}
    rows = sorted(set.intersection(*(set(m.oof.index) for m in members)), key=position.__getitem__)
    if not rows:
        raise ConfigError("the runs share no out-of-fold rows (each scored other folds): nothing to fit a blend on")
    fold_of = np.array(members[0].folds["fold_of"])[[position[i] for i in rows]]
    oof = [m.oof.loc[rows, classes].to_numpy(np.float64) for m in members]
    test_ids = list(members[0].test.index)
    test = [m.test.loc[test_ids, classes].to_numpy(np.float64) for m in members]
    folds = [np.flatnonzero(fold_of == f) for f in np.unique(fold_of)]
    if task.labels == "single":
        index = {label: k for k, label in enumerate(classes)}
        labels = np.array([index[label] for label in members[0].oof.loc[rows, "label"]])
        blended = single_label(competition, method, oof, test, labels, fold_of)
        truth = pd.DataFrame({"label": [classes[k] for k in labels]})
        constant = baseline.single_label(labels, folds, classes, METRICS.get(competition.metric))
    else:
        truth = members[0].oof.loc[rows, [f"true_{c}" for c in classes]].reset_index(drop=True)
        blended = multi_label(competition, multilabel_classification.label_tuner(competition, members[0].config.multilabel),
                              method, oof, test, truth.to_numpy(np.int64), fold_of)
        constant = baseline.multi_label(truth.to_numpy(np.int64), folds, classes,
                                        multilabel_classification.label_metric(competition))
    write_probabilities(run_dir, classes, blended, rows, truth, test_ids)
    return write_blend_run(run_dir, competition, data, members, method, weights_of(blended.blend),
                           competition.submission_frame(test_ids, blended.predicted), blended.member_scores,
                           blended.fold_scores, len(rows), started,
                           f"nested: the blend fitted on the other folds' out-of-fold rows, {len(rows)} rows",
                           {"baseline": baseline.record(constant, float(np.mean(blended.fold_scores)),
                                                        competition.metric)})


def write_probabilities(run_dir: Path, classes: list[str], blended: Blended, rows: list[str], truth: pd.DataFrame,
                        test_ids: list[str], **post) -> None:
    """The blend's classes, OOF (beside ``truth``) and test probabilities, and for a multi-label blend its
    thresholds (``postprocess.json``, with ``post``): what a run of its task keeps."""
    atomic_write_json(run_dir / RUN_FILES.classes, classes)
    if blended.tuner is not None:
        multilabel_classification.write_postprocess(run_dir, blended.tuner, blended.tuner.top1_fallback, **post)
    atomic_write_text(run_dir / RUN_FILES.oof, pd.DataFrame(blended.oof, columns=classes).assign(id=rows).join(truth)
                      .to_csv(index=False, float_format="%.6f"))
    atomic_write_text(run_dir / RUN_FILES.test_probabilities, pd.DataFrame(blended.test, columns=classes).assign(
        id=test_ids).to_csv(index=False, float_format="%.6f"))


def weights_of(blend) -> list | None:
    """A fitted blend's member weights as JSON (per class for a multi-label blend; None for stacking)."""
    weights = getattr(blend, "weights_", None)
    return None if weights is None else np.asarray(weights, dtype=float).tolist()


def write_blend_run(run_dir: Path, competition: Competition, data: Path, members: list, method: str, weights,
                    frame: pd.DataFrame, member_scores: list[list[float]], fold_scores: list[float], rows: int,
                    started: float, validation: str, extra: dict | None = None,
                    member_extra: list[dict] | None = None) -> RunResult:
    """What a blend of any task ends with: its validated submission (from ``frame``), the log lines,
    ``blend.json`` (``weights``: JSON), its members' ``folds.json``, ``metrics.json`` (with ``extra``,
    ``member_extra`` beside each member's scores, and the peak memory in ``timing`` as a run keeps it) and
    its RunResult."""
    submission = write_submission(frame, run_dir / RUN_FILES.submission)
    competition.validate(submission, data).raise_if_invalid()
    for member, scores in zip(members, member_scores):
        log.info("member %s: CV %s %.4f ± %.4f", member.run_dir.name, competition.metric, np.mean(scores), np.std(scores))
    log.info("blend (%s, %s): CV %s %.4f ± %.4f", method, validation, competition.metric,
             np.mean(fold_scores), np.std(fold_scores))
    atomic_write_json(run_dir / RUN_FILES.blend, {
        "method": method, "members": [str(m.run_dir) for m in members], "weights": weights, "rows": rows})
    atomic_write_json(run_dir / RUN_FILES.folds_file, members[0].folds)  # alike in every member; blends of blends check
    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)), fold_scores=fold_scores,
        submission=submission, seconds=time.time() - started,
        extra={"validation": validation, **(extra or {}), "timing": peak_memory_gib(),
               "members": {str(m.run_dir): {"cv_mean": float(np.mean(s)), "cv_std": float(np.std(s)), "fold_scores": s,
                                            **more}
                           for m, s, more in zip(members, member_scores, member_extra or [{}] * len(members))}},
    )
    atomic_write_json(run_dir / RUN_FILES.metrics, result.metrics())
    return result


def single_label(competition: Competition, method: str, oof: list[np.ndarray], test: list[np.ndarray],
                 labels: np.ndarray, fold_of: np.ndarray) -> Blended:
    """Members and blend scored by the metric of each fold's argmax; the blend fitted on every row."""
    metric = METRICS.get(competition.metric)
    folds = [fold_of == f for f in np.unique(fold_of)]

    def score(y, proba):
        return metric(y, proba.argmax(1))

    member_scores = [[score(labels[held], p[held]) for held in folds] for p in oof]
    oof_blend = nested_proba(method, oof, labels, fold_of, score)
    blend = make_blend(method).fit(oof, labels, score)
    test_proba = blend.predict_proba(test)
    return Blended(member_scores, [score(labels[held], oof_blend[held]) for held in folds], oof_blend, test_proba,
                   test_proba.argmax(1), blend)


def multi_label(competition: Competition, tuner: ThresholdTuner, method: str, oof: list[np.ndarray],
                test: list[np.ndarray], labels: np.ndarray, fold_of: np.ndarray) -> Blended:
    """Members and blend scored by the competition's metric on label cells, each fold labelled at
    thresholds tuned without it; the blend fitted per class on every row, the test labelled at thresholds
    tuned on the blend's out-of-fold probabilities."""
    metric = multilabel_classification.label_metric(competition)

    def score(predicted: np.ndarray, held: np.ndarray) -> float:
        return metric(labels[held], predicted[held])

    return label_blend(method, tuner, oof, test, labels, fold_of, score)


def label_blend(method: str, tuner: ThresholdTuner, oof: list[np.ndarray], test: list[np.ndarray], labels: np.ndarray,
                fold_of: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float]) -> Blended:
    """A multi-label blend scored fold by fold by ``score(0/1 label rows, the fold's rows as a bool mask)``:
    each member at its own nested thresholds, the blend nested (``nested_multilabel``); fitted per class
    on every row, the test labelled at thresholds tuned on the blend's out-of-fold probabilities."""
    folds = [fold_of == f for f in np.unique(fold_of)]
    index_folds = [(np.flatnonzero(~held), np.flatnonzero(held)) for held in folds]
    member_labels = [multilabel_classification.nested_labels(p, labels, index_folds, tuner) for p in oof]
    member_scores = [[score(predicted, held) for held in folds] for predicted in member_labels]
    oof_blend, oof_labels = nested_multilabel(method, oof, labels, fold_of, tuner)
    blend = make_blend(method, multilabel=True).fit(oof, labels)
    tuner = tuner.clone().fit(oof_blend, labels)
    test_proba = blend.predict_proba(test)
    return Blended(member_scores, [score(oof_labels, held) for held in folds], oof_blend, test_proba,
                   tuner.predict(test_proba), blend, tuner, oof_labels, member_labels)
