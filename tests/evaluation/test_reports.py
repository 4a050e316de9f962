"""Error analysis in a run directory: the worst out-of-fold mistakes, per-class scores, calibration."""

import numpy as np
import pandas as pd
from PIL import Image

from kagglekit.evaluation.reports import expected_calibration_error, per_class_table, worst_mistakes


def test_worst_mistakes_are_those_with_the_lowest_probability_of_their_true_class():
    labels = np.array([0, 1, 2, 0, 1])
    proba = np.array([[0.9, 0.05, 0.05],   # right
                      [0.6, 0.3, 0.1],     # wrong, p(true) 0.3
                      [0.7, 0.25, 0.05],   # wrong, p(true) 0.05
                      [0.2, 0.7, 0.1],     # wrong, p(true) 0.2
                      [0.1, 0.8, 0.1]])    # right
    assert worst_mistakes(labels, proba, 10).tolist() == [2, 3, 1]
    assert worst_mistakes(labels, proba, 2).tolist() == [2, 3]


def test_per_class_table_and_calibration_error():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 1, 2])
    table = per_class_table(labels, predicted, ["a", "b", "c"]).set_index("class")
    assert table.loc["a", "recall"] == 1 / 3 and table.loc["b", "precision"] == 0.5 and table.loc["c", "f1"] == 1
    assert table.loc["a", "most_often_taken_for"] == "b (2)" and table.loc["b", "most_often_taken_for"] == ""
    # always 90% sure and right 90% of the time: calibrated; always 90% sure and right half the time: off by 0.4
    assert expected_calibration_error(np.array([1] * 9 + [0]), np.full(10, 0.9)) == 0.0
    assert abs(expected_calibration_error(np.array([1, 0] * 5), np.full(10, 0.9)) - 0.4) < 1e-9


def test_run_directory_error_analysis_shows_the_worst_mistakes(tmp_path, monkeypatch):
    from kagglekit.pipelines import classification
    from kagglekit.runs import plots

    rng = np.random.default_rng(0)
    classes = ["cat", "dog", "owl"]
    labels = rng.integers(0, 3, 40)
    oof = rng.dirichlet(np.ones(3), 40).astype(np.float32)
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((300, 200, 3), i * 6, np.uint8)).save(paths[-1])
    shown = {}
    real_grid = plots.image_grid

    def spy(images, captions, path, title, **kw):
        shown.update(images=images, captions=captions)
        return real_grid(images, captions, path, title, **kw)

    monkeypatch.setattr(plots, "image_grid", spy)
    classification.write_error_analysis(tmp_path, "toy", classes, [f"id{i}" for i in range(40)], paths, labels, oof)

    mistakes = pd.read_csv(tmp_path / "mistakes.csv")
    wrong = np.flatnonzero(oof.argmax(1) != labels)
    assert len(mistakes) == len(wrong) and mistakes["p_true"].is_monotonic_increasing
    lowest = sorted(wrong, key=lambda i: oof[i, labels[i]])[:16]
    assert mistakes["id"].tolist()[:16] == [f"id{i}" for i in lowest]
    # the grid holds exactly those images (each a distinct grey level), captioned with truth and prediction
    assert [int(img[0, 0, 0]) for img in shown["images"]] == [i * 6 for i in lowest]
    assert max(img.shape[0] for img in shown["images"]) <= 256
    assert shown["captions"][0].startswith(f"id{lowest[0]}\ntrue: {classes[labels[lowest[0]]]}")
    for name in ("plots/worst_mistakes.png", "plots/reliability.png", "per_class.csv"):
        assert (tmp_path / name).is_file(), name
