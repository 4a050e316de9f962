"""``kagglekit scores COMPETITION``: the ledger's runs and submissions, best first, a CV-vs-LB plot, and a
trust report (``evaluation.trust``): how well CV tracks the leaderboard, and which two runs to choose
as final submissions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kagglekit.commands.options import competition_ref
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.fileio import atomic_write_json
from kagglekit.evaluation.trust import trust_report
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.ledger import Ledger, default_ledger_path
from kagglekit.submission.writer import read_csv_strings


def register(subparsers) -> None:
    parser = subparsers.add_parser("scores", help="CV and leaderboard scores of every run, best first")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("--ledger", type=Path, default=default_ledger_path(),
                        help="score ledger file (default: $KAGGLEKIT_LEDGER, else the per-user ledger)")
    parser.add_argument("--plot", type=Path, help="PNG to write (default: <ledger folder>/<competition>/scores.png)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.runs.plots import (
        cv_vs_leaderboard,  # matplotlib: only this verb pays for it
    )

    competition = get_competition(args.competition)
    history = Ledger(args.ledger).history(competition.name, include_unlinked=True)
    if history.empty:
        print(f"{competition.name}: nothing recorded in {args.ledger} yet")
        return 0
    history["gap"] = history.public_score - history.cv_mean
    table = history.sort_values(["public_score", "cv_mean"], ascending=False, na_position="last")
    shown = table[["run_id", "backbones", "cv_mean", "cv_std", "public_score", "private_score", "gap",
                   "seconds", "seconds_per_epoch", "status", "submitted_at", "message"]].astype(object)
    for column in ("cv_mean", "cv_std", "public_score", "private_score", "gap"):
        shown[column] = shown[column].map(lambda v: f"{v:.4f}" if pd.notna(v) else "-")
    for column in ("seconds", "seconds_per_epoch"):
        shown[column] = shown[column].map(lambda v: f"{v:.0f}" if pd.notna(v) else "-")
    shown = shown.rename(columns={"seconds_per_epoch": "s/epoch"})
    print(shown.where(shown.notna(), "-").to_string(index=False))
    plot = args.plot or args.ledger.parent / competition.name / "scores.png"
    cv_vs_leaderboard(history, plot, f"{competition.title}: CV vs public leaderboard")
    print(f"plot: {plot}")
    report = trust_report(history, submitted_values(history, competition))
    print("\ntrust report:\n  " + "\n  ".join(report.lines()))
    atomic_write_json(plot.with_name("trust.json"), report.to_dict())
    print(f"trust report: {plot.with_name('trust.json')}")
    return 0


def submitted_values(history: pd.DataFrame, competition):
    """run id -> its submission's scored column indexed by row id, read from its run directory."""
    folders = dict(zip(history.run_id, history.run_dir))

    def values(run_id: str) -> pd.Series | None:
        path = Path(folders.get(run_id) or "") / RUN_FILES.submission
        if not path.is_file():
            return None
        frame = read_csv_strings(path)
        return frame.set_index(competition.id_column)[competition.value_column]

    return values
