"""``kagglekit serve COMPETITION --source DIR``: host a private local Kaggle competition.

Participants point the ``kaggle`` client (and kagglekit) at it with ``KAGGLE_API_ENVIRONMENT=TEST``
(http://localhost:7777; kagglekit also reaches another ``--port`` with ``KAGGLEKIT_LOCAL_KAGGLE_PORT``) and their
usual KAGGLE_USERNAME/KAGGLE_KEY. With ``--code-competition`` only part of
the test set is downloadable; submissions are notebooks (``kagglekit publish RUN --submit``), rerun offline
on the hidden rest of the test set, as on kaggle.com. The work folder (the built
competition and the zip participants download) is claimed like any output folder: new, empty or an
earlier ``serve``'s (``kagglekit.core.manifest``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kagglekit.commands.options import InputPath, competition_ref, count, fraction, integer, seconds
from kagglekit.competitions.builders import build_class_folder_competition
from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import sha256_file
from kagglekit.core.manifest import OwnedFolder
from kagglekit.core.paths import cache_root
from kagglekit.kaggle.credentials import LOCAL_PORT


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run a local Kaggle service hosting a competition")
    parser.add_argument("competition", type=competition_ref,
                        help="competition name or YAML file (gives slug, metric, format)")
    parser.add_argument("--source", type=InputPath("folder", "a folder of labelled images or a built competition"),
                        required=True,
                        help="labelled images <source>/train/<label>/..., or a folder with solution.csv")
    parser.add_argument("--users", type=InputPath("file", "a JSON file of username: key"), required=True,
                        help='JSON file {"username": "key", ...}')
    parser.add_argument("--per-class", type=count, help="images per class (a smaller competition)")
    parser.add_argument("--test-fraction", type=fraction, default=0.2, help="share of each class held out as test")
    parser.add_argument("--daily-limit", type=count, default=5, help="submissions per user per UTC day")
    parser.add_argument("--public-fraction", type=fraction, default=0.3,
                        help="share of the test set scored on the public leaderboard")
    parser.add_argument("--work", type=Path, help="where the competition and its zip are built "
                                                  "(default: <cache>/local-kaggle/<slug>)")
    parser.add_argument("--force", action="store_true", help="rebuild the competition in --work (only the "
                                                             "files kagglekit wrote there are replaced)")
    parser.add_argument("--code-competition", action="store_true",
                        help="a code competition: notebooks are submitted and rerun on a hidden test set")
    parser.add_argument("--kernel-time-limit", type=seconds, default=3600.0,
                        help="seconds a notebook may run unless its push asks for less (default 3600)")
    parser.add_argument("--port", type=integer(0, 65535), default=7777,
                        help="7777 is where KAGGLE_API_ENVIRONMENT=TEST looks; kagglekit clients find another one "
                             "in KAGGLEKIT_LOCAL_KAGGLE_PORT; 0: any free port (printed)")
    parser.set_defaults(func=main)


def read_users(path: Path) -> dict[str, str]:
    try:
        users = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: expected a JSON object of username: key ({exc})") from None
    if not isinstance(users, dict) or not users or not all(
            isinstance(name, str) and name and isinstance(key, str) and key for name, key in users.items()):
        raise ConfigError(f'{path}: expected a non-empty JSON object of username: key, like {{"alice": "key"}}')
    return users


def main(args) -> int:
    from kagglekit.kaggle_service import LocalKaggleService

    competition = get_competition(args.competition)
    users = read_users(args.users)
    work = args.work or cache_root() / "local-kaggle" / competition.slug
    prebuilt = (args.source / "solution.csv").is_file()
    if not prebuilt and not isinstance(competition, ClassFolderCompetition):
        raise ConfigError(f"{args.source}: no solution.csv, and serve builds only class-folder competitions from "
                          f"labelled images; {competition.name} is a {competition.task} one")
    owned = OwnedFolder(work, "serve", inputs={"--source": args.source})
    with LocalKaggleService(users, port=args.port, kernel_time_limit=args.kernel_time_limit) as service:  # a busy port fails before anything is built
        data = args.source if prebuilt else build_class_folder_competition(
            args.source, work / "data", id_column=competition.id_column, label_column=competition.label_column,
            test_fraction=args.test_fraction, per_class=args.per_class, id_from=competition.id_from,
            classes=competition.declared_classes, force=args.force)
        published = {"data": data.resolve(), "solution_sha256": sha256_file(data / "solution.csv"),
                     "code_competition": args.code_competition}  # its zip holds only the public test images
        stale = not owned.holds(published)
        if stale:  # the zip is made again from the data served now
            owned.replace([f"{competition.slug}.zip"], published)
        service.host(competition, data, work, daily_limit=args.daily_limit, public_fraction=args.public_fraction,
                     code_competition=args.code_competition)
        if stale:
            owned.finish()
        kind = "code competition " if args.code_competition else ""
        print(f"serving {kind}{competition.slug} on {service.base_url} for {len(users)} user(s); Ctrl-C stops",
              flush=True)
        if service.port != 7777:
            print(f"kagglekit clients reach it with KAGGLE_API_ENVIRONMENT=TEST {LOCAL_PORT}={service.port}",
                  flush=True)
        threading.Event().wait()
    return 0
