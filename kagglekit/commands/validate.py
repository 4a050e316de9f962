"""``kagglekit validate COMPETITION FILE``: check a submission against the sample submission."""

from __future__ import annotations

from kagglekit.commands.options import InputPath, competition_ref, data_folder
from kagglekit.competitions.discovery import get_competition


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check a submission file against the sample submission")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("file", type=InputPath("file", "a submission CSV file"), help="submission CSV")
    parser.add_argument("--data", type=data_folder, required=True,
                        help="competition folder (holds the sample submission)")
    parser.set_defaults(func=run)


def run(args) -> int:
    competition = get_competition(args.competition)
    report = competition.resolve(args.data).validate(args.file, args.data)
    if report.ok:
        print(f"{args.file}: valid {competition.name} submission ({report.rows} rows)")
        return 0
    print(f"{args.file}: INVALID {competition.name} submission")
    for problem in report.problems:
        print(f"  {problem}")
    return 1
