"""Competition metrics by name: every score a competition can declare, in one registry.

A metric takes the true and the submitted values of the same rows, in the same order (``aligned_rows``
lines a submission up with its solution), and returns a score where higher is better. A metric that
needs a setting of the competition takes it as a keyword: ``dice`` the masks' ``RLEFormat``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from kagglekit.core.errors import SubmissionError
from kagglekit.core.registry import Registry
from kagglekit.submission import rle

METRICS: Registry = Registry("metric")


def aligned_rows(solution: pd.DataFrame, submission: pd.DataFrame, id_column: str, value_column: str,
                 name: str) -> tuple[pd.Series, pd.Series]:
    """The true and the submitted ``value_column`` of every solution row, in the solution's order and
    indexed by row id; a SubmissionError names solution ids the submission lacks."""
    merged = solution[[id_column, value_column]].merge(
        submission[[id_column, value_column]], on=id_column, how="left", suffixes=("_true", "_pred"), indicator=True)
    missing = merged.loc[merged["_merge"] != "both", id_column]
    if len(missing):
        raise SubmissionError(f"{name}: {len(missing)} id(s) of the solution have no row in the submission, "
                              f"e.g. {', '.join(map(str, missing[:5]))}")
    merged = merged.set_index(id_column)
    return merged[f"{value_column}_true"], merged[f"{value_column}_pred"]


@METRICS.decorator("micro_f1")
def micro_f1(y_true, y_pred) -> float:
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="micro"))


@METRICS.decorator("macro_f1")
def macro_f1(y_true, y_pred) -> float:
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="macro"))


@METRICS.decorator("accuracy")
def accuracy(y_true, y_pred) -> float:
    return float(accuracy_score(np.asarray(y_true), np.asarray(y_pred)))


@METRICS.decorator("dice")
def mean_rle_dice(y_true, y_pred, fmt: rle.RLEFormat) -> float:
    """Kaggle's mean Dice over rows of masks run-length encoded in ``fmt`` (two empty masks score 1).

    An empty cell may come as "" or NaN (pandas' reading of an empty CSV field): both mean no pixel.
    A malformed encoding is a SubmissionError naming its row (the index of ``y_true``, e.g. the row id).
    """
    y_true = pd.Series(y_true)
    scores = []
    for row, truth, predicted in zip(y_true.index, y_true, y_pred):
        try:
            scores.append(rle.dice(_text(truth), _text(predicted), fmt))
        except rle.RLEError as exc:
            raise SubmissionError(f"row {row}: {exc}") from None
    return float(np.mean(scores))


def _text(cell) -> str:
    return "" if pd.isna(cell) else str(cell)


def _mean_fbeta(y_true, y_pred, beta: float, separator: str) -> float:
    """Kaggle's "mean F-score" of label sets: each row's F-beta between its true and submitted labels
    (cells of labels joined by ``separator``), averaged over rows; a row with no labels on either side
    scores 1."""
    from sklearn.metrics import fbeta_score
    from sklearn.preprocessing import MultiLabelBinarizer

    def sets(cells):
        return [{label for label in _text(cell).split(separator) if label.strip()} for cell in cells]

    truth, predicted = sets(y_true), sets(y_pred)
    binarizer = MultiLabelBinarizer().fit(truth + predicted)
    if not binarizer.classes_.size:
        return 1.0
    return float(fbeta_score(binarizer.transform(truth), binarizer.transform(predicted), beta=beta,
                             average="samples", zero_division=1.0))


@METRICS.decorator("mean_f1")
def mean_f1(y_true, y_pred, separator: str = " ") -> float:
    return _mean_fbeta(y_true, y_pred, 1.0, separator)


@METRICS.decorator("mean_f2")
def mean_f2(y_true, y_pred, separator: str = " ") -> float:
    """Recall weighted four times precision (Planet: Understanding the Amazon from Space)."""
    return _mean_fbeta(y_true, y_pred, 2.0, separator)
