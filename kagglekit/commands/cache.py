"""``kagglekit cache``: what the cache holds and its size; ``kagglekit cache prune``: free the space.

``prune --older-than DAYS`` picks entries not used for that many days; ``--competition NAME`` a
competition's data folder and download archives (features are shared by every competition that used
the same backbone, so they are pruned by age only); ``--part`` narrows either to some parts. Without
``--yes`` it only lists what it would delete. What is deleted and what never is: ``kagglekit.upkeep.cache``.
"""

from __future__ import annotations

from kagglekit.commands.options import number
from kagglekit.competitions.discovery import get_competition
from kagglekit.competitions.reference import is_competition_file
from kagglekit.core.errors import ConfigError
from kagglekit.core.paths import cache_root
from kagglekit.upkeep.cache import PARTS, Entry, inventory, prune, select, total_size
from kagglekit.upkeep.checks import size_text


def register(subparsers) -> None:
    parser = subparsers.add_parser("cache", help="show what the cache holds; prune it by age or competition")
    actions = parser.add_subparsers(dest="action")
    parser.set_defaults(func=show)
    pruning = actions.add_parser("prune", help="delete cache entries by age or competition (lists them without --yes)")
    pruning.add_argument("--older-than", type=number(0, include_low=True), metavar="DAYS",
                         help="entries last used more than DAYS days ago")
    pruning.add_argument("--competition", metavar="NAME",
                         help="a competition's data and downloads (a name, a competition YAML or a Kaggle slug)")
    pruning.add_argument("--part", action="append", choices=PARTS, help="only these parts (repeatable)")
    pruning.add_argument("--yes", action="store_true", help="delete them (default: only list them)")
    pruning.set_defaults(func=prune_main)


def show(args) -> int:
    root = cache_root()
    entries = inventory(root)
    print(f"cache {root}: {size_text(total_size(entries))}")
    for part in (*PARTS, "other"):
        mine = [e for e in entries if e.part == part]
        if mine:
            print(f"  {part}/ {size_text(total_size(mine))}" if part != "other" else
                  f"  not kagglekit's (never pruned) {size_text(total_size(mine))}")
            for entry in mine:
                print(_line(entry))
    return 0


def prune_main(args) -> int:
    if args.older_than is None and args.competition is None:
        raise ConfigError("cache prune: say what to prune with --older-than DAYS and/or --competition NAME")
    root = cache_root()
    chosen = select(inventory(root), args.older_than, _slug(args.competition) if args.competition else None,
                    tuple(args.part or PARTS))
    verb = "deleting" if args.yes else "would delete"
    print(f"{verb} {len(chosen)} entr{'y' if len(chosen) == 1 else 'ies'}, {size_text(total_size(chosen))}")
    for entry in chosen:
        print(_line(entry))
    if args.yes:
        for line in prune(chosen, root):
            print(line)
    elif chosen:
        print("nothing deleted: add --yes to delete them")
    return 0


def _slug(name: str) -> str:
    """The Kaggle slug a competition's cache entries are named by; a bare slug is taken as it is."""
    try:
        return get_competition(name).slug
    except ConfigError:
        if is_competition_file(name):
            raise
        return name


def _line(entry: Entry) -> str:
    return f"    {entry.part}/{entry.name:50} {size_text(entry.size):>9}  used {entry.age_days():.0f} day(s) ago"
