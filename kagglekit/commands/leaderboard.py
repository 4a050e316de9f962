"""``kagglekit leaderboard COMPETITION``: the top of the public leaderboard."""

from __future__ import annotations

import pandas as pd

from kagglekit.commands.options import competition_ref, count
from kagglekit.competitions.discovery import get_competition
from kagglekit.kaggle.client import KaggleService


def register(subparsers) -> None:
    parser = subparsers.add_parser("leaderboard", help="show the public leaderboard")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("--top", type=count, default=20, help="rows to show")
    parser.set_defaults(func=main)


def main(args) -> int:
    competition = get_competition(args.competition)
    service = KaggleService()
    rows = service.leaderboard(competition.slug, page_size=args.top)
    if not rows:
        print(f"{competition.slug}: the leaderboard is empty")
        return 0
    you = service.credentials.username
    table = pd.DataFrame([{"rank": i, "team": r.team_name, "score": r.score,
                           "submitted": f"{r.submission_date:%Y-%m-%d %H:%M}",
                           "": "<- you" if r.team_name == you else ""} for i, r in enumerate(rows, 1)])
    print(table.to_string(index=False))
    return 0
