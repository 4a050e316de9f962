"""Build Kaggle-layout competition folders from labelled images on disk (tests, benchmarks, courses).

Builders: ``build_class_folder_competition`` (class folders), ``build_voc_competition`` (the PASCAL
VOC course format, from real masks), ``build_voc_competition_from_photos`` (the same format from real photos
with masks, e.g. CamVid's) and ``build_segmentation_folder_competition`` (image + mask
folders, e.g. CamVid).

From ``<source>/train/<label>/<image>`` it writes ``train/<label>/``, a held-out labelled ``test/``,
``sample_submission.csv`` and the hidden ``solution.csv`` a local Kaggle service scores against.
Files are hard-linked when possible (nothing is copied into the project: ``out`` lives elsewhere).
Each builder claims ``out`` through ``kagglekit.core.manifest``: it must be new, empty or an earlier
build, it must not overlap the source, and a rebuild (``force``) replaces only the files it wrote.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kagglekit.competitions.contract import (
    MultiLabelSegmentationCompetition,
    SegmentationCompetition,
)
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_text
from kagglekit.core.manifest import OwnedFolder, read_manifest, refuse_overlap
from kagglekit.data.images import is_image_file
from kagglekit.data.masks import read_label_map

log = logging.getLogger(__name__)


def build_class_folder_competition(
    source: Path,
    out: Path,
    id_column: str = "file",
    label_column: str = "species",
    test_fraction: float = 0.2,
    per_class: int | None = None,
    seed: int = 0,
    default_label: str | None = None,
    id_from: str = "name",
    classes: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Split each class of ``source/train`` into train and a labelled, hidden test set.

    Every class keeps at least one training and one test image, so each needs two or more (after
    ``per_class``). ``classes``, when the competition declares them, must be exactly the class folders.
    Test ids are the images' file names (``id_from="name"``) or stems (``"stem"``); class folders often
    reuse names (``1.jpg`` in each), so an image whose id another test image shares is renamed
    ``<label>_<name>`` (``<label>_<k>_<name>`` if even that is taken): every test id is unique.
    ``out`` must be new, empty or an earlier build: a complete build with the same options is reused,
    a different one is replaced only with ``force`` (see ``kagglekit.core.manifest``).
    """
    source, out = Path(source), Path(out)
    root = source / "train"
    if not root.is_dir():
        raise DataError(f"{root}: expected <source>/train/<label>/<image>")
    options = {"source": source.resolve(), "id_column": id_column, "label_column": label_column,
               "test_fraction": test_fraction, "per_class": per_class, "seed": seed,
               "default_label": default_label, "id_from": id_from}
    owned = _claim(out, "prepare", source, options, force, [id_column, label_column])
    if owned is None:
        return out
    split = _split_classes(root, test_fraction, per_class, seed, classes)
    chosen = [(path, label) for label, (_, test) in split.items() for path in test]
    id_of = (lambda name: name) if id_from == "name" else (lambda name: Path(name).stem)
    names = _test_names(chosen, id_of)
    links = {f"train/{label}/{path.name}": path for label, (train, _) in split.items() for path in train}
    links |= {f"test/{name}": path for name, (path, _) in zip(names, chosen)}
    owned.replace([*links, "sample_submission.csv", "solution.csv"], options)
    for name, path in links.items():
        _link(path, out / name)
    rows = sorted((id_of(name), label) for name, (_, label) in zip(names, chosen))
    solution = pd.DataFrame(rows, columns=[id_column, label_column])
    if solution[id_column].duplicated().any():  # the sample submission must name each test image once
        raise DataError(f"{out}: duplicate test ids {sorted(set(solution[id_column][solution[id_column].duplicated()]))[:5]}")
    sample = solution.assign(**{label_column: default_label or next(iter(split))})
    _finish(out, owned, solution, sample)
    return out


def _split_classes(root: Path, test_fraction: float, per_class: int | None, seed: int,
                   classes: Sequence[str] | None) -> dict[str, tuple[list[Path], list[Path]]]:
    """label → (train images, test images), each class shuffled by ``seed`` and cut to ``per_class``."""
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not labels:
        raise DataError(f"{root}: no class folders (expected {root}/<label>/<image>)")
    if classes is not None and set(labels) != set(classes):
        unknown, missing = sorted(set(labels) - set(classes)), sorted(set(classes) - set(labels))
        raise DataError(f"{root}: the class folders do not match the competition's labels "
                        f"(not labels: {', '.join(unknown) or 'none'}; missing: {', '.join(missing) or 'none'})")
    rng = random.Random(seed)
    split, short = {}, []
    for label in labels:
        files = sorted(p for p in (root / label).iterdir() if is_image_file(p))
        rng.shuffle(files)
        if per_class is not None:
            files = files[:per_class]
        if len(files) < 2:
            short.append(f"{label} ({len(files)})")
        n_test = min(max(round(len(files) * test_fraction), 1), len(files) - 1)
        split[label] = (files[n_test:], files[:n_test])
    if short:
        cap = f" with --per-class {per_class}" if per_class is not None else ""
        raise DataError(f"{root}: every class needs at least 2 images (one for train, one for test){cap}; "
                        f"too few in {', '.join(short[:5])}{', ...' if len(short) > 5 else ''}")
    return split


def _test_names(chosen: list[tuple[Path, str]], id_of) -> list[str]:
    """A file name for each (image, label) in the test set whose id (case aside) no other one has."""
    def key(name: str) -> str:
        return id_of(name).casefold()  # two names differing in case are one file on some file systems

    shared = Counter(key(path.name) for path, _ in chosen)
    taken = {id_ for id_, n in shared.items() if n == 1}
    names = []
    for path, label in chosen:
        name = path.name
        if shared[key(name)] > 1:
            name, k = f"{label}_{path.name}", 1
            while key(name) in taken:
                k += 1
                name = f"{label}_{k}_{path.name}"
            taken.add(key(name))
        names.append(name)
    return names


def _claim(out: Path, made_by: str, source: Path, options: dict, force: bool,
           columns: list[str]) -> OwnedFolder | None:
    """``out`` claimed for a build from ``source``, or None when the build there is to be reused.
    ``columns`` are those of the solution and sample submission this build writes."""
    refuse_overlap(out, {"the source": source})  # test images would leak into train, or train into test
    if not force and read_manifest(out) is None and (out / "solution.csv").is_file():
        _refuse_other_competition(out, columns)
        log.warning("%s: built before kagglekit kept manifests; reusing it as it is (pass a new folder to rebuild)",
                    out)
        return None
    owned = OwnedFolder(out, made_by)
    return None if owned.reusable(options, force) else owned


def _refuse_other_competition(out: Path, columns: list[str]) -> None:
    """A ConfigError unless the manifest-less folder ``out`` holds a build of this competition (an old
    kagglekit's): its solution and sample submission have this competition's ``columns``. Another
    competition's files (a Kaggle download that ships its solution.csv, say) are never taken for one."""
    found = {name: _csv_header(out / name) for name in ("solution.csv", "sample_submission.csv")}
    wrong = {name: header for name, header in found.items() if header != columns}
    if wrong:
        seen = "; ".join(f"{name} {header}" if isinstance(header, str) else f"{name} has columns {', '.join(header)}"
                         for name, header in wrong.items())
        raise ConfigError(f"{out} holds another competition's files, not a kagglekit build of this one ({seen}; "
                          f"this competition's have columns {', '.join(columns)}); pass an empty or new folder "
                          "(nothing there is deleted or overwritten)")


def _csv_header(path: Path) -> list[str] | str:
    """The column names of a CSV file, or why there are none ("is missing", "is unreadable")."""
    if not path.is_file():
        return "is missing"
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return "is unreadable"


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:  # another file system, or links not allowed
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
                          n_train: int = 700, n_test: int = 700, seed: int = 0, force: bool = False) -> Path:
    """The PASCAL VOC course competition's layout, from real VOC masks (``shared/data/voc-masks``).

    Writes ``train/train_set.csv`` (Id + 20 classes), ``train/img/train_{Id}.npy`` (images rendered
    from the masks by ``render_from_mask``: NOT photographs), ``train/seg/train_{Id}.npy`` (the real
    masks, void 255 kept), ``test/test_set.csv`` (all -1), ``test/img/test_{Id}.npy``,
    ``sample_submission.csv`` (every prediction empty) and the hidden ``solution.csv`` (Id, Predicted).
    """
    masks_root, out = Path(masks_root), Path(out)
    options = {"masks": masks_root.resolve(), "competition": competition.name, "n_train": n_train,
               "n_test": n_test, "seed": seed}
    owned = _claim(out, "prepare-voc", masks_root, options, force, [competition.id_column, competition.value_column])
    if owned is None:
        return out
    table = pd.read_csv(masks_root / "labels.csv", dtype={"id": str})
    if n_train + n_test > len(table):
        raise DataError(f"{masks_root}: {len(table)} masks, fewer than the {n_train} + {n_test} asked for")
    order = np.random.default_rng(seed).permutation(len(table))

    def pairs(rows):
        for row in rows:
            label_map = read_label_map(masks_root / "masks" / f"{table.at[row, 'id']}.png")
            yield render_from_mask(label_map, seed=int(row)), label_map

    _write_voc_layout(out, owned, options, competition, {"train": pairs(order[:n_train]),
                                                         "test": pairs(order[n_train:n_train + n_test])},
                      {"train": n_train, "test": n_test})
    return out


#: CamVid's classes as VOC classes, for ``build_voc_competition_from_photos``: cars, pedestrians and cyclists
#: (VOC has no rider class: a CamVid "Bicyclist" region, bicycle and rider, becomes bicycle); the rest background.
CAMVID_AS_VOC = {8: "car", 9: "person", 10: "bicycle"}


def build_voc_competition_from_photos(source: Path, competition: MultiLabelSegmentationCompetition, out: Path,
                                      class_map: dict[int, str], void_label: int, test_split: str = "val",
                                      force: bool = False) -> Path:
    """The PASCAL VOC course layout from real photographs with real masks (an image + mask folder as
    ``build_segmentation_folder_competition`` reads, e.g. CamVid): the photographs as they are, each mask
    relabelled by ``class_map`` (source label -> VOC class name; unmapped labels are background,
    ``void_label`` becomes VOC's 255), the labels the classes each mask holds. Rows of ``split.csv`` in
    ``test_split`` are the hidden test set. Where ``build_voc_competition`` tests the format, this measures models.
    """
    source, out = Path(source), Path(out)
    unknown = sorted(set(class_map.values()) - set(competition.classes))
    if unknown:
        raise ConfigError(f"class_map: {unknown} are not classes of {competition.name}")
    options = {"source": source.resolve(), "competition": competition.name, "test_split": test_split,
               "class_map": {str(k): v for k, v in sorted(class_map.items())}, "void_label": void_label}
    owned = _claim(out, "prepare-voc-photos", source, options, force, [competition.id_column, competition.value_column])
    if owned is None:
        return out
    lookup = np.zeros(256, np.uint8)
    for label, name in class_map.items():
        lookup[label] = competition.classes.index(name) + 1
    lookup[void_label] = competition.void_label
    split = pd.read_csv(source / "split.csv", dtype=str)
    stems = {"train": split.loc[split["split"] != test_split, "stem"].tolist(),
             "test": split.loc[split["split"] == test_split, "stem"].tolist()}

    def pairs(names):
        for stem in names:
            image = next((source / "images").glob(f"{stem}.*"), None)
            if image is None:
                raise DataError(f"{source / 'split.csv'}: no image {source / 'images' / stem}.* for stem {stem!r}")
            with Image.open(image) as opened:
                photo = np.asarray(opened.convert("RGB"))
            yield photo, lookup[read_label_map(source / "masks" / f"{stem}.png")]

    _write_voc_layout(out, owned, options, competition, {name: pairs(names) for name, names in stems.items()},
                      {name: len(names) for name, names in stems.items()})
    return out


def _write_voc_layout(out: Path, owned: OwnedFolder, options: dict, competition: MultiLabelSegmentationCompetition,
                      splits: dict, counts: dict[str, int]) -> None:
    """Write the course layout from ``splits`` ("train", "test": iterables of (RGB image, VOC label map)):
    ``train/train_set.csv`` (Id + 20 classes: those the mask holds), ``train/img/train_{Id}.npy``,
    ``train/seg/train_{Id}.npy`` (void 255 kept), ``test/test_set.csv`` (all -1), ``test/img/test_{Id}.npy``,
    ``sample_submission.csv`` (every prediction empty) and the hidden ``solution.csv`` (Id, Predicted)."""
    owned.replace([f"{split}/{kind}/{split}_{i}.npy" for split, n in counts.items() for i in range(n)
                   for kind in (("img", "seg") if split == "train" else ("img",))]
                  + ["train/train_set.csv", "test/test_set.csv", "sample_submission.csv", "solution.csv"], options)
    classes = competition.classes
    foreground = np.arange(1, len(classes) + 1)
    for split, pairs in splits.items():
        label_maps = []
        for id_, (image, label_map) in enumerate(pairs):
            label_maps.append(label_map)
            (out / split / "img").mkdir(parents=True, exist_ok=True)
            np.save(out / split / "img" / f"{split}_{id_}.npy", image)
            if split == "train":
                (out / split / "seg").mkdir(parents=True, exist_ok=True)
                np.save(out / split / "seg" / f"{split}_{id_}.npy", label_map)
        ids = list(range(len(label_maps)))
        labels = np.array([np.isin(foreground, m) for m in label_maps], dtype=np.int64).reshape(-1, len(classes))
        frame = pd.DataFrame(labels if split == "train" else -np.ones_like(labels), columns=classes)
        frame.insert(0, "Id", ids)
        atomic_write_text(out / split / f"{split}_set.csv", frame.to_csv(index=False, lineterminator="\n"))
    solution = competition.submission_frame(
        [str(i) for i in ids], labels, [np.where(m == competition.void_label, 0, m) for m in label_maps])
    sample = solution.assign(Predicted="")
    _finish(out, owned, solution, sample)


def build_segmentation_folder_competition(source: Path, competition: SegmentationCompetition, out: Path,
                                          test_split: str = "val", n_train: int | None = None,
                                          n_test: int | None = None, force: bool = False) -> Path:
    """A ``segmentation-folder`` competition from ``<source>/images``, ``masks`` and ``split.csv`` (CamVid).

    Rows of ``split.csv`` whose split is ``test_split`` become the hidden test set (its RLE rows are
    ``solution.csv``); the others are training data. ``n_train`` / ``n_test`` keep evenly spaced
    subsets for quick runs. Images and masks are hard-linked, not copied.
    """
    source, out = Path(source), Path(out)
    options = {"source": source.resolve(), "competition": competition.name, "test_split": test_split,
               "n_train": n_train, "n_test": n_test}
    owned = _claim(out, "prepare-segmentation-folder", source, options, force,
                   [competition.id_column, competition.value_column])
    if owned is None:
        return out
    split = pd.read_csv(source / "split.csv", dtype=str)
    links, test_masks = {}, []
    for name, rows, limit in (("train", split[split["split"] != test_split], n_train),
                              ("test", split[split["split"] == test_split], n_test)):
        stems = rows["stem"].tolist()
        if limit is not None and limit < len(stems):
            stems = [stems[i] for i in np.linspace(0, len(stems) - 1, limit).round().astype(int)]
        for stem in stems:
            image = next((source / "images").glob(f"{stem}.*"), None)
            if image is None:
                raise DataError(f"{source / 'split.csv'}: no image {source / 'images' / stem}.* for stem {stem!r}")
            links[f"{name}/images/{image.name}"] = image
            mask = source / "masks" / f"{stem}.png"
            if name == "train":
                links[f"{name}/masks/{mask.name}"] = mask
            else:
                test_masks.append((stem, mask))
    owned.replace([*links, "sample_submission.csv", "solution.csv"], options)
    for name, path in links.items():
        _link(path, out / name)
    solution = pd.concat([competition.submission_frame([stem], [read_label_map(mask)]) for stem, mask in test_masks],
                         ignore_index=True)
    sample = solution.assign(**{competition.value_column: ""})
    _finish(out, owned, solution, sample)
    return out


def _finish(out: Path, owned, solution: pd.DataFrame, sample: pd.DataFrame) -> None:
    """Write the answer files last: a folder with its solution (and a finished manifest) is complete."""
    atomic_write_text(out / "sample_submission.csv", sample.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "solution.csv", solution.to_csv(index=False, lineterminator="\n"))
    owned.finish()
