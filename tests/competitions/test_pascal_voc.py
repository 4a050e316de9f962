"""The PASCAL VOC course competition: layout, RLE rows, the Kaggle-service scoring path, validation."""

import numpy as np
import pandas as pd
import pytest

from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import DataError, SubmissionError
from kagglekit.data.masks import read_label_map
from kagglekit.submission import rle
from kagglekit.submission.validator import validate_submission
from kagglekit.submission.writer import read_csv_strings, write_submission


def test_reads_the_course_layout(voc_small):
    voc = get_competition("pascal-voc")
    train, test = voc.load_train(voc_small), voc.load_test(voc_small)
    assert len(train) == 36 and len(test) == 12
    assert train.labels.shape == (36, 20) and (train.labels.sum(1) >= 1).all()
    first = np.load(train.paths[0])
    assert first.dtype == np.uint8 and first.ndim == 3
    seg = read_label_map(train.masks[0])
    assert seg.shape == first.shape[:2]
    present = sorted(set(np.unique(seg)) - {0, 255})
    assert [c - 1 for c in present] == np.flatnonzero(train.labels[0]).tolist()


def test_missing_file_is_named(voc_small, tmp_path):
    import shutil

    broken = tmp_path / "voc"
    shutil.copytree(voc_small, broken)
    (broken / "train" / "seg" / "train_3.npy").unlink()
    with pytest.raises(DataError, match="train_3.npy"):
        get_competition("pascal-voc").load_train(broken)


def test_solution_rows_decode_to_the_hidden_masks(voc_small):
    """Two rows per test image; decoded independently (row-major) they are the labels and the masks."""
    voc = get_competition("pascal-voc")
    test = voc.load_test(voc_small)
    solution = pd.read_csv(voc_small / "solution.csv", dtype=str, keep_default_na=False)
    assert len(solution) == 2 * len(test)
    row = dict(zip(solution.Id, solution.Predicted))
    for id_, path in zip(test.ids, test.paths):
        height, width = np.load(path).shape[:2]
        labels = rle.decode(row[f"{id_}_classification"], (20,), rle.ROW_MAJOR)
        stack = rle.decode(row[f"{id_}_segmentation"], (20, height, width), rle.ROW_MAJOR)
        assert labels.any() and (stack.reshape(20, -1).any(1) == labels).all()
        assert not (stack.sum(0) > 1).any()  # one class per pixel


def test_score_on_frames_in_the_submission_format(voc_small):
    """How the local Kaggle service scores: solution and submission both ``Id,Predicted``."""
    voc = get_competition("pascal-voc")
    solution = pd.read_csv(voc_small / "solution.csv")  # default pandas reading: empty cells are NaN
    assert voc.score(solution, solution) == 1.0
    sample = pd.read_csv(voc_small / "sample_submission.csv")
    assert voc.score(solution, sample) == 0.0  # every image has a class and a mask
    half = solution.copy()
    half.loc[half.Id.str.endswith("_classification"), "Predicted"] = np.nan
    assert voc.score(solution, half) == pytest.approx(0.5)
    with pytest.raises(SubmissionError, match="no row"):
        voc.score(solution, solution.iloc[1:])
    bad = solution.copy()
    bad.loc[0, "Predicted"] = "3 1 1 1"
    with pytest.raises(SubmissionError, match="out of order"):
        voc.score(solution, bad)


def test_validator_checks_rle_per_row(voc_small, tmp_path):
    voc = get_competition("pascal-voc")
    test = voc.load_test(voc_small)
    solution = read_csv_strings(voc_small / "solution.csv")
    assert voc.validate(write_submission(solution, tmp_path / "ok.csv"), voc_small).ok
    bad = solution.copy()
    height, width = np.load(test.paths[0]).shape[:2]
    bad.loc[0, "Predicted"] = "20 2"  # classification: past the 20 classes
    bad.loc[1, "Predicted"] = f"{20 * height * width} 2"  # segmentation: past this image's 20 masks
    bad.loc[2, "Predicted"] = "1 2 2 1"  # overlapping runs
    bad.loc[3, "Predicted"] = "1 x"
    # the competition reads each test image's size itself: nothing depends on an earlier load_test
    report = get_competition("pascal-voc").validate(write_submission(bad, tmp_path / "bad.csv"), voc_small)
    text = "\n".join(report.problems)
    assert "line 2 (id '0_classification')" in text and "past the mask's 20 pixels" in text
    assert "line 3 (id '0_segmentation')" in text and f"past the mask's {20 * height * width} pixels" in text
    assert "line 4" in text and "overlaps" in text
    assert "line 5" in text and "not a whole number" in text


def test_config_file_keeps_the_competitions_run_defaults(tmp_path):
    """A config file that sets one key must not reset what the adapter chose (flips, input size)."""
    from kagglekit.core.config import SegmentationConfig
    from kagglekit.usecases.config import resolve_run

    path = tmp_path / "c.yaml"
    path.write_text("folds: 3\nsegmentation: {epochs: 2}\n")
    _, config = resolve_run("pascal-voc", config=path, data=tmp_path)
    assert config.folds == 3 and config.segmentation.epochs == 2
    chosen = get_competition("pascal-voc").run_defaults["segmentation"]  # not the generic defaults
    assert chosen["input_size"] != SegmentationConfig().input_size
    assert config.train.views == ["identity", "hflip"] and config.segmentation.input_size == chosen["input_size"]
    assert config.segmentation.freeze_encoder is chosen["freeze_encoder"] is False


def test_local_kaggle_service_scores_voc_submissions(voc_small):
    """The local service reads the solution as strings and scores public and private rows apart."""
    from kagglekit.kaggle_service.scoring import public_mask, score_submission

    voc = get_competition("pascal-voc")
    solution = pd.read_csv(voc_small / "solution.csv", dtype=str, keep_default_na=False, na_filter=False)
    public = public_mask(len(solution), 0.3)
    blob = (voc_small / "solution.csv").read_bytes()
    assert score_submission(voc, solution, public, blob) == (1.0, 1.0)
    sample = (voc_small / "sample_submission.csv").read_bytes()
    assert score_submission(voc, solution, public, sample) == (0.0, 0.0)
    broken = solution.copy()
    broken.loc[0, "Predicted"] = "5 1 2 1"
    with pytest.raises(ValueError, match="out of order"):
        score_submission(voc, solution, np.ones(len(solution), bool), broken.to_csv(index=False).encode())


def test_validation_without_sizes_is_looser_and_sizes_are_read_by_validate(voc_small, tmp_path):
    """A mask run past its image but inside the largest VOC image passes only when sizes are unknown."""
    voc = get_competition("pascal-voc")
    test = voc.load_test(voc_small)
    height, width = np.load(test.paths[0]).shape[:2]
    assert height * width < 500 * 500
    bad = read_csv_strings(voc_small / "solution.csv")
    bad.loc[1, "Predicted"] = f"{20 * height * width} 2"  # just past image 0's 20 masks
    path = write_submission(bad, tmp_path / "bad.csv")
    assert validate_submission(voc, path, voc_small / "sample_submission.csv").ok  # no sizes: only the bound
    report = voc.validate(path, voc_small)
    assert not report.ok and "line 3 (id '0_segmentation')" in report.problems[0]
