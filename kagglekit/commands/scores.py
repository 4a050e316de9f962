"""``kagglekit scores COMPETITION``: the ledger's runs and submissions, best first, and a CV-vs-LB plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kagglekit.competitions.discovery import get_competition
from kagglekit.runs.ledger import Ledger, default_ledger_path


def register(subparsers) -> None:
    parser = subparsers.add_parser("scores", help="CV and leaderboard scores of every run, best first")
    parser.add_argument("competition", help="competition name or YAML file")
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
                   "status", "submitted_at", "message"]].astype(object)
    for column in ("cv_mean", "cv_std", "public_score", "private_score", "gap"):
        shown[column] = shown[column].map(lambda v: f"{v:.4f}" if pd.notna(v) else "-")
    print(shown.where(shown.notna(), "-").to_string(index=False))
    plot = args.plot or args.ledger.parent / competition.name / "scores.png"
    cv_vs_leaderboard(history, plot, f"{competition.title}: CV vs public leaderboard")
    print(f"plot: {plot}")
    return 0
