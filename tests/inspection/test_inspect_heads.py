"""Grad-CAM and adversarial attacks on runs that saved heads, not networks: a head-based seedlings run
(frozen features + heads + fine-tuned top blocks), a multi-label run and the PASCAL VOC classifier,
each through a Keras graph composed from the registry's backbone and the run's fitted heads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from kagglekit.cli import main as run_cli

TINY = {"backbones": ["efficientnet_lite0"], "image_size": 64, "folds": 2, "tta": ["identity", "hflip"],
        "train": {"learner": "head", "views": ["identity"], "head_epochs": 30, "patience": 5}}


def finished_run(competition: str, data: Path, work: Path, config: dict) -> Path:
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run_cli(["run", competition, "--data", data, "--config", path, "--output-dir", work / "runs"]) == 0
    (run_dir,) = (work / "runs" / Path(competition).stem).iterdir()
    return run_dir


@pytest.mark.slow
def test_composed_fold_model_gives_the_runs_own_probabilities(seedlings_head_run):
    """Backbone + fold 0's heads and top blocks, TTA inside the graph: fold 0's saved out-of-fold
    probabilities; every fold's models: the saved test probabilities."""
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.pipelines.differentiable import load_classifier

    head_run = seedlings_head_run
    classifier = load_classifier(head_run)
    assert [len(m) for m in classifier.members.values()] == [2] * classifier.config.folds  # head + top blocks per fold
    folds = json.loads((head_run / "folds.json").read_text())
    held = [i for i, k in zip(folds["ids"], folds["fold_of"]) if k == 0][:12]
    data = Path(classifier.config.data)
    train = get_competition("seedlings").load_train(data)
    paths = [train.paths[train.ids.index(i)] for i in held]
    oof = pd.read_csv(head_run / "oof.csv", dtype={"id": str}).set_index("id").loc[held, classifier.classes]
    composed = classifier.model(["fold0"]).predict(classifier.pixels(paths), verbose=0)
    np.testing.assert_allclose(composed, oof.to_numpy(), atol=1e-4)

    test = get_competition("seedlings").load_test(data)
    saved = pd.read_csv(head_run / "test_probabilities.csv", dtype={"id": str}).set_index("id")
    everything = classifier.model().predict(classifier.pixels(test.paths[:8]), verbose=0)
    np.testing.assert_allclose(everything, saved.loc[test.ids[:8], classifier.classes].to_numpy(), atol=1e-4)


@pytest.mark.slow
def test_attack_on_a_head_run_lowers_accuracy_within_eps(seedlings_head_run, tmp_path, capsys):
    from kagglekit.inspection.adversarial import Tally, attack, attack_sets

    head_run = seedlings_head_run

    (target,) = attack_sets(head_run, 24).values()
    assert not target.multilabel and len(target.ids) == 24
    images, truth = target.load(list(range(24)))

    def accuracy(x: np.ndarray) -> float:
        tally = Tally(target)
        tally.add(target.proba(x), truth)
        return tally.scores(targeted=False)["accuracy"]

    for method in ("fgsm", "pgd"):
        perturbed = attack(target.model, images, truth, 8.0, method, steps=3)
        assert np.abs(perturbed - images).max() <= 8.0 + 1e-3
        assert accuracy(perturbed) < accuracy(images)
    report = tmp_path / "attack"
    capsys.readouterr()
    assert run_cli(["attack", head_run, "--eps", "0", "4", "--count", "8", "--targeted", "--out", report]) == 0
    assert re.search(r"\npeak memory \d+\.\d\d GiB\n$", capsys.readouterr().out)  # a long command's last line
    table = pd.read_csv(report / "robustness.csv").set_index("eps")
    assert table.loc[4.0, "target_hit_rate"] >= table.loc[0.0, "target_hit_rate"]
    assert run_cli(["explain", head_run, "--worst", "2", "--method", "gradcam++", "--out", tmp_path / "worst.png"]) == 0
    with Image.open(tmp_path / "worst.png") as picture:  # 2 rows: image | predicted-class map | true-class map
        assert picture.width > 600 and picture.height > 400


@pytest.mark.slow
def test_attack_works_in_chunks_and_scores_as_one_batch(seedlings_head_run, monkeypatch):
    """``robustness`` loads and attacks a chunk of images at a time (the gradient sees chunk-sized batches only)
    and keeps counts, not images: at two images a chunk its table, originals and examples are those of all four
    images attacked in one batch (targeted, so the goals and hit rates are chunked too)."""
    from kagglekit.inspection import adversarial

    (target,) = adversarial.attack_sets(seedlings_head_run, 4).values()
    batches = []
    compiled = adversarial.loss_gradient

    def counting(*args, **kwargs):
        grad = compiled(*args, **kwargs)
        return lambda x, *rest: batches.append(len(x)) or grad(x, *rest)

    monkeypatch.setattr(adversarial, "loss_gradient", counting)

    def report(chunk: int):
        batches.clear()
        monkeypatch.setattr(adversarial, "CHUNK_PIXELS", chunk * 64 * 64)  # the run's 64 px images
        return adversarial.robustness(target, ["fgsm"], [0.0, 8.0], targeted=True)

    table, originals, examples = report(2)
    assert set(batches) == {2}
    whole, whole_originals, whole_examples = report(4)
    assert set(batches) == {4}
    pd.testing.assert_frame_equal(table, whole)
    np.testing.assert_array_equal(originals, whole_originals)
    assert originals.shape == (4, 64, 64, 3) and table.target_hit_rate.notna().all()
    np.testing.assert_allclose(examples["fgsm"], whole_examples["fgsm"], atol=1e-3)


@pytest.mark.slow
def test_explain_a_multilabel_run_per_class(seedlings_tags_run, seedlings_small, tmp_path, capsys):
    from kagglekit.inspection.gradcam import averaged_maps
    from kagglekit.pipelines.differentiable import load_classifier

    multilabel_run = seedlings_tags_run

    classifier = load_classifier(multilabel_run)
    assert classifier.multilabel and "even" in classifier.classes
    images = sorted((seedlings_small / "test").iterdir())[:3]
    pixels = classifier.pixels(images)
    likeliest = classifier.model().predict(pixels, verbose=0).argmax(1)  # the label it is surest of, per image
    maps = averaged_maps(classifier.cam_parts(), pixels, likeliest)
    assert maps.shape == (3, 64, 64) and np.isfinite(maps).all()
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)  # heat on every image, inside it

    out = tmp_path / "labels.png"
    capsys.readouterr()
    assert run_cli(["explain", multilabel_run, "--images", *images, "--out", out]) == 0
    with Image.open(out) as picture:  # a row per image: the image, then a map per predicted label (at least 1)
        assert picture.height > 600 and picture.width > 400
    assert run_cli(["explain", multilabel_run, "--images", images[0], "--class", "odd", "--out", tmp_path / "odd.png"]) == 0
    assert run_cli(["explain", multilabel_run, "--worst", "2", "--out", tmp_path / "x.png"]) == 2
    assert "pass --images" in capsys.readouterr().err


@pytest.mark.slow
def test_attack_the_voc_classifier_and_segmenter(voc_run, tmp_path):
    """PASCAL VOC (the session's shared run): FGSM within eps on the label heads (mean F1 at the run's
    thresholds falls) and on the segmenter (its pixel accuracy falls): each perturbation nonzero, and each
    score strictly lower."""
    report = tmp_path / "attack"
    assert run_cli(["attack", voc_run, "--eps", "0", "16", "--count", "12", "--out", report]) == 0
    labels = pd.read_csv(report / "labels" / "robustness.csv").set_index("eps")
    masks = pd.read_csv(report / "masks" / "robustness.csv").set_index("eps")
    for table, score in ((labels, "mean_f1"), (masks, "accuracy")):  # each model: perturbed within eps, and worse
        assert table.loc[0.0, "max_abs_perturbation"] == 0, table
        assert 0 < table.loc[16.0, "max_abs_perturbation"] <= 16.0 + 1e-3, table
        assert table.loc[16.0, score] < table.loc[0.0, score], (score, table)
    assert (report / "labels" / "robustness.png").is_file() and (report / "masks" / "examples.png").is_file()
