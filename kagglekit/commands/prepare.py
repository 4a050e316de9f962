"""``kagglekit prepare COMPETITION --source DIR``: an offline competition folder in the data cache.

Where Kaggle is out of reach (this machine, a classroom, CI), a folder of labelled images
(``<source>/train/<label>/*``) becomes the competition's Kaggle-layout folder: train, a held-out test
set, its sample submission and the hidden ``solution.csv``. ``kagglekit run`` then finds it like a
download. The destination must be new, empty or an earlier build, and apart from ``--source``.
"""

from __future__ import annotations

from pathlib import Path

from kagglekit.commands.options import InputPath, competition_ref, count, fraction
from kagglekit.competitions.builders import build_class_folder_competition
from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import ConfigError
from kagglekit.core.paths import data_cache_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser("prepare", help="build a competition folder from labelled images (offline)")
    parser.add_argument("competition", type=competition_ref, help="competition name or YAML file")
    parser.add_argument("--source", type=InputPath("folder", "a folder with train/<label>/<image>"),
                        required=True, help="folder with train/<label>/<image>")
    parser.add_argument("--dest", type=Path, help="target folder (default: the data cache)")
    parser.add_argument("--test-fraction", type=fraction, default=0.2,
                        help="share of each class held out as test, between 0 and 1 (default 0.2)")
    parser.add_argument("--per-class", type=count, help="at most this many images per class (2 or more)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier build there (only the files it wrote; yours are kept)")
    parser.set_defaults(func=main)


def main(args) -> int:
    competition = get_competition(args.competition)
    if not isinstance(competition, ClassFolderCompetition):
        raise ConfigError(f"prepare builds class-folder competitions; {competition.name} is a {competition.task} one")
    folder = build_class_folder_competition(
        args.source, args.dest or data_cache_dir(competition.slug), id_column=competition.id_column,
        label_column=competition.label_column, test_fraction=args.test_fraction, per_class=args.per_class,
        seed=args.seed, id_from=competition.id_from, classes=competition.declared_classes, force=args.force,
    )
    print(f"{competition.name}: competition folder in {folder}")
    return 0
