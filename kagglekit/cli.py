"""The ``kagglekit`` command line. Each verb lives in ``kagglekit/commands/<verb>.py``.

Exit codes: 0 success; 1 the answer is "no" (an invalid submission, a submission Kaggle failed to
score); 2 bad usage (options, a path argument that is not there, config, competition name, destination
folder); 3 bad data (a competition folder or image, or a file or folder that cannot be read or written);
4 a submission that does not match the competition; 5 the Kaggle API failed; 6 pretrained weights
missing; 70 an internal error (the traceback goes to a crash log under $KAGGLEKIT_CACHE/crash-logs;
--debug prints it); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import traceback
from datetime import datetime

from kagglekit.core.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    DataError,
    KagglekitError,
    path_error_message,
)
from kagglekit.core.fileio import atomic_write_text
from kagglekit.core.memory import peak_memory_line
from kagglekit.core.paths import cache_root

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
    "kagglekit.commands.publish",
    "kagglekit.commands.submissions",
    "kagglekit.commands.leaderboard",
    "kagglekit.commands.scores",
    "kagglekit.commands.serve",
    "kagglekit.commands.doctor",
    "kagglekit.commands.cache",
    "kagglekit.commands.new",
    "kagglekit.commands.serve_model",
    "kagglekit.commands.export",
    "kagglekit.commands.blend",
    "kagglekit.commands.explain",
    "kagglekit.commands.attack",
    "kagglekit.commands.compare",
    "kagglekit.commands.tune",
)
#: Verbs whose memory grows with the competition: each prints its peak memory when it ends (``core.memory``),
#: with its largest child process's where its work runs in children (True).
MEMORY_REPORTED = {"run": False, "blend": False, "predict": False, "attack": False, "explain": False,
                   "tune": True, "compare": True}
DEBUG_HELP = "on an internal error, print the traceback instead of writing it to a crash log"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kagglekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    for verb in subparsers.choices.values():  # `kagglekit VERB ... --debug` works too
        verb.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    verbose = _verbose(argv)
    _quiet_backends(verbose)
    # before the command modules import TensorFlow: its logger then uses this handler instead of adding its
    # own (which printed each of its lines twice)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    args = build_parser().parse_args(argv)  # usage errors: argparse prints them and exits with 2
    try:
        code = int(args.func(args) or 0)
        if args.command in MEMORY_REPORTED:
            print(peak_memory_line(MEMORY_REPORTED[args.command]))
        return code
    except KagglekitError as exc:
        return _fail(f"kagglekit: error: {exc}", exc.exit_code, args.debug)
    except KeyboardInterrupt:
        return _fail("kagglekit: interrupted", EXIT_INTERRUPTED, args.debug)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python from failing again at exit
        return 0
    except OSError as exc:
        message = path_error_message(exc)
        if message is None:
            return _crash(exc, argv, args.debug)
        return _fail(f"kagglekit: error: {message}", DataError.exit_code, args.debug)
    except Exception as exc:  # noqa: BLE001 (the error boundary: every other exception is a bug)
        return _crash(exc, argv, args.debug)


def _verbose(argv: list[str]) -> bool:
    """Whether ``-v``/``--verbose`` was given, known before the parser (and TensorFlow) is built."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("-v", "--verbose", action="store_true")
    return early.parse_known_args(argv)[0].verbose


def _quiet_backends(verbose: bool) -> None:
    """No TensorFlow / absl banners (CPU features, oneDNN, CUDA probing, retracing) unless ``--verbose``:
    a user's console shows kagglekit's progress. Environment variables the user set are kept."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow's C++ side when it loads
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _fail(line: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(_redact(line), file=sys.stderr)
    return code


def _crash(exc: Exception, argv: list[str], debug: bool) -> int:
    """One line on stderr; the traceback in a crash log (printed instead with --debug, or if no log)."""
    summary = " ".join(str(exc).split())[:500]
    line = f"kagglekit: internal error: {type(exc).__name__}" + (f": {summary}" if summary else "")
    if debug:
        return _fail(line, EXIT_INTERNAL, debug)
    report = (f"kagglekit {shlex.join(argv)}\n{datetime.now().isoformat(timespec='seconds')}, "
              f"Python {sys.version.split()[0]}, pid {os.getpid()}\n\n{traceback.format_exc()}")
    path = cache_root() / "crash-logs" / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    try:
        atomic_write_text(path, _redact(report))
    except OSError as log_error:
        print(_redact(report), file=sys.stderr, end="")
        return _fail(f"{line} (no crash log: {log_error})", EXIT_INTERNAL, debug)
    return _fail(f"{line} (details in {path})", EXIT_INTERNAL, debug)


def _redact(text: str) -> str:
    """Never show the Kaggle key, even if some exception message echoes it."""
    key = os.environ.get("KAGGLE_KEY")
    return text.replace(key, "***") if key else text


if __name__ == "__main__":
    sys.exit(main())
