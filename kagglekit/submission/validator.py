"""Check a submission file against the sample submission before anything may use or send it.

The validator explains every mismatch by line (CSV line numbers, header = line 1): an unreadable file
(not UTF-8, binary, empty), the header (duplicated or wrong columns), ragged rows, row count, missing /
extra / duplicated ids, and values the competition does not allow. Whatever the file holds, the answer
is a report (or a SubmissionError about the sample): never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

import pandas as pd

from kagglekit.core.errors import SubmissionError
from kagglekit.submission.writer import MAX_LISTED, read_table


class SubmissionRules(Protocol):
    """What the validator needs of a competition (every competition contract provides it)."""

    id_column: str
    value_column: str

    def check_cell(self, row_id: str, column: str, value: str,
                   sizes: Mapping[str, tuple[int, int]] | None = None) -> str | None: ...


@dataclass
class ValidationReport:
    path: Path
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_invalid(self) -> None:
        if self.problems:
            lines = "\n  ".join(self.problems)
            raise SubmissionError(f"{self.path} is not a valid submission:\n  {lines}")


def read_sample(path: Path, id_column: str, value_column: str | None = None) -> pd.DataFrame:
    """The sample submission, checked to be a table whose ``id_column`` names each row once and which has
    the ``value_column`` the metric scores (a sample that does not is no model for a submission):
    SubmissionError naming the file (and line) otherwise."""
    sample, lines = read_table(path)
    for column in (id_column, value_column):
        if column is not None and column not in sample.columns:
            raise SubmissionError(f"{path}: the sample submission has no {column!r} column (it has "
                                  f"{list(sample.columns)})")
    repeated = sample[id_column].duplicated().to_numpy()
    if repeated.any():
        first = int(repeated.argmax())
        raise SubmissionError(f"{path}, line {lines[first]}: id {sample[id_column].iloc[first]!r} appears more than "
                              f"once in the sample submission ({int(repeated.sum())} repeated id(s))")
    return sample


def validate_submission(competition: SubmissionRules, path: Path, sample_path: Path,
                        sizes: Mapping[str, tuple[int, int]] | None = None) -> ValidationReport:
    """Every problem of ``path`` as a line naming its CSV line; ``sizes`` are the test images' (height,
    width) by image id, which RLE cells are checked against (a run and ``validate`` pass the same).
    SubmissionError only if the sample submission itself cannot be read."""
    path, sample_path = Path(path), Path(sample_path)
    report = ValidationReport(path)
    if not path.is_file():
        found = "is a folder (a directory), not a file" if path.is_dir() else "file not found"
        report.problems.append(f"{path}: {found}; expected a submission CSV file")
        return report
    id_col = competition.id_column
    sample = read_sample(sample_path, id_col, competition.value_column)
    try:
        sub, lines = read_table(path)
    except SubmissionError as exc:
        report.problems.append(str(exc))
        return report
    report.rows = len(sub)
    if list(sub.columns) != list(sample.columns):
        report.problems.append(
            f"columns are {list(sub.columns)}, the sample submission has {list(sample.columns)}"
        )
        return report
    if len(sub) != len(sample):
        report.problems.append(f"{len(sub)} rows, the sample submission has {len(sample)}")
    line = pd.Series(lines, index=sub.index, dtype=object)  # the CSV line of each row
    duplicated = sub[id_col].duplicated(keep="first")
    for idx in sub.index[duplicated][:MAX_LISTED]:
        report.problems.append(f"line {line[idx]}: id {sub.at[idx, id_col]!r} appears more than once")
    expected = set(sample[id_col])
    extra = ~sub[id_col].isin(expected)
    for idx in sub.index[extra][:MAX_LISTED]:
        report.problems.append(f"line {line[idx]}: id {sub.at[idx, id_col]!r} is not in the sample submission")
    missing = sorted(expected - set(sub[id_col]))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        report.problems.append(f"{len(missing)} id(s) of the sample submission have no row: {shown}{more}")
    bad = 0
    for column in sub.columns:
        if column == id_col:
            continue
        for idx, value in sub[column].items():
            reason = _cell_problem(competition, sub.at[idx, id_col], column, value, sizes)
            if reason is not None:
                bad += 1
                if bad <= MAX_LISTED:
                    report.problems.append(f"line {line[idx]} (id {sub.at[idx, id_col]!r}), {column}: {reason}")
    if bad > MAX_LISTED:
        report.problems.append(f"... {bad - MAX_LISTED} more bad values")
    return report


def _cell_problem(competition: SubmissionRules, row_id: str, column: str, value: str,
                  sizes: Mapping[str, tuple[int, int]] | None) -> str | None:
    """The competition's verdict on one cell; a check that fails on odd content is a bad value, not a crash."""
    try:
        return competition.check_cell(row_id, column, value, sizes)
    except Exception as exc:  # noqa: BLE001 - an adapter's check must not turn a bad cell into a traceback
        return f"{value[:50]!r} cannot be checked ({type(exc).__name__}: {exc})"
