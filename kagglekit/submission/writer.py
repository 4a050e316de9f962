"""Submission files as Kaggle reads them: written atomically, read back as the exact strings written."""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from kagglekit.core.errors import SubmissionError
from kagglekit.core.fileio import atomic_write_text

MAX_LISTED = 10  # problems listed by name in one message; the rest are counted


def read_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A CSV file as Kaggle's strict reading of it: every value the exact string written, and the line
    each row ends on. SubmissionError naming the file (and line) unless it is one rectangular UTF-8 table
    with a header of distinct names. (The csv module rather than pandas: pandas silently pads short rows,
    turns a row with one field too many into an index, and renames duplicated columns.)"""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise SubmissionError(f"{path}: holds NUL bytes, so it is a binary file, not CSV text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                              "save it as UTF-8 CSV") from None
    csv.field_size_limit(max(csv.field_size_limit(), sys.maxsize >> 1))  # RLE cells of big images are long
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines = [], []
    try:
        for row in reader:
            if row:  # blank lines are skipped, as every CSV reader Kaggle uses does
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise SubmissionError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise SubmissionError(f"{path}: empty file; a CSV file starts with its header line")
    header, body, lines = rows[0], rows[1:], lines[1:]
    repeated = [name for name, count in Counter(header).items() if count > 1]
    if repeated:
        raise SubmissionError(f"{path}, line 1: column(s) {', '.join(map(repr, repeated))} appear more than "
                              f"once in the header {header}")
    ragged = [(line, len(row)) for line, row in zip(lines, body) if len(row) != len(header)]
    if ragged:
        listed = "; ".join(f"line {line} has {n}" for line, n in ragged[:MAX_LISTED])
        more = f" and {len(ragged) - MAX_LISTED} more rows" if len(ragged) > MAX_LISTED else ""
        raise SubmissionError(f"{path}: the header has {len(header)} field(s), but {listed}{more}")
    return pd.DataFrame(body, columns=header, dtype=object), lines


def read_csv_strings(path: Path) -> pd.DataFrame:
    """Read a CSV keeping every value as the exact string written (no NaN, no number parsing), as strictly
    as the validator reads submissions: SubmissionError naming the file and line unless it is a UTF-8 table
    with distinct column names and the header's number of fields on every row."""
    return read_table(path)[0]


def write_submission(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as a Kaggle CSV atomically (no index, Unix newlines, minimal quoting)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)
