"""Build Kaggle-layout competition folders from labelled images on disk (tests, benchmarks, courses).

Builders: ``build_class_folder_competition`` (class folders), ``build_voc_competition`` (the PASCAL
VOC course format, from real masks) and ``build_segmentation_folder_competition`` (image + mask
folders, e.g. CamVid).

From ``<source>/train/<label>/<image>`` it writes ``train/<label>/``, a held-out labelled ``test/``,
``sample_submission.csv`` and the hidden ``solution.csv`` a local Kaggle service scores against.
Files are hard-linked when possible (nothing is copied into the project: ``out`` lives elsewhere).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import (
    MultiLabelSegmentationCompetition,
    SegmentationCompetition,
)
from kagglekit.core.errors import DataError
from kagglekit.core.fileio import atomic_write_text
from kagglekit.data.images import is_image_file


def build_class_folder_competition(
    source: Path,
    out: Path,
    id_column: str = "file",
    label_column: str = "species",
    test_fraction: float = 0.2,
    per_class: int | None = None,
    seed: int = 0,
    default_label: str | None = None,
) -> Path:
    """Split each class of ``source/train`` into train and a labelled, hidden test set."""
    source, out = Path(source), Path(out)
    root = source / "train"
    if not root.is_dir():
        raise DataError(f"{root}: expected <source>/train/<label>/<image>")
    if (out / "solution.csv").is_file():
        return out  # complete already: the solution is written last
    rng = random.Random(seed)
    test_rows = []
    labels = sorted(p.name for p in root.iterdir() if p.is_dir())
    for label in labels:
        files = sorted(p for p in (root / label).iterdir() if is_image_file(p))
        rng.shuffle(files)
        if per_class is not None:
            files = files[:per_class]
        n_test = round(len(files) * test_fraction)
        for path in files[n_test:]:
            _link(path, out / "train" / label / path.name)
        for path in files[:n_test]:
            _link(path, out / "test" / path.name)
            test_rows.append((path.name, label))
    test_rows.sort()
    solution = pd.DataFrame(test_rows, columns=[id_column, label_column])
    sample = solution.assign(**{label_column: default_label or labels[0]})
    atomic_write_text(out / "sample_submission.csv", sample.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "solution.csv", solution.to_csv(index=False, lineterminator="\n"))
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


VOC_CLASS_COUNT = 20


def render_from_mask(label_map: np.ndarray, seed: int) -> np.ndarray:
    """A stand-in photograph for a real label mask (tests and benchmarks of the VOC *format* only).

    THESE ARE NOT PHOTOGRAPHS: each class is painted in its own colour with its own stripe texture,
    the background is a smooth random gradient, void pixels are painted as background, and Gaussian
    noise covers everything. The masks are real VOC masks, so codecs, metrics and submissions are
    exercised at real scale; a model's score on these images says nothing about real VOC.
    """
    rng = np.random.default_rng(seed)
    height, width = label_map.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    corner = rng.uniform(40, 200, size=(2, 2, 3))  # bilinear background gradient
    fy, fx = (yy / height)[..., None], (xx / width)[..., None]
    image = (corner[0, 0] * (1 - fy) * (1 - fx) + corner[0, 1] * (1 - fy) * fx
             + corner[1, 0] * fy * (1 - fx) + corner[1, 1] * fy * fx)
    for c in np.unique(label_map):
        if c == 0 or c > VOC_CLASS_COUNT:
            continue
        style = np.random.default_rng(1000 + int(c))  # the same look for a class in every image
        colour, angle, period = style.uniform(20, 235, 3), style.uniform(0, np.pi), style.uniform(4, 16)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)[..., None]
        where = label_map == c
        image[where] = (colour + 25 * stripes)[where]
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def build_voc_competition(masks_root: Path, competition: MultiLabelSegmentationCompetition, out: Path,
                          n_train: int = 700, n_test: int = 700, seed: int = 0) -> Path:
    """The PASCAL VOC course competition's layout, from real VOC masks (``shared/data/voc-masks``).

    Writes ``train/train_set.csv`` (Id + 20 classes), ``train/img/train_{Id}.npy`` (images rendered
    from the masks by ``render_from_mask``: NOT photographs), ``train/seg/train_{Id}.npy`` (the real
    masks, void 255 kept), ``test/test_set.csv`` (all -1), ``test/img/test_{Id}.npy``,
    ``sample_submission.csv`` (every prediction empty) and the hidden ``solution.csv`` (Id, Predicted).
    """
    from kagglekit.data.masks import read_label_map

    masks_root, out = Path(masks_root), Path(out)
    if (out / "solution.csv").is_file():
        return out  # complete already: the solution is written last
    table = pd.read_csv(masks_root / "labels.csv", dtype={"id": str})
    if n_train + n_test > len(table):
        raise DataError(f"{masks_root}: {len(table)} masks, fewer than the {n_train} + {n_test} asked for")
    order = np.random.default_rng(seed).permutation(len(table))
    classes = competition.classes
    splits = {"train": order[:n_train], "test": order[n_train:n_train + n_test]}
    for split, rows in splits.items():
        ids, label_maps = list(range(len(rows))), []
        for id_, row in zip(ids, rows):
            label_map = read_label_map(masks_root / "masks" / f"{table.at[row, 'id']}.png")
            label_maps.append(label_map)
            (out / split / "img").mkdir(parents=True, exist_ok=True)
            np.save(out / split / "img" / f"{split}_{id_}.npy", render_from_mask(label_map, seed=int(row)))
            if split == "train":
                (out / split / "seg").mkdir(parents=True, exist_ok=True)
                np.save(out / split / "seg" / f"{split}_{id_}.npy", label_map)
        labels = table.loc[rows, classes].to_numpy()
        frame = pd.DataFrame(labels if split == "train" else -np.ones_like(labels), columns=classes)
        frame.insert(0, "Id", ids)
        atomic_write_text(out / split / f"{split}_set.csv", frame.to_csv(index=False, lineterminator="\n"))
    solution = competition.submission_frame(
        [str(i) for i in ids], labels, [np.where(m == competition.void_label, 0, m) for m in label_maps])
    sample = solution.assign(Predicted="")
    atomic_write_text(out / "sample_submission.csv", sample.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "solution.csv", solution.to_csv(index=False, lineterminator="\n"))
    return out


def build_segmentation_folder_competition(source: Path, competition: SegmentationCompetition, out: Path, test_split: str = "val",
                                          n_train: int | None = None, n_test: int | None = None) -> Path:
    """A ``segmentation-folder`` competition from ``<source>/images``, ``masks`` and ``split.csv`` (CamVid).

    Rows of ``split.csv`` whose split is ``test_split`` become the hidden test set (its RLE rows are
    ``solution.csv``); the others are training data. ``n_train`` / ``n_test`` keep evenly spaced
    subsets for quick runs. Images and masks are hard-linked, not copied.
    """
    source, out = Path(source), Path(out)
    if (out / "solution.csv").is_file():
        return out
    from kagglekit.data.masks import read_label_map

    split = pd.read_csv(source / "split.csv", dtype=str)
    solution = []
    for name, rows, limit in (("train", split[split["split"] != test_split], n_train),
                              ("test", split[split["split"] == test_split], n_test)):
        stems = rows["stem"].tolist()
        if limit is not None and limit < len(stems):
            stems = [stems[i] for i in np.linspace(0, len(stems) - 1, limit).round().astype(int)]
        for stem in stems:
            image = next((source / "images").glob(f"{stem}.*"))
            _link(image, out / name / "images" / image.name)
            mask = source / "masks" / f"{stem}.png"
            if name == "train":
                _link(mask, out / name / "masks" / mask.name)
            else:
                solution.append(competition.submission_frame([stem], [read_label_map(mask)]))
    solution = pd.concat(solution, ignore_index=True)
    sample = solution.assign(**{competition.value_column: ""})
    atomic_write_text(out / "sample_submission.csv", sample.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "solution.csv", solution.to_csv(index=False, lineterminator="\n"))
    return out
