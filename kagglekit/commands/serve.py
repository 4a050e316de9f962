"""``kagglekit serve COMPETITION --source DIR``: host a private local Kaggle competition.

Participants point the ``kaggle`` client (and kagglekit) at it with ``KAGGLE_API_ENVIRONMENT=TEST``
(http://localhost:7777) and their usual KAGGLE_USERNAME/KAGGLE_KEY.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kagglekit.competitions.builders import build_class_folder_competition
from kagglekit.competitions.discovery import get_competition
from kagglekit.core.errors import ConfigError
from kagglekit.core.paths import cache_root


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run a local Kaggle service hosting a competition")
    parser.add_argument("competition", help="competition name or YAML file (gives slug, metric, format)")
    parser.add_argument("--source", type=Path, required=True,
                        help="labelled images <source>/train/<label>/..., or a folder with solution.csv")
    parser.add_argument("--users", type=Path, required=True, help='JSON file {"username": "key", ...}')
    parser.add_argument("--per-class", type=int, help="images per class (a smaller competition)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--daily-limit", type=int, default=5)
    parser.add_argument("--public-fraction", type=float, default=0.3)
    parser.add_argument("--work", type=Path, help="where the competition and its zip are built "
                                                  "(default: <cache>/local-kaggle/<slug>)")
    parser.add_argument("--port", type=int, default=7777, help="7777 is where KAGGLE_API_ENVIRONMENT=TEST looks")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.kaggle.local_service import LocalKaggleService

    competition = get_competition(args.competition)
    try:
        users = json.loads(args.users.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.users}: expected a JSON object of username: key ({exc})") from None
    work = args.work or cache_root() / "local-kaggle" / competition.slug
    data = args.source
    if not (data / "solution.csv").is_file():
        data = build_class_folder_competition(args.source, work / "data", id_column=competition.id_column,
                                              label_column=getattr(competition, "label_column", "label"),
                                              test_fraction=args.test_fraction, per_class=args.per_class)
    service = LocalKaggleService(users, port=args.port)
    service.host(competition, data, work, daily_limit=args.daily_limit, public_fraction=args.public_fraction)
    with service:
        print(f"serving {competition.slug} on {service.base_url} for {len(users)} user(s); Ctrl-C stops")
        threading.Event().wait()
    return 0
