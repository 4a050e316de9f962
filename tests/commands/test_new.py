"""``kagglekit new DIR``: a competition YAML from the files alone, for every layout it knows, built in
tmp_path from the real data in ../shared (hard links; nothing is written there or in the repo); layouts
it cannot train are explained, naming what is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import CAMVID, SEEDLINGS, cli, flatten, link, relabelled, require, tagged, tags_of

from kagglekit.cli import main
from kagglekit.competitions.builders import build_class_folder_competition, build_segmentation_folder_competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.competitions.labels_csv import LabelsCsvCompetition

TINY = {"backbones": ["efficientnet_lite0"], "image_size": 64, "folds": 2, "tta": ["identity"],
        "train": {"learner": "head", "views": ["identity"], "head_epochs": 3}}


def new(capsys, *argv) -> tuple[int, str]:
    """Exit code and all output of one in-process ``kagglekit new`` call."""
    code, out, err = cli(capsys, "new", *argv)
    return code, out + err


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory) -> Path:
    """Real Plant Seedlings in Kaggle's class-folder layout: train/<species>/, test/, file,species."""
    return build_class_folder_competition(require(SEEDLINGS), tmp_path_factory.mktemp("class-folders") / "weeds",
                                          per_class=6, test_fraction=0.34)


@pytest.fixture(scope="module")
def labels_csv(class_folders, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    return flatten(class_folders, tmp_path_factory.mktemp("labels-csv") / "weeds-csv")


def loads_and_reads(path: Path, data: Path):
    competition = get_competition(str(path)).resolve(data)
    return competition, competition.load_train(data), competition.load_test(data)


def test_class_folders(class_folders, tmp_path, capsys):
    out_file = tmp_path / "weeds.yaml"
    code, out = new(capsys, class_folders, "--out", out_file, "--slug", "plant-seedlings-classification")
    assert code == 0, out
    spec = yaml.safe_load(out_file.read_text())
    assert spec["kind"] == "class-folder" and spec["slug"] == "plant-seedlings-classification"
    assert (spec["id_column"], spec["label_column"], spec["id_from"]) == ("file", "species", "name")
    species = sorted(p.name for p in (class_folders / "train").iterdir())
    assert spec["classes"] == species
    assert "the metric is accuracy" in out and f"next: kagglekit run {out_file} --data {class_folders}" in out
    competition, train, test = loads_and_reads(out_file, class_folders)
    assert len(train) == sum(1 for _ in (class_folders / "train").glob("*/*"))
    assert [competition.classes[k] for k in train.labels[:3]] == [p.parent.name for p in train.paths[:3]]
    assert sorted(test.ids) == sorted(p.name for p in (class_folders / "test").iterdir())


def test_an_existing_file_is_kept_without_force(class_folders, tmp_path, capsys):
    out_file = tmp_path / "mine.yaml"
    out_file.write_text("my notes\n")
    code, out = new(capsys, class_folders, "--out", out_file)
    assert code == 2 and "--force" in out and out_file.read_text() == "my notes\n"


def test_image_and_mask_folders(tmp_path, capsys):
    data = build_segmentation_folder_competition(require(CAMVID), get_competition("camvid"), tmp_path / "roads",
                                                 n_train=12, n_test=4)
    out_file = tmp_path / "roads.yaml"
    code, out = new(capsys, data, "--out", out_file)
    assert code == 0, out
    spec = yaml.safe_load(out_file.read_text())
    camvid = get_competition("camvid")
    assert spec["kind"] == "segmentation-folder" and len(spec["classes"]) == len(camvid.classes)
    assert spec["void_label"] == camvid.void_label
    assert (spec["train_images"], spec["train_masks"], spec["test_images"], spec["mask_suffix"]) == \
        ("train/images", "train/masks", "test/images", ".png")
    assert (spec["rle_order"], spec["rle_base"], spec["rle_empty"]) == ("F", 1, "")
    assert spec["group_pattern"] == camvid.group_pattern  # drives of CamVid stay in one fold
    assert "RLE pixel numbers start at 1" in out and "rle_order F" in out  # said to be assumed
    competition, train, test = loads_and_reads(out_file, data)
    assert len(train) == 12 and all(m.is_file() for m in train.masks) and len(test) == 4
    # the generated adapter scores the hidden solution exactly as the shipped one does
    solution = pd.read_csv(data / "solution.csv", dtype=str, keep_default_na=False)
    assert competition.score(solution, solution) == pytest.approx(1.0)


def test_labels_csv_with_all_images_in_one_folder(labels_csv, tmp_path, capsys):
    data, table = labels_csv
    out_file = tmp_path / "weeds-csv.yaml"
    code, out = new(capsys, data, "--out", out_file)
    assert code == 0, out
    spec = yaml.safe_load(out_file.read_text())
    assert spec["kind"] == "labels-csv"
    assert (spec["labels_csv"], spec["train_dir"], spec["test_dir"], spec["id_from"]) == \
        ("train.csv", "train", "test", "stem")
    assert spec["classes"] == sorted(set(table["label"]))
    competition, train, test = loads_and_reads(out_file, data)
    assert isinstance(competition, LabelsCsvCompetition)
    assert [competition.classes[k] for k in train.labels] == table["label"].tolist()
    assert [p.stem for p in train.paths] == table["id"].tolist()
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)
    assert test.ids == sample["id"].tolist()  # in the sample's order
    frame = competition.submission_frame(test.ids, train.labels[: len(test)])
    assert list(frame.columns) == ["id", "label"]


def test_labels_csv_with_other_column_names(class_folders, tmp_path, capsys):
    """The labels CSV names its columns differently from the submission: both are recorded."""
    data, table = flatten(class_folders, tmp_path / "renamed", labels={"id": "image_id", "label": "species"})
    out_file = tmp_path / "renamed.yaml"
    code, out = new(capsys, data, "--out", out_file)
    assert code == 0, out
    spec = yaml.safe_load(out_file.read_text())
    assert (spec["labels_id_column"], spec["labels_label_column"]) == ("image_id", "species")
    _, train, _ = loads_and_reads(out_file, data)
    assert len(train) == len(table)


@pytest.mark.parametrize("separator", [" ", "|"])
def test_multi_label_string_column(labels_csv, tmp_path, capsys, separator):
    from kagglekit.competitions.labels_csv import MultiLabelCsvCompetition

    data, table = labels_csv
    tags = tagged(table, separator)
    multi = relabelled(data, tmp_path / "multi", tags, sample_column="tags")
    out_file = tmp_path / "multi.yaml"
    code, out = new(capsys, multi, "--out", out_file)
    assert code == 0, out
    assert f"'tags' holds several labels per image, separated by {separator!r}" in out
    spec = yaml.safe_load(out_file.read_text())
    assert (spec["kind"], spec["label_column"], spec["separator"], spec["metric"]) == \
        ("multilabel-csv", "tags", separator, "mean_f1")
    competition, train, test = loads_and_reads(out_file, multi)
    assert isinstance(competition, MultiLabelCsvCompetition) and competition.task == "multilabel-classification"
    species = sorted({label.replace(" ", "_") for label in table["label"]})
    assert competition.classes == sorted(species + ["even", "odd"])
    assert competition.label_cells(train.labels) == [separator.join(sorted(t.split(separator), key=competition.classes.index))
                                                     for t in tags["tags"]]
    assert train.labels.sum(1).tolist() == [2] * len(train)
    frame = competition.submission_frame(test.ids, train.labels[: len(test)])
    assert list(frame.columns) == ["id", "tags"] and frame["tags"].str.count(re.escape(separator)).eq(1).all()
    assert competition.check_cell("x", "tags", f"odd{separator}purple") == "'purple' is not a label of multi"


def test_one_hot_label_columns_are_a_single_label_competition(labels_csv, tmp_path, capsys):
    data, table = labels_csv
    hot = relabelled(data, tmp_path / "hot", pd.get_dummies(table.set_index("id")["label"]).astype(int).reset_index())
    out_file = tmp_path / "hot.yaml"
    code, out = new(capsys, hot, "--out", out_file)
    assert code == 0, out
    assert "0/1 label columns" in out and "one-hot (one 1 per row)" in out
    spec = yaml.safe_load(out_file.read_text())
    assert spec["kind"] == "labels-csv" and spec["label_columns"] == sorted(set(table["label"]))
    competition, train, _ = loads_and_reads(out_file, hot)
    assert [competition.classes[k] for k in train.labels] == table["label"].tolist()


def test_multi_hot_label_columns_are_a_multi_label_competition(labels_csv, tmp_path, capsys):
    data, table = labels_csv
    hot = pd.get_dummies(table.set_index("id")["label"]).astype(int)
    hot["old"] = [int(i % 3 == 0) for i in range(len(hot))]
    hot = relabelled(data, tmp_path / "multi-hot", hot.reset_index(), sample_column="labels")
    out_file = tmp_path / "multi-hot.yaml"
    code, out = new(capsys, hot, "--out", out_file)
    assert code == 0, out
    assert "multi-label (" in out and "the classes are the columns" in out
    spec = yaml.safe_load(out_file.read_text())
    assert spec["kind"] == "multilabel-csv" and spec["label_columns"][-1] == "old"
    competition, train, _ = loads_and_reads(out_file, hot)
    assert train.labels[:, -1].tolist() == [int(i % 3 == 0) for i in range(len(train))]
    assert (train.labels[:, :-1].sum(1) == 1).all()


def test_a_folder_without_a_sample_submission_says_so(tmp_path, capsys):
    (tmp_path / "bare" / "train").mkdir(parents=True)
    code, out = new(capsys, tmp_path / "bare", "--out", tmp_path / "bare.yaml")
    assert code == 3 and "no sample submission" in out


def test_a_folder_without_training_data_says_what_is_missing(labels_csv, tmp_path, capsys):
    data, _ = labels_csv
    lone = tmp_path / "lone"
    for path in [*data.glob("test/*"), data / "sample_submission.csv"]:
        link(path, lone / path.relative_to(data))
    code, out = new(capsys, lone, "--out", tmp_path / "lone.yaml")
    assert code == 3 and "no training data recognised" in out and "train/<label>/<image>" in out


@pytest.mark.slow
def test_generated_labels_csv_adapter_runs_end_to_end(labels_csv, tmp_path, capsys):
    data, _ = labels_csv
    spec = tmp_path / "weeds-csv.yaml"
    assert new(capsys, data, "--out", spec)[0] == 0
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    code = main(["run", str(spec), "--data", str(data), "--config", str(config), "--output-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CV accuracy:" in out
    (run_dir,) = (tmp_path / "runs" / "weeds-csv").iterdir()
    submission = pd.read_csv(run_dir / "submission.csv", dtype=str)
    sample = pd.read_csv(data / "sample_submission.csv", dtype=str)
    assert submission["id"].tolist() == sample["id"].tolist()
    assert set(submission["label"]) <= set(json.loads((run_dir / "classes.json").read_text()))
    assert main(["validate", str(spec), str(run_dir / "submission.csv"), "--data", str(data)]) == 0


@pytest.mark.slow
def test_generated_multi_label_adapter_runs_end_to_end(tmp_path, capsys):
    """``new`` then ``run`` on an ``id,tags`` competition: label sets in the submission, a held-out score
    well above chance, ``validate``, and ``predict --images`` agreeing with the submission."""
    from kagglekit.evaluation.metrics import mean_f1

    # 14 labels need more than the module's 6 images per class to be learnt from 2 folds
    class_folders = build_class_folder_competition(require(SEEDLINGS), tmp_path / "class-folders", per_class=20,
                                                   test_fraction=0.25)
    data, table = flatten(class_folders, tmp_path / "csv")
    multi = relabelled(data, tmp_path / "multi", tagged(table, " "), sample_column="tags")
    spec = tmp_path / "multi.yaml"
    assert new(capsys, multi, "--out", spec)[0] == 0
    config = tmp_path / "tiny.yaml"
    # a head on cached features: epochs cost next to nothing at 48 images, and 3 would learn little
    config.write_text(yaml.safe_dump({**TINY, "image_size": 128, "tta": ["identity", "hflip"],
                                      "train": {**TINY["train"], "head_epochs": 60}}))
    code = main(["run", str(spec), "--data", str(multi), "--config", str(config), "--output-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = (tmp_path / "runs" / "multi").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["metric"] == "mean_f1" and 0 < metrics["cv_mean"] <= 1 and len(metrics["fold_scores"]) == 2

    # held out: the test images' true tags, against the same predictions shuffled over images (chance)
    solution = pd.read_csv(class_folders / "solution.csv", dtype=str)
    truth = dict(zip([Path(f).stem for f in solution["file"]], tags_of(solution["species"].tolist(), " ")))
    submission = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    true_tags = [truth[i] for i in submission["id"]]
    held_out = mean_f1(true_tags, submission["tags"])
    rng = np.random.default_rng(0)  # a permutation test: how often shuffled predictions score as well
    shuffled = np.array([mean_f1(true_tags, rng.permutation(submission["tags"])) for _ in range(200)])
    assert (shuffled >= held_out).mean() < 0.01, (held_out, shuffled.mean(), shuffled.max())

    submission = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    assert submission["id"].tolist() == pd.read_csv(multi / "sample_submission.csv", dtype=str)["id"].tolist()
    assert all(len(cell.split()) >= 1 for cell in submission["tags"])  # top-1 fallback: never no label
    assert main(["validate", str(spec), str(run_dir / "submission.csv"), "--data", str(multi)]) == 0

    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(run_dir), "--images", str(multi / "test"), "--out", str(predictions)]) == 0
    served = pd.read_csv(predictions, keep_default_na=False)
    by_id = dict(zip(submission["id"], submission["tags"]))
    assert [by_id[Path(p).stem] for p in served["image"]] == served["labels"].tolist()
