"""End to end through the CLI, tiny sizes: the VOC course competition and CamVid (segmentation-folder), each
the session's shared run (conftest's ``voc_run`` and ``camvid_run``), then predicted, served, exported and
attacked through ``kagglekit``'s commands."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import assert_usage_recorded, scored_folds

from kagglekit.cli import main


def assert_predict_rebuilds_submission(run_dir: Path, data: Path, tmp_path: Path) -> None:
    """``kagglekit predict`` recomputes the run's submission from the run directory alone."""
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run_dir), "--data", str(data), "--out", str(out)]) == 0
    assert out.read_bytes() == (run_dir / "submission.csv").read_bytes()


def served_masks(run_dir: Path, images: list[Path], tmp_path: Path) -> dict:
    """What ``predict --images`` writes for ``images`` (mask PNGs + table) and what the REST endpoint
    answers for the first one; both must agree. Returns {image name: (mask, labels or None)}."""
    import base64
    import io

    import requests
    from PIL import Image

    from kagglekit.data.images import read_rgb
    from kagglekit.data.masks import read_label_map
    from kagglekit.serving.api import create_app, serving_in_background
    from kagglekit.serving.predictor import load_predictor

    out = tmp_path / "served"
    assert main(["predict", str(run_dir), "--images", *map(str, images), "--out", str(out)]) == 0
    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(table["image"]) == [str(p) for p in images]
    found = {}
    for row in table.itertuples():
        mask = read_label_map(out / row.mask)
        assert mask.shape == (row.height, row.width) == read_rgb(Path(row.image)).shape[:2]
        found[Path(row.image).name] = (mask, row.labels.split() if "labels" in table else None)

    png = io.BytesIO()  # the first image over HTTP, as a PNG (lossless, so the same pixels)
    Image.fromarray(read_rgb(images[0])).save(png, format="PNG")
    with serving_in_background(create_app(load_predictor(run_dir))) as url:
        reply = requests.post(f"{url}/predict", files=[("files", ("first.png", png.getvalue(), "image/png"))], timeout=300)
        meta = requests.get(f"{url}/metadata", timeout=30).json()
    assert reply.status_code == 200, reply.text
    (answer,) = reply.json()["predictions"]
    with Image.open(io.BytesIO(base64.b64decode(answer["mask_png_base64"]))) as served:
        assert served.mode == "P"  # viewable in colour, class indices as pixel values
        np.testing.assert_array_equal(np.asarray(served), found[images[0].name][0])
    assert answer["mask_classes"] == meta["mask_classes"] and meta["task"] != "classification"
    assert sum(answer["pixel_share"].values()) == pytest.approx(1, abs=1e-4)
    if found[images[0].name][1] is not None:
        assert answer["labels"] == found[images[0].name][1]
    return found


def assert_exports_match(run_dir: Path, images: list[Path], tmp_path: Path, parts: list[str],
                         formats: tuple[str, ...]) -> None:
    """``kagglekit export`` writes every part of the run in ``formats``, each within tolerance of the run's
    predictor."""
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--format", *formats, "--out", str(out),
                 "--check-images", *map(str, images[:3])]) == 0
    report = json.loads((out / "export.json").read_text())
    assert sorted(report["models"]) == sorted(parts)
    for part in report["models"].values():
        for fmt in formats:
            assert part["exports"][fmt]["max_abs_difference"] < 1e-3
            assert (out / part["exports"][fmt]["path"]).exists()


def naive_decode(text: str, size: int) -> np.ndarray:
    """Written from the competition's description, independent of kagglekit.submission.rle."""
    flat = np.zeros(size, dtype=bool)
    numbers = [int(n) for n in text.split()]
    for start, length in zip(numbers[0::2], numbers[1::2]):
        flat[start - 1:start - 1 + length] = True
    return flat


def naive_dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2 * (a & b).sum() / total


@pytest.mark.slow
def test_pascal_voc_run_writes_a_submission_that_decodes_and_scores(voc_run, voc_small, tmp_path):
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.learners.thresholds import ThresholdTuner

    run_dir = voc_run
    submission = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    solution = pd.read_csv(voc_small / "solution.csv", dtype=str, keep_default_na=False)
    test_ids = pd.read_csv(voc_small / "test" / "test_set.csv")["Id"].astype(str)
    assert sorted(submission.Id) == sorted(solution.Id) == sorted(
        [f"{i}_classification" for i in test_ids] + [f"{i}_segmentation" for i in test_ids])

    predicted, truth = dict(zip(submission.Id, submission.Predicted)), dict(zip(solution.Id, solution.Predicted))
    scores = []
    for id_ in test_ids:
        height, width = np.load(voc_small / "test" / "img" / f"test_{id_}.npy").shape[:2]
        labels = naive_decode(predicted[f"{id_}_classification"], 20)
        assert labels.sum() >= 1  # top-1 fallback: no image without a label
        stack = naive_decode(predicted[f"{id_}_segmentation"], 20 * height * width).reshape(20, height, width)
        assert stack.sum(0).max() <= 1  # one class per pixel, at the image's original size
        scores.append(naive_dice(labels, naive_decode(truth[f"{id_}_classification"], 20)))
        scores.append(naive_dice(stack.ravel(), naive_decode(truth[f"{id_}_segmentation"], stack.size)))
    voc = get_competition("pascal-voc")
    assert voc.score(solution, submission) == pytest.approx(np.mean(scores))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    oof = pd.read_csv(run_dir / "oof.csv")
    classes = voc.classes
    refit = ThresholdTuner.for_metric("dice").fit(oof[classes].to_numpy(), oof[[f"true_{c}" for c in classes]].to_numpy())
    thresholds = ThresholdTuner.from_thresholds([metrics["classification"]["per_class"][c]["threshold"]
                                                 for c in classes]).thresholds_  # null: never predicted
    np.testing.assert_allclose(thresholds, refit.thresholds_, atol=0.011)  # float32 OOF written with 6 decimals
    assert 0 < metrics["classification"]["mAP"] <= 1 and "miou" in metrics["segmentation"]
    for name in ("config.yaml", "plots/masks.png", "plots/learning_curves.png", "plots/classifier_learning_curves.png",
                 "test_probabilities.csv", "postprocess.json"):
        assert (run_dir / name).is_file(), name
    # a segmenter per scored fold (segmentation.scored_folds of the folds), each scored on its own held-out
    # fold: the CV averages them all
    scored = scored_folds(run_dir)
    assert sorted(p.name for p in (run_dir / "segmenter").iterdir()) == [f"fold{k}" for k in range(scored)]
    assert len(metrics["fold_scores"]) == scored and metrics["cv_mean"] == pytest.approx(np.mean(metrics["fold_scores"]))
    assert_predict_rebuilds_submission(run_dir, voc_small, tmp_path)

    # any images: the served labels and masks are the submission's rows
    images = [voc_small / "test" / "img" / f"test_{i}.npy" for i in test_ids[:4]]
    for id_, (mask, labels) in zip(test_ids[:4], served_masks(run_dir, images, tmp_path).values()):
        assert labels == [c for c, on in zip(classes, naive_decode(predicted[f"{id_}_classification"], 20)) if on]
        stack = naive_decode(predicted[f"{id_}_segmentation"], 20 * mask.size).reshape(20, *mask.shape)
        np.testing.assert_array_equal(np.where(stack.any(0), stack.argmax(0) + 1, 0), mask)
    # both parts in Keras; the masks' ONNX export is CamVid's test's (the suite's minutes)
    assert_exports_match(run_dir, images, tmp_path, ["labels", "masks"], ("keras",))


@pytest.mark.slow
def test_camvid_run_reports_miou_and_writes_per_class_rows(camvid_run, camvid, camvid_small, tmp_path):
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.data.masks import read_label_map
    from kagglekit.submission import rle

    run_dir = camvid_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["miou"] <= 1 and metrics["validation"] == "grouped hold-out"
    assert_usage_recorded(metrics, run_dir, "camvid")
    plan = metrics["time_budget"]  # planned from this machine's timings, with a deadline that never came
    assert plan["epochs"] == metrics["epochs"] == 4 and plan["stops"] == [] and plan["kept"]
    submission = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    solution = pd.read_csv(camvid_small / "solution.csv", dtype=str, keep_default_na=False)
    assert len(submission) == len(solution) == 6 * 11
    stem = submission.Id[0].rsplit("_", 1)[0]
    shape = read_label_map(camvid / "masks" / f"{stem}.png").shape
    masks = np.stack([rle.decode(submission.EncodedPixels[k], shape, rle.COLUMN_MAJOR) for k in range(11)])
    assert (masks.sum(0) == 1).all()  # every pixel gets exactly one class

    # the score is Kaggle's mean Dice over rows, recomputed here without kagglekit's codec
    truth = dict(zip(solution.Id, solution.EncodedPixels))
    dice = [naive_dice(naive_decode(value, shape[0] * shape[1]), naive_decode(truth[id_], shape[0] * shape[1]))
            for id_, value in zip(submission.Id, submission.EncodedPixels)]
    assert get_competition("camvid").score(solution, submission) == pytest.approx(np.mean(dice))

    # a couple of epochs learn something: better pixel accuracy on the held-out drive than "always the commonest class"
    valid_ids = json.loads((run_dir / "data_report.json").read_text())["valid_ids"]
    held = np.concatenate([read_label_map(camvid_small / "train" / "masks" / f"{i}.png").ravel() for i in valid_ids])
    held = held[held != 11]
    assert metrics["pixel_accuracy"] > np.bincount(held).max() / held.size

    from PIL import Image

    with Image.open(run_dir / "plots" / "masks.png") as picture:  # image | truth | prediction, one row per image
        assert picture.width > 600 and picture.height > 150
    assert_predict_rebuilds_submission(run_dir, camvid_small, tmp_path)

    # any images: the served masks are the submission's rows
    images = sorted((camvid_small / "test" / "images").iterdir())
    rows = dict(zip(submission.Id, submission.EncodedPixels))
    for name, (mask, labels) in served_masks(run_dir, images, tmp_path).items():
        assert labels is None
        for k in range(11):
            expected = naive_decode(rows[f"{Path(name).stem}_{k}"], mask.size).reshape(mask.shape[::-1]).T
            np.testing.assert_array_equal(mask == k, expected, err_msg=f"{name} class {k}")
    assert_exports_match(run_dir, images, tmp_path, ["masks"], ("keras", "onnx"))

    # FGSM on the held-out drive: pixel accuracy falls, no pixel moves more than eps
    report = tmp_path / "attack"
    assert main(["attack", str(run_dir), "--eps", "0", "8", "--count", "4", "--out", str(report)]) == 0
    table = pd.read_csv(report / "robustness.csv").set_index("eps")
    assert table.loc[8.0, "accuracy"] < table.loc[0.0, "accuracy"] and table.loc[8.0, "max_abs_perturbation"] <= 8.0001
    assert "miou" in table.columns
