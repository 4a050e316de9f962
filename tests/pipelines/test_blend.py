"""Blending runs: the fitted methods, their nested CV, and ``kagglekit blend`` on two real tiny runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import BlendSpy, assert_label_blends_nested, finished_runs, row_keys

from kagglekit.cli import main as run_cli
from kagglekit.competitions.discovery import get_competition
from kagglekit.evaluation.metrics import METRICS, accuracy
from kagglekit.learners.blending import BLENDS, HillClimbBlend, nested_proba


def top_accuracy(labels, proba) -> float:
    return accuracy(labels, proba.argmax(1))


def noisy_members(rng, labels, noise: list[float], n_classes: int = 4) -> list[np.ndarray]:
    """Probabilities that know the label, each run with its own amount of independent noise."""
    members = []
    for level in noise:
        logits = rng.normal(0, level, (len(labels), n_classes))
        logits[np.arange(len(labels)), labels] += 1.0
        members.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    return members


def test_hill_climbing_weights_the_better_run_and_never_trails_the_best_where_fitted():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    members = noisy_members(rng, labels, [0.8, 2.5, 0.9])
    blend = HillClimbBlend().fit(members, labels, top_accuracy)
    assert blend.weights_.sum() == pytest.approx(1) and blend.weights_[1] < blend.weights_[0]
    fitted = accuracy(labels, blend.predict_proba(members).argmax(1))
    assert fitted >= max(accuracy(labels, m.argmax(1)) for m in members)


def test_nested_cv_predicts_each_fold_with_a_blend_that_never_saw_it(monkeypatch):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 400)
    members = noisy_members(rng, labels, [1.0, 1.0])
    fold_of = np.arange(400) % 4
    row_of = dict(zip(row_keys(members), range(400)))
    seen = []  # per fitted blend: (the rows it was fitted on, the rows it then predicted)

    class Spy(HillClimbBlend):
        def fit(self, members, labels, score):
            seen.append([{row_of[k] for k in row_keys(members)}])
            return super().fit(members, labels, score)

        def predict_proba(self, members):
            seen[-1].append({row_of[k] for k in row_keys(members)})
            return super().predict_proba(members)

    with monkeypatch.context() as patched:
        patched.setattr(BLENDS, "get", lambda name: Spy)
        proba = nested_proba("hill", members, labels, fold_of, top_accuracy)
    assert proba.shape == members[0].shape and len(seen) == 4
    for fold, (fitted, predicted) in enumerate(seen):
        assert predicted == set(np.flatnonzero(fold_of == fold)) and fitted == set(range(400)) - predicted
    # two equally good, independent runs: their blend beats each, out of fold
    assert accuracy(labels, proba.argmax(1)) > max(accuracy(labels, m.argmax(1)) for m in members)
    for method in ("mean", "stack"):
        assert nested_proba(method, members, labels, fold_of, top_accuracy).shape == (400, 4)


@pytest.fixture(scope="module")
def two_runs(seedlings_head_run, seedlings_small, tmp_path_factory) -> list[Path]:
    """Two different real runs with the same folds: the session's Lite0 run at 64 px (``seedlings_head_run``)
    and Lite1 at 80 px on as many folds."""
    folds = yaml.safe_load((seedlings_head_run / "config.yaml").read_text())["folds"]
    (lite1,) = finished_runs("seedlings", seedlings_small, {"lite1": {
        "backbones": ["efficientnet_lite1"], "image_size": 80, "folds": folds, "tta": ["identity"],
        "train": {"learner": "head", "views": ["identity"], "head_epochs": 20}}}, tmp_path_factory.mktemp("blend-runs"))
    return [seedlings_head_run, lite1]


@pytest.mark.slow
def test_blend_command_writes_a_scored_validated_run(two_runs, seedlings_small, tmp_path, capsys):
    capsys.readouterr()
    assert run_cli(["blend", *two_runs, "--method", "mean", "--output-dir", tmp_path]) == 0
    out = capsys.readouterr().out
    assert "member" in out and "blend (mean, nested CV)" in out and "\npeak memory " in out
    (blend_dir,) = (tmp_path / "seedlings").iterdir()
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert 0.1 < metrics["timing"]["peak_memory_gib"] < 64  # kept like a run's, for the ledger and compare
    oof = pd.read_csv(blend_dir / "oof.csv")
    classes = json.loads((two_runs[0] / "classes.json").read_text())
    folds = json.loads((two_runs[0] / "folds.json").read_text())
    fold_of = dict(zip(folds["ids"], folds["fold_of"]))
    scores = [accuracy(part["label"], np.array(classes)[part[classes].to_numpy().argmax(1)])
              for _, part in oof.groupby(oof["id"].astype(str).map(fold_of))]
    assert metrics["fold_scores"] == pytest.approx(scores)  # the CV is the blend's out-of-fold predictions
    # a mean blend's test probabilities are the members' mean
    members = [pd.read_csv(r / "test_probabilities.csv").set_index("id")[classes] for r in two_runs]
    blended = pd.read_csv(blend_dir / "test_probabilities.csv").set_index("id")[classes]
    np.testing.assert_allclose(blended.to_numpy(), ((members[0] + members[1]) / 2).loc[blended.index].to_numpy(), atol=2e-6)
    blend = json.loads((blend_dir / "blend.json").read_text())
    assert blend["members"] == [str(r) for r in two_runs] and blend["weights"] == [0.5, 0.5]
    assert run_cli(["validate", "seedlings", blend_dir / "submission.csv", "--data", seedlings_small]) == 0
    assert (blend_dir / "provenance.json").is_file()


@pytest.mark.slow
def test_hill_blend_is_at_least_its_best_member_where_fitted(two_runs, tmp_path, capsys):
    """The saved weights applied to the members' saved out-of-fold probabilities, on every row the blend
    was fitted on, score at least what each member scores there: hill climbing starts from the best
    member and takes no step that lowers the score."""
    assert run_cli(["blend", *two_runs, "--output-dir", tmp_path]) == 0
    (blend_dir,) = (tmp_path / "seedlings").iterdir()
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    blend = json.loads((blend_dir / "blend.json").read_text())
    weights = blend["weights"]
    assert blend["method"] == "hill" and len(weights) == 2 and sum(weights) == pytest.approx(1)
    assert set(metrics["members"]) == {str(r) for r in two_runs} and 0 < metrics["cv_mean"] <= 1

    classes = json.loads((two_runs[0] / "classes.json").read_text())
    oof = [pd.read_csv(r / "oof.csv", dtype={"id": str}).set_index("id") for r in two_runs]
    rows = oof[0].index.intersection(oof[1].index)
    assert len(rows) == blend["rows"] == len(oof[0])  # head runs score every row out of fold
    labels = oof[0].loc[rows, "label"].to_numpy()
    proba = [o.loc[rows, classes].to_numpy(np.float64) for o in oof]
    score = METRICS.get(get_competition("seedlings").metric)
    members = [score(labels, np.array(classes)[p.argmax(1)]) for p in proba]
    fitted = score(labels, np.array(classes)[np.tensordot(weights, np.stack(proba), axes=1).argmax(1)])
    assert all(fitted >= member for member in members), (fitted, members, weights)


@pytest.mark.slow
def test_runs_of_other_data_or_other_folds_are_refused(two_runs, tmp_path, capsys):
    other = tmp_path / "other-data"
    shutil.copytree(two_runs[1], other)
    folds = json.loads((other / "folds.json").read_text())
    (other / "folds.json").write_text(json.dumps({**folds, "train_sha256": "0" * 64}))
    capsys.readouterr()
    assert run_cli(["blend", two_runs[0], other, "--output-dir", tmp_path / "out"]) == 2
    assert "was trained on other data" in capsys.readouterr().err

    resplit = tmp_path / "other-folds"
    shutil.copytree(two_runs[1], resplit)
    (resplit / "folds.json").write_text(json.dumps({**folds, "fold_of": folds["fold_of"][::-1]}))
    assert run_cli(["blend", two_runs[0], resplit, "--output-dir", tmp_path / "out"]) == 2
    assert "split its folds differently" in capsys.readouterr().err
    assert run_cli(["blend", two_runs[0], two_runs[0]]) == 2
    assert "two or more different run directories" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_multilabel_runs(seedlings_tags_run, seedlings_tags, tmp_path_factory) -> list[Path]:
    """Two different real multi-label runs with the same folds: the session's Lite0 multi-scale run at 64 px
    (``seedlings_tags_run``) and the last stage at 96 px on as many folds."""
    spec, data = seedlings_tags
    work = tmp_path_factory.mktemp("blend-multilabel")
    folds = yaml.safe_load((seedlings_tags_run / "config.yaml").read_text())["folds"]
    config = work / "large.yaml"
    config.write_text(yaml.safe_dump({"backbones": ["efficientnet_lite0"], "image_size": 96, "folds": folds,
                                      "tta": ["identity"], "train": {"learner": "head", "views": ["identity"],
                                                                     "head_epochs": 30, "multiscale": False}}))
    assert run_cli(["run", spec, "--data", data, "--config", config, "--output-dir", work / "large"]) == 0
    (large,) = (work / "large" / spec.stem).iterdir()
    return [seedlings_tags_run, large]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["hill", "stack"])
def test_multilabel_blend_is_scored_per_class_and_nested(two_multilabel_runs, seedlings_tags, tmp_path, method,
                                                         monkeypatch):
    """Per class blends; each fold's OOF probabilities from a blend fitted on the other folds' rows only."""
    spec, data = seedlings_tags
    spy = BlendSpy(monkeypatch)
    assert run_cli(["blend", *two_multilabel_runs, "--method", method, "--output-dir", tmp_path]) == 0
    (blend_dir,) = (tmp_path / spec.stem).iterdir()
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    folds = yaml.safe_load((two_multilabel_runs[0] / "config.yaml").read_text())["folds"]
    assert metrics["metric"] == "mean_f1" and len(metrics["fold_scores"]) == folds
    assert_label_blends_nested(spy, two_multilabel_runs, blend_dir, json.loads((blend_dir / "classes.json").read_text()))
    best = max(m["cv_mean"] for m in metrics["members"].values())
    assert metrics["cv_mean"] >= best - 0.02, (metrics["cv_mean"], metrics["members"])
    classes = json.loads((blend_dir / "classes.json").read_text())
    thresholds = json.loads((blend_dir / "postprocess.json").read_text())["thresholds"]
    assert len(thresholds) == len(classes) == 14
    weights = json.loads((blend_dir / "blend.json").read_text())["weights"]
    assert (weights is None) == (method == "stack") and (weights is None or len(weights) == len(classes))
    oof = pd.read_csv(blend_dir / "oof.csv")
    assert {f"true_{c}" for c in classes} <= set(oof.columns) and oof[classes].to_numpy().max() <= 1
    assert run_cli(["validate", spec, blend_dir / "submission.csv", "--data", data]) == 0


@pytest.mark.slow
def test_multilabel_runs_with_other_folds_are_refused(two_multilabel_runs, tmp_path, capsys):
    resplit = tmp_path / "other-folds"
    shutil.copytree(two_multilabel_runs[1], resplit)
    folds = json.loads((resplit / "folds.json").read_text())
    (resplit / "folds.json").write_text(json.dumps({**folds, "fold_of": folds["fold_of"][::-1]}))
    capsys.readouterr()
    assert run_cli(["blend", two_multilabel_runs[0], resplit, "--output-dir", tmp_path / "out"]) == 2
    assert "split its folds differently" in capsys.readouterr().err
