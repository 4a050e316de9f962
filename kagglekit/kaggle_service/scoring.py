"""Kaggle-style scoring: the hidden solution's rows are split once into public and private parts;
a submission gets one score on each, with the competition's own metric."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import KagglekitError


def public_mask(n_rows: int, public_fraction: float, seed: int = 0) -> np.ndarray:
    """Which solution rows are public: a fixed random ``public_fraction`` of them (at least one each side)."""
    n_public = min(max(1, round(n_rows * public_fraction)), max(1, n_rows - 1))
    mask = np.zeros(n_rows, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n_rows)[:n_public]] = True
    return mask


def score_submission(competition: Competition, solution: pd.DataFrame, public: np.ndarray,
                     blob: bytes) -> tuple[float, float]:
    """(public, private) scores of the CSV ``blob``; ValueError with Kaggle's kind of message if unusable."""
    try:
        sub = pd.read_csv(io.BytesIO(blob), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"Could not parse the submission file: {exc}") from None
    if list(sub.columns) != list(solution.columns):
        raise ValueError(f"Submission columns {list(sub.columns)} do not match {list(solution.columns)}")
    id_col = competition.id_column
    if sub[id_col].duplicated().any():
        raise ValueError(f"Submission has duplicate {id_col} values")
    if set(sub[id_col]) != set(solution[id_col]):
        raise ValueError(f"Submission must have exactly {len(solution)} rows, one per {id_col} of the test set")
    sub = sub.set_index(id_col).loc[solution[id_col]].reset_index()
    try:
        return (competition.score(solution[public], sub[public]),
                competition.score(solution[~public], sub[~public]))
    except KagglekitError as exc:
        raise ValueError(str(exc)) from None
