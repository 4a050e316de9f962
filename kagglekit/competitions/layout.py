"""Recognising a competition folder's layout: the YAML adapter ``kagglekit new`` writes, and why.

The folder is read as Kaggle ships it (a sample submission, image folders, CSVs) and mapped onto a
generic kind:

- ``class-folder``: ``<train>/<label>/*.img``, ``<test>/*.img``, a sample ``id,label``;
- ``labels-csv``: a CSV of ``id,label`` (ids are the training images' file names or stems), or of one-hot
  0/1 columns, and the training images in one folder;
- ``multilabel-csv``: the same with several labels per image: a cell of labels (``"cat dog"``) or 0/1
  columns with several 1s in a row;
- ``segmentation-folder``: an image folder and a mask folder (label maps) with the same stems, and a
  sample with one row per test image and class, ``<stem>_<class>``, holding run-length-encoded masks.

Every decision is reported: ``inferred`` (read from the files), ``assumed`` (a default the files cannot
tell: check it) and, when no kind fits, ``missing`` (what kagglekit would need). Layouts it recognises
but cannot train yet (one submission column per class) are named as such.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kagglekit.data.images import IMAGE_SUFFIXES
from kagglekit.submission.writer import read_csv_strings

#: How deep image folders are looked for (``train/images/`` is two levels down).
MAX_DEPTH = 3
#: Folder-name words that mark a mask folder.
MASK_WORDS = ("mask", "label", "seg", "annot", "gt")
#: Masks read to find the label values (enough to see every class of a typical competition).
MASKS_SAMPLED = 30
#: Separators of several labels in one cell ("cat dog", "cat|dog", "cat;dog").
MULTI_LABEL_SEPARATORS = (" ", "|", ";")
MULTI_LABEL_SPLIT = re.compile(r"[ |;]+")
RLE_NAME = re.compile(r"encoded|pixels|rle", re.IGNORECASE)


@dataclass
class Layout:
    """What ``infer_layout`` found: a YAML-able competition spec, or why there is none."""

    spec: dict | None = None
    inferred: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageFolder:
    path: str  # relative to the competition folder, POSIX
    names: frozenset[str]
    stems: frozenset[str]

    def id_from(self, ids: set[str]) -> str | None:
        """How ``ids`` name this folder's images: ``"name"``, ``"stem"``, or None when some are not here."""
        if ids <= self.names:
            return "name"
        if ids <= self.stems:
            return "stem"
        return None


def infer_layout(folder: Path, name: str, slug: str | None = None, title: str | None = None) -> Layout:
    folder = Path(folder)
    layout = Layout()
    head = {"name": name, "slug": slug or name, "title": title or name.replace("-", " ").title()}
    if slug is None:
        layout.assumed.append(f"the Kaggle slug is {name!r} (set `slug:` to download or submit)")
    sample_path = _sample_submission(folder, layout)
    if sample_path is None:
        return layout
    sample = read_csv_strings(sample_path)
    id_column, values = sample.columns[0], list(sample.columns[1:])
    layout.inferred.append(f"sample submission {sample_path.name}: {len(sample)} rows, id column {id_column!r}, "
                           f"value column(s) {', '.join(map(repr, values)) or 'none'}")
    images = _image_folders(folder)
    head |= {"sample_submission": sample_path.name, "id_column": id_column}
    if len(values) == 1 and _looks_like_rle(values[0], sample[values[0]]):
        return _segmentation(folder, layout, head, sample, images)
    return _classification(folder, layout, head, sample, images)


def _sample_submission(folder: Path, layout: Layout) -> Path | None:
    csvs = sorted(p for p in folder.glob("*.csv") if p.is_file())
    named = [p for p in csvs if "sample" in p.name.lower() and "submission" in p.name.lower()] or \
            [p for p in csvs if "submission" in p.name.lower()]
    if not named:
        layout.missing.append(f"{folder}: no sample submission (a CSV named like sample_submission.csv at the top "
                              f"of the folder; CSVs there: {', '.join(p.name for p in csvs) or 'none'})")
        return None
    if len(named) > 1:
        layout.assumed.append(f"of {', '.join(p.name for p in named)}, {named[0].name} is the sample submission")
    return named[0]


def _image_folders(root: Path) -> list[ImageFolder]:
    """Every folder (``MAX_DEPTH`` levels down at most) that holds image files directly."""
    found = []
    for top, dirs, files in os.walk(root):
        relative = Path(top).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if len(relative.parts) < MAX_DEPTH else []
        pictures = [f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith(".")]
        if pictures and relative.parts:
            found.append(ImageFolder(relative.as_posix(), frozenset(pictures), frozenset(Path(f).stem for f in pictures)))
    return found


def _looks_like_rle(column: str, cells: pd.Series) -> bool:
    filled = [c for c in cells if c.strip()]
    if filled and all(_rle_numbers(c) is not None for c in filled[:200]):
        return any(len(_rle_numbers(c)) >= 2 for c in filled[:200])
    return bool(RLE_NAME.search(column))


def _rle_numbers(cell: str) -> list[int] | None:
    parts = cell.split()
    if len(parts) % 2 or not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]


# --- classification ---------------------------------------------------------------------------------------

def _classification(folder: Path, layout: Layout, head: dict, sample: pd.DataFrame,
                    images: list[ImageFolder]) -> Layout:
    values = list(sample.columns[1:])
    if len(values) != 1:
        layout.missing.append(
            f"the sample submission has {len(values)} value columns ({', '.join(values[:6])}"
            f"{', ...' if len(values) > 6 else ''}): kagglekit writes one label column per image; a submission "
            "with one column per class (probabilities or 0/1 labels) is not supported yet")
        return layout
    ids = set(sample[head["id_column"]])
    test = _folder_of(ids, images)
    if test is None:
        closest = max(images, key=lambda f: max(len(ids & f.names), len(ids & f.stems)), default=None)
        layout.missing.append(f"no image folder holds every id of the sample submission ({len(ids)} ids"
                              + (f"; closest: {closest.path}" if closest else "; no image folders found") + ")")
        return layout
    test_folder, id_from = test
    if len(test_folder.names) != len(ids):
        layout.missing.append(f"{test_folder.path}/ holds {len(test_folder.names)} images but the sample submission "
                              f"names {len(ids)}: every test image needs exactly one row")
        return layout
    label_column = values[0]
    layout.inferred.append(f"test images: {test_folder.path}/ ({len(ids)}), each named in the submission by its file "
                           f"{id_from}; one {label_column!r} per image")
    head |= {"label_column": label_column, "test_dir": test_folder.path, "id_from": id_from}
    others = [f for f in images if f is not test_folder]
    classes = _class_folders(others, test_folder)
    if classes is not None:
        train_dir, labels = classes
        layout.inferred.append(f"training images: one subfolder of {train_dir}/ per class ({len(labels)} classes: "
                               f"{_few(labels)})")
        spec = {"kind": "class-folder", **head, "train_dir": train_dir, "classes": labels}
        return _finish_classification(layout, spec)
    return _labels_csv(folder, layout, head, others, id_from)


def _folder_of(ids: set[str], images: list[ImageFolder]) -> tuple[ImageFolder, str] | None:
    """The image folder that ``ids`` name, and how; one holding exactly those images first."""
    holding = [(f, f.id_from(ids)) for f in images if f.id_from(ids) is not None]
    return min(holding, key=lambda found: len(found[0].names) - len(ids), default=None)


def _class_folders(images: list[ImageFolder], test: ImageFolder) -> tuple[str, list[str]] | None:
    """(train folder, its class subfolders) where a folder without images has two or more image subfolders."""
    parents = Counter(Path(f.path).parent.as_posix() for f in images)
    holding = {f.path for f in images}
    for parent, count in parents.most_common():
        inside_test = parent == test.path or parent.startswith(f"{test.path}/")
        if parent != "." and parent not in holding and count >= 2 and not inside_test:
            return parent, sorted(Path(f.path).name for f in images if Path(f.path).parent.as_posix() == parent)
    return None


def _labels_csv(folder: Path, layout: Layout, head: dict, images: list[ImageFolder], id_from: str) -> Layout:
    sample_name = head["sample_submission"]
    tables = [p for p in sorted(folder.glob("*.csv")) if p.name != sample_name]
    for path in tables:
        table = read_csv_strings(path)
        for column in table.columns:
            ids = set(table[column])
            train = next((f for f in images if f.id_from(ids) is not None), None) if ids else None
            if train is None:
                continue
            if train.id_from(ids) != id_from:
                layout.missing.append(f"{path.name}'s {column!r} names training images by file {train.id_from(ids)}, "
                                      f"the sample submission names test images by file {id_from}: the labels-csv kind "
                                      "needs one convention")
                return layout
            layout.inferred.append(f"labels: {path.name}, id column {column!r} naming the images of {train.path}/ "
                                   f"({len(train.names)} images, {len(table)} labelled)")
            return _label_column(layout, head, path.name, table, column, train)
    layout.missing.append(
        "no training data recognised: neither a folder of class subfolders (train/<label>/<image>) nor a CSV whose "
        f"column names every image of one folder ({', '.join(f.path for f in images) or 'no other image folders'}; "
        f"CSVs: {', '.join(p.name for p in tables) or 'none'})")
    return layout


def _label_column(layout: Layout, head: dict, csv_name: str, table: pd.DataFrame, id_column: str,
                  train: ImageFolder) -> Layout:
    others = [c for c in table.columns if c != id_column]
    binary = [c for c in others if set(table[c]) <= {"0", "1"}]
    spec = {**head, "labels_csv": csv_name, "train_dir": train.path}
    if id_column != head["id_column"]:
        spec["labels_id_column"] = id_column
    if len(binary) >= 2 and len(binary) == len(others):
        ones = (table[binary] == "1").sum(axis=1)
        one_hot = bool((ones == 1).all())
        layout.inferred.append(f"{csv_name} has {len(binary)} 0/1 label columns ({_few(binary)}): "
                               + ("one-hot (one 1 per row), so one class per image" if one_hot else
                                  f"multi-label ({int((ones > 1).sum())} rows with several 1s, "
                                  f"{int((ones == 0).sum())} with none); the classes are the columns"))
        spec |= {"kind": "labels-csv" if one_hot else "multilabel-csv", "label_columns": binary}
        return _finish_classification(layout, spec) if one_hot else _finish_multilabel(layout, spec, " ")
    submitted = head["label_column"]
    column = submitted if submitted in others else (others[0] if len(others) == 1 else None)
    if column is None:
        layout.missing.append(f"{csv_name} has {len(others)} columns besides {id_column!r} ({_few(others)}) and none "
                              f"is named like the submission's {submitted!r}: which one is the label?")
        return layout
    labels = table[column]
    tokens = labels.map(lambda cell: [t for t in MULTI_LABEL_SPLIT.split(cell.strip()) if t])
    several = int((tokens.map(len) > 1).sum())
    vocabulary = sorted({t for row in tokens for t in row})
    if column != submitted:
        spec["labels_label_column"] = column
    if several and _recombines(labels):
        separator = Counter(c for cell in labels for c in MULTI_LABEL_SEPARATORS if c in cell.strip()).most_common(1)[0][0]
        layout.inferred.append(f"{csv_name}'s {column!r} holds several labels per image, separated by {separator!r} "
                               f"({several} of {len(labels)} rows; {len(vocabulary)} labels: {_few(vocabulary)})")
        spec |= {"kind": "multilabel-csv", "classes": vocabulary}
        return _finish_multilabel(layout, spec, separator)
    if labels.nunique() > max(0.5 * len(labels), 1) and len(labels) > 10:
        layout.missing.append(f"{csv_name}'s {column!r} has {labels.nunique()} distinct values in {len(labels)} rows: "
                              "a number to regress or an id, not a class label; regression is not supported")
        return layout
    classes = sorted(set(labels))
    layout.inferred.append(f"labels: column {column!r}, {len(classes)} classes ({_few(classes)})")
    spec |= {"kind": "labels-csv", "classes": classes}
    return _finish_classification(layout, spec)


def _recombines(labels: pd.Series) -> bool:
    """Whether a column's cells are sets of labels rather than names with spaces in them: labels come
    back in other combinations. Fewer distinct labels than distinct cells, one cell's labels inside
    another's ("cat" and "cat dog"), or a label in many different cells ("clear primary", "haze
    primary", ...) say sets; "Common wheat" and "Common Chickweed" (two names sharing a word) do not."""
    cells = {frozenset(t for t in MULTI_LABEL_SPLIT.split(cell.strip()) if t) for cell in set(labels)}
    vocabulary = set().union(*cells)
    if len(vocabulary) < len(cells) or any(a < b for a in cells for b in cells):
        return True
    spread = Counter(t for cell in cells for t in cell)
    return max(spread.values(), default=0) >= max(3, len(cells) / 4)


def _finish_multilabel(layout: Layout, spec: dict, separator: str) -> Layout:
    spec |= {"separator": separator, "metric": "mean_f1"}
    layout.assumed.append(f"the submission lists each image's labels in {spec['label_column']!r} separated by "
                          f"{separator!r}, and the metric is the mean F1 over images (Kaggle's Evaluation page says "
                          "which; set `metric:`, e.g. mean_f2, and `separator:`)")
    layout.spec = {"kind": spec.pop("kind"), **spec}
    return layout


def _finish_classification(layout: Layout, spec: dict) -> Layout:
    spec["metric"] = "accuracy"
    layout.assumed.append("the metric is accuracy (Kaggle's Evaluation page says which; set `metric:`, "
                          "e.g. micro_f1)")
    layout.spec = {"kind": spec.pop("kind"), **spec}
    return layout


# --- segmentation -----------------------------------------------------------------------------------------

def _segmentation(folder: Path, layout: Layout, head: dict, sample: pd.DataFrame,
                  images: list[ImageFolder]) -> Layout:
    from kagglekit.data.masks import read_label_map

    value_column = sample.columns[1]
    rows = [re.fullmatch(r"(.+)_(\d+)", i) for i in sample[head["id_column"]]]
    if not all(rows):
        bad = next(i for i, m in zip(sample[head["id_column"]], rows) if not m)
        layout.missing.append(f"the sample submission's ids are not <image>_<class> (e.g. {bad!r}): the "
                              "segmentation-folder kind needs one row per test image and class")
        return layout
    stems = list(dict.fromkeys(m.group(1) for m in rows))
    n_classes = max(int(m.group(2)) for m in rows) + 1
    if len(rows) != len(stems) * n_classes:
        layout.missing.append(f"the sample submission has {len(rows)} rows, not one per image and class "
                              f"({len(stems)} images x {n_classes} classes)")
        return layout
    layout.inferred.append(f"RLE masks in {value_column!r}, one row per test image and class: {len(stems)} images, "
                           f"{n_classes} classes (<image>_0 .. <image>_{n_classes - 1})")
    test = next((f for f in images if f.stems == set(stems)), None)
    if test is None:
        layout.missing.append(f"no image folder holds exactly the sample submission's {len(stems)} test images")
        return layout
    pair = _image_mask_pair([f for f in images if f is not test], folder)
    if pair is None:
        layout.missing.append("no training image folder with a mask folder beside it (label maps with the images' "
                              f"stems, e.g. train/images/ + train/masks/; image folders: "
                              f"{', '.join(f.path for f in images if f is not test)})")
        return layout
    train, masks, suffix = pair
    layout.inferred.append(f"training images {train.path}/ ({len(train.names)}) with masks {masks.path}/<stem>{suffix}; "
                           f"test images {test.path}/")
    found = set()
    for name in sorted(masks.names)[:: max(1, len(masks.names) // MASKS_SAMPLED)]:
        found |= set(int(v) for v in set(read_label_map(folder / masks.path / name).ravel().tolist()))
    extra = sorted(v for v in found if v >= n_classes)
    if len(extra) > 1:
        layout.missing.append(f"the masks hold values {extra}, beyond the {n_classes} classes of the sample "
                              "submission: the segmentation-folder kind allows one void value")
        return layout
    spec = {"kind": "segmentation-folder", **head, "classes": [f"class_{k}" for k in range(n_classes)]}
    layout.assumed.append(f"the classes are named class_0 .. class_{n_classes - 1} (rename them in `classes:`)")
    if extra:
        spec["void_label"] = extra[0]
        layout.inferred.append(f"mask value {extra[0]} is void (not a class of the submission): ignored in training")
    spec |= {"train_images": train.path, "train_masks": masks.path, "test_images": test.path, "mask_suffix": suffix,
             "value_column": value_column, **_rle_settings(sample[value_column], layout)}
    group = _group_pattern(sorted(train.stems))
    if group:
        spec["group_pattern"] = group
        layout.inferred.append(f"image names share prefixes (sequences): `group_pattern: {group!r}` keeps each in one "
                               "fold")
    spec["metric"] = "dice"
    layout.assumed.append("the metric is Dice (set `metric:` if Kaggle's Evaluation page says otherwise)")
    layout.spec = spec
    return layout


def _image_mask_pair(images: list[ImageFolder], root: Path) -> tuple[ImageFolder, ImageFolder, str] | None:
    """(images, masks, mask-name suffix after the image stem) for the best-matching pair of folders."""
    def named_mask(f: ImageFolder) -> bool:
        return any(word in Path(f.path).name.lower() for word in MASK_WORDS)

    pairs = []
    for masks in images:
        for train in images:
            if train is masks or named_mask(train):
                continue
            suffix, matched = _mask_suffix(train, masks)
            if suffix is not None and matched == len(train.stems) and (named_mask(masks) or suffix.endswith(".png")):
                pairs.append((train, masks, suffix))
    pairs.sort(key=lambda pair: not named_mask(pair[1]))  # a folder named like masks first
    return pairs[0] if pairs else None


def _mask_suffix(train: ImageFolder, masks: ImageFolder) -> tuple[str | None, int]:
    """The most common ``mask name - image stem`` and how many training images have a mask that way."""
    suffixes = Counter()
    for mask in masks.names:
        stem = mask
        while stem and stem not in train.stems:
            stem = stem[:-1]
        if stem:
            suffixes[mask[len(stem):]] += 1
    if not suffixes:
        return None, 0
    suffix = suffixes.most_common(1)[0][0]
    return suffix, sum(f"{s}{suffix}" in masks.names for s in train.stems)


def _rle_settings(cells: pd.Series, layout: Layout) -> dict:
    filled = [n for n in (_rle_numbers(c) for c in cells if c.strip()) if n]
    empties = Counter(c for c in cells if _rle_numbers(c) is None or not c.strip())
    settings = {"rle_order": "F"}
    layout.assumed.append("RLE runs go down columns first (rle_order F, Kaggle's usual \"top to bottom, then left to "
                          "right\"); set rle_order: C if the Evaluation page numbers pixels along rows")
    if any(n[0] == 0 for n in filled):
        settings["rle_base"] = 0
        layout.inferred.append("RLE pixel numbers start at 0 (a run in the sample starts at pixel 0)")
    else:
        settings["rle_base"] = 1
        layout.assumed.append("RLE pixel numbers start at 1 (Kaggle's usual; no run in the sample says otherwise)")
    empty = empties.most_common(1)[0][0] if empties else ""
    settings["rle_empty"] = empty
    (layout.inferred if empties else layout.assumed).append(f"an empty mask is written {empty!r}")
    return settings


def _group_pattern(stems: list[str]) -> str | None:
    """``^([^_]+)_`` when the stems' prefixes before ``_`` form a few groups of several images each."""
    prefixes = Counter(s.split("_", 1)[0] for s in stems if "_" in s)
    if sum(prefixes.values()) == len(stems) and 2 <= len(prefixes) <= len(stems) / 3:
        return "^([^_]+)_"
    return None


def _few(names: list[str], shown: int = 6) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
