"""``kagglekit submit COMPETITION FILE -m MSG``: validate, submit once, wait for the score, record it."""

from __future__ import annotations

from pathlib import Path

from kagglekit.commands.options import InputPath, competition_ref, data_folder, number, seconds
from kagglekit.competitions.discovery import get_competition
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.download import cached_competition_data
from kagglekit.kaggle.submit import SubmitPolicy, describe, submit_file
from kagglekit.runs.ledger import Ledger, default_ledger_path


def register(subparsers) -> None:
    parser = subparsers.add_parser("submit", help="validate a submission file, submit it, wait for its score")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("file", type=InputPath("file", "a submission CSV file"), help="submission CSV")
    parser.add_argument("-m", "--message", required=True, help="submission description")
    parser.add_argument("--data", type=data_folder, help="competition folder with the sample submission "
                                                  "(default: the data cache)")
    parser.add_argument("--force", action="store_true", help="submit even if these bytes were submitted before")
    parser.add_argument("--wait", type=number(0, include_low=True), default=600.0,
                        help="seconds to wait for the score")
    parser.add_argument("--timeout", type=seconds, default=60.0, help="seconds per HTTP request")
    parser.add_argument("--ledger", type=Path, default=default_ledger_path(),
                        help="score ledger file (default: $KAGGLEKIT_LEDGER, else the per-user ledger)")
    parser.set_defaults(func=main)


def main(args) -> int:
    competition = get_competition(args.competition)
    data = args.data or cached_competition_data(competition)
    row = submit_file(KaggleService(timeout=args.timeout), Ledger(args.ledger), competition, args.file,
                      args.message, data, force=args.force, policy=SubmitPolicy(wait=args.wait))
    print(f"submitted {args.file}: {describe(row)}")
    return 0 if row["status"] in ("complete", "pending") else 1
