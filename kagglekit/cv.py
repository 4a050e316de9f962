"""Honest cross-validation splits: stratified by label, with identical images kept together.

Kaggle training sets contain byte-identical duplicates (Plant Seedlings has three in Common wheat).
If copies land in different folds the CV score leaks, so folds are grouped by file content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from kagglekit.errors import DataError
from kagglekit.fileio import sha256_file


def content_groups(paths: list[Path]) -> tuple[np.ndarray, list[str]]:
    """Group id per file (same bytes → same group), plus each file's sha256."""
    shas = [sha256_file(p) for p in paths]
    first: dict[str, int] = {}
    groups = np.array([first.setdefault(s, len(first)) for s in shas])
    return groups, shas


def stratified_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train_index, valid_index) pairs; every class appears in every validation fold."""
    counts = np.bincount(labels)
    if k < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got {k}")
    if counts.min() < k:
        rare = int(np.argmin(counts))
        raise DataError(f"class index {rare} has {counts.min()} image(s), fewer than the {k} folds asked for")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in splitter.split(np.zeros(len(labels)), labels, groups)]
