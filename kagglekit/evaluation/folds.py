"""Honest cross-validation splits: stratified by label, with identical images kept together.

Kaggle training sets contain byte-identical duplicates (Plant Seedlings has three in Common wheat).
If copies land in different folds the CV score leaks, so folds are grouped by file content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from kagglekit.core.errors import DataError
from kagglekit.core.fileio import sha256_file


def content_groups(paths: list[Path]) -> tuple[np.ndarray, list[str]]:
    """Group id per file (same bytes → same group), plus each file's sha256."""
    shas = [sha256_file(p) for p in paths]
    first: dict[str, int] = {}
    groups = np.array([first.setdefault(s, len(first)) for s in shas])
    return groups, shas


def stratified_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int,
                     classes: list[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train_index, valid_index) pairs; every class appears in every validation fold.

    ``classes`` names the label indices, so an error says which class is too small (and a class with
    no image at all is caught too).
    """
    if k < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got {k}")
    counts = np.bincount(labels, minlength=len(classes or ()))
    rare = [i for i in np.argsort(counts, kind="stable") if counts[i] < k]
    if rare:
        def name(i):
            return f"class {classes[i]!r}" if classes is not None and i < len(classes) else f"class index {i}"
        others = f" (and {len(rare) - 1} more: {', '.join(name(i) for i in rare[1:4])})" if len(rare) > 1 else ""
        raise DataError(f"{name(rare[0])} has {counts[rare[0]]} image(s), fewer than the {k} folds asked for"
                        f"{others}; add images of it or run with fewer --folds")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(labels)), labels, groups)]


def multilabel_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train_index, valid_index) pairs, iteratively stratified over every label, groups kept whole.

    The splitter sees one row per group (the union of its members' labels) and each member follows
    its group, so duplicates never straddle folds.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    if k < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got {k}")
    unique, inverse = np.unique(groups, return_inverse=True)
    if len(unique) < k:
        raise DataError(f"{len(unique)} distinct image(s), fewer than the {k} folds asked for")
    group_labels = np.zeros((len(unique), labels.shape[1]), dtype=labels.dtype)
    np.maximum.at(group_labels, inverse, labels)
    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for _, valid_groups in splitter.split(np.zeros(len(unique)), group_labels):
        in_valid = np.isin(inverse, valid_groups)
        folds.append((np.flatnonzero(~in_valid), np.flatnonzero(in_valid)))
    return folds


def grouped_holdout(groups: np.ndarray, fraction: float, seed: int, what: str = "images", hint: str = ""
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One (train_index, valid_index) split holding out whole groups, as close to ``fraction`` as they allow.

    With few large groups (CamVid: three drives) K-fold is impossible, but a whole held-out group is
    the honest test; groups are visited in a seeded random order and kept when they bring the
    validation share closer to ``fraction``. One group is a DataError naming how many ``what`` there
    are, then the caller's ``hint``: how the groups were made, and what to do.
    """
    groups = np.asarray(groups)
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < 2:
        raise DataError(f"all {len(groups)} {what} are one group of related images, and the hold-out keeps a group "
                        f"whole{hint}")
    target, held, chosen = fraction * len(groups), 0, []
    for i in np.random.default_rng(seed).permutation(len(names)):
        if abs(held + counts[i] - target) < abs(held - target) and len(chosen) < len(names) - 1:
            held += counts[i]
            chosen.append(names[i])
    if not chosen:  # every group is larger than the target: hold out the smallest
        chosen = [names[np.argmin(counts)]]
    in_valid = np.isin(groups, chosen)
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)


#: The share of a training fold held out for early stopping: 1/5, whatever the number of CV folds (a
#: 3-fold run holding out a third of each training fold lost accuracy on small competitions).
INNER_PARTS = 5


def inner_split(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int, k: int = INNER_PARTS
                ) -> tuple[np.ndarray, np.ndarray]:
    """Split a training fold's ``rows`` into (fit, stop) rows: one grouped, stratified 1/k of them for
    early stopping and LR plateaus, so nothing is ever chosen on the fold being scored.

    Multi-label rows, and classes too rare to appear in every part, fall back to a grouped hold-out.
    """
    sub_labels, sub_groups = labels[rows], groups[rows]
    k = max(2, min(k, len(np.unique(sub_groups))))
    if sub_labels.ndim == 1 and np.bincount(sub_labels)[np.unique(sub_labels)].min() >= k:
        fit, stop = next(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
                         .split(np.zeros(len(rows)), sub_labels, sub_groups))
    else:
        fit, stop = grouped_holdout(sub_groups, 1 / k, seed)
    return rows[fit], rows[stop]
