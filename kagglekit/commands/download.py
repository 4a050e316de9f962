"""``kagglekit download COMPETITION``: the competition's data, verified, into the data cache."""

from __future__ import annotations

from pathlib import Path

from kagglekit.commands.options import competition_ref, seconds
from kagglekit.competitions.discovery import get_competition
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.download import download_competition


def register(subparsers) -> None:
    parser = subparsers.add_parser("download", help="download a competition's data from Kaggle (resumable)")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("--dest", type=Path, help="target folder (default: the data cache)")
    parser.add_argument("--force", action="store_true",
                        help="download again even if complete (replaces only the files kagglekit wrote there)")
    parser.add_argument("--timeout", type=seconds, default=60.0, help="seconds per HTTP request")
    parser.set_defaults(func=main)


def main(args) -> int:
    competition = get_competition(args.competition)
    folder = download_competition(KaggleService(timeout=args.timeout), competition, args.dest, args.force)
    print(f"{competition.slug}: data in {folder}")
    return 0
