"""The ``kagglekit`` command line. Each verb lives in ``kagglekit/commands/<verb>.py``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from kagglekit.core.errors import KagglekitError

#: Each module defines ``register(subparsers)`` which adds its verbs with a ``func`` default.
COMMAND_MODULES = (
    "kagglekit.commands.prepare",
    "kagglekit.commands.notebook",
    "kagglekit.commands.run",
    "kagglekit.commands.predict",
    "kagglekit.commands.validate",
    "kagglekit.commands.backbones",
    "kagglekit.commands.download",
    "kagglekit.commands.submit",
    "kagglekit.commands.submissions",
    "kagglekit.commands.leaderboard",
    "kagglekit.commands.scores",
    "kagglekit.commands.serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kagglekit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except KagglekitError as exc:
        print(f"kagglekit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kagglekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
