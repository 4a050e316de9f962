"""Blend finished classification runs into a new run, top to bottom (``kagglekit blend``).

1. read each member run directory: its config, classes, fold assignment (``folds.json``), out-of-fold
   and test probabilities; refuse members of another competition, other classes, other training
   data or other folds (by hash and assignment): their out-of-fold rows would not be comparable;
2. keep the training rows every member scored out of fold (a fine-tuned run scores some folds only);
3. score every member and the blend there, the blend with nested CV (``learners.blending``);
4. fit the blend on all those rows, apply it to the members' test probabilities, write and validate
   the submission;
5. the new run directory explains itself: ``blend.json`` (members, method, weights), metrics, OOF and
   test probabilities, provenance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from kagglekit.competitions.contract import Competition
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.evaluation.metrics import METRICS
from kagglekit.learners.blending import BLENDS, nested_proba
from kagglekit.pipelines.classification import FOLDS_FILE
from kagglekit.pipelines.rebuild import load_run_config, run_competition
from kagglekit.runs.result import RunResult
from kagglekit.submission.writer import write_submission

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
    oof: pd.DataFrame  # indexed by training id: class probabilities and "label"
    test: pd.DataFrame  # indexed by test id: class probabilities


def read_member(run_dir: Path) -> Member:
    run_dir = Path(run_dir)
    files = ["config.yaml", "classes.json", FOLDS_FILE, "oof.csv", "test_probabilities.csv"]
    missing = [f for f in files if not (run_dir / f).is_file()]
    if missing:
        raise ConfigError(f"{run_dir}: not a finished classification run, or one made before blending existed "
                          f"(no {', '.join(missing)}); run it again to blend it")
    return Member(run_dir, load_run_config(run_dir), json.loads((run_dir / "classes.json").read_text()),
                  json.loads((run_dir / FOLDS_FILE).read_text()),
                  pd.read_csv(run_dir / "oof.csv", dtype={"id": str}).set_index("id"),
                  pd.read_csv(run_dir / "test_probabilities.csv", dtype={"id": str}).set_index("id"))


def check_comparable(members: list[Member], competition: Competition) -> None:
    """ConfigError naming the first member that differs from the first in what a blend needs alike."""
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
            raise ConfigError(f"{name} split its folds differently from {first.run_dir} (folds or seed differ): "
                              "a blend fitted on one's out-of-fold rows would be scored on the other's training "
                              "rows; run both with the same folds and seed")
        if sorted(member.test.index) != sorted(first.test.index):
            raise ConfigError(f"{name} predicted other test images than {first.run_dir}")


def run(competition: Competition, members: list[Member], method: str, run_dir: Path, data: Path) -> RunResult:
    started = time.time()
    BLENDS.get(method)  # a typo fails now
    check_comparable(members, competition)
    classes = members[0].classes
    position = {id_: k for k, id_ in enumerate(members[0].folds["ids"])}
    rows = sorted(set.intersection(*(set(m.oof.index) for m in members)), key=position.__getitem__)
    if not rows:
        raise ConfigError("the runs share no out-of-fold rows (each scored other folds): nothing to fit a blend on")
    index = {label: k for k, label in enumerate(classes)}
    labels = np.array([index[label] for label in members[0].oof.loc[rows, "label"]])
    fold_of = np.array(members[0].folds["fold_of"])[[position[i] for i in rows]]
    folds = [fold_of == f for f in np.unique(fold_of)]
    oof = [m.oof.loc[rows, classes].to_numpy(np.float64) for m in members]
    test_ids = list(members[0].test.index)
    test = [m.test.loc[test_ids, classes].to_numpy(np.float64) for m in members]
    metric = METRICS.get(competition.metric)

    member_scores = [[metric(labels[held], p[held].argmax(1)) for held in folds] for p in oof]
    oof_blend = nested_proba(method, oof, labels, fold_of, metric)
    fold_scores = [metric(labels[held], oof_blend[held].argmax(1)) for held in folds]
    for member, scores in zip(members, member_scores):
        log.info("member %s: CV %s %.4f ± %.4f", member.run_dir.name, competition.metric, np.mean(scores), np.std(scores))
    log.info("blend (%s, nested): CV %s %.4f ± %.4f on %d rows", method, competition.metric, np.mean(fold_scores),
             np.std(fold_scores), len(rows))

    blend = BLENDS.get(method)().fit(oof, labels, metric)
    test_proba = blend.predict_proba(test)
    submission = write_submission(competition.submission_frame(test_ids, test_proba.argmax(1)), run_dir / "submission.csv")
    competition.validate(submission, data).raise_if_invalid()

    weights = getattr(blend, "weights_", None)
    atomic_write_json(run_dir / "blend.json", {
        "method": method, "members": [str(m.run_dir) for m in members],
        "weights": None if weights is None else [float(w) for w in weights], "rows": len(rows)})
    atomic_write_text(run_dir / "oof.csv", pd.DataFrame(oof_blend, columns=classes).assign(
        id=rows, label=[classes[k] for k in labels]).to_csv(index=False, float_format="%.6f"))
    atomic_write_text(run_dir / "test_probabilities.csv", pd.DataFrame(test_proba, columns=classes).assign(
        id=test_ids).to_csv(index=False, float_format="%.6f"))
    result = RunResult(
        run_dir=run_dir, competition=competition.name, metric=competition.metric,
        cv_mean=float(np.mean(fold_scores)), cv_std=float(np.std(fold_scores)), fold_scores=fold_scores,
        submission=submission, seconds=time.time() - started,
        extra={"validation": f"nested: the blend fitted on the other folds' out-of-fold rows, {len(rows)} rows",
               "members": {str(m.run_dir): {"cv_mean": float(np.mean(s)), "cv_std": float(np.std(s)), "fold_scores": s}
                           for m, s in zip(members, member_scores)}},
    )
    atomic_write_json(run_dir / "metrics.json", result.metrics())
    return result
