"""Submission files as Kaggle reads them: written atomically, read back as the exact strings written."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from kagglekit.core.errors import SubmissionError
from kagglekit.core.fileio import atomic_write_text


def read_csv_strings(path: Path) -> pd.DataFrame:
    """Read a CSV keeping every value as the exact string written (no NaN, no number parsing)."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot be read as CSV ({exc})") from exc


def write_submission(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as a Kaggle CSV atomically (no index, Unix newlines, minimal quoting)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)
