"""``kagglekit submissions COMPETITION``: your Kaggle submissions; pending ledger rows get their scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kagglekit.commands.options import competition_ref
from kagglekit.competitions.discovery import get_competition
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.submit import apply_status
from kagglekit.runs.ledger import UNFINISHED, Ledger, default_ledger_path


def register(subparsers) -> None:
    parser = subparsers.add_parser("submissions", help="list your submissions and update the ledger's scores")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("--ledger", type=Path, default=default_ledger_path(),
                        help="score ledger file (default: $KAGGLEKIT_LEDGER, else the per-user ledger)")
    parser.set_defaults(func=main)


def main(args) -> int:
    competition = get_competition(args.competition)
    found = KaggleService().submissions(competition.slug)
    if not found:
        print(f"{competition.slug}: no submissions yet")
        return 0
    by_ref = {s.ref: s for s in found}
    ledger = Ledger(args.ledger)
    rows = ledger.submissions(competition.name)
    for row in rows[rows.status.isin(UNFINISHED) & rows.ref.notna()].itertuples():
        if int(row.ref) in by_ref:
            apply_status(ledger, row.id, by_ref[int(row.ref)])
    table = pd.DataFrame([{"ref": s.ref, "date": f"{s.date:%Y-%m-%d %H:%M}", "file": s.file_name,
                           "status": s.status.name.lower(), "public": s.public_score or "",
                           "private": s.private_score or "", "description": s.description} for s in found])
    print(table.to_string(index=False))
    return 0
