"""Checked option values: argparse ``type=`` functions that refuse nonsense before a command starts.

``type=number(0, 1)`` accepts a finite number strictly between 0 and 1; ``type=integer(1)`` a whole
number of at least 1; ``type=InputPath("file", ...)`` a file that exists. A refused value is reported by
argparse as a usage error (exit 2) naming the option and the value.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from kagglekit.competitions.reference import is_competition_file
from kagglekit.core.config import PRESETS


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number in ``low..high`` (both included; no upper bound when ``high`` is None)."""
    wanted = f"a whole number from {low} to {high}" if high is not None else f"a whole number of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


def number(low: float, high: float | None = None, *, include_low: bool = False) -> Callable[[str], float]:
    """A finite number above ``low`` (or equal to it, with ``include_low``) and below ``high``."""
    above = f"at least {low:g}" if include_low else f"greater than {low:g}"
    wanted = f"a number {above}" + (f" and less than {high:g}" if high is not None else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not include_low) or (
                high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


#: Shared by the verbs that take them.
fraction = number(0, 1)
count = integer(1)
seconds = number(0)
port = integer(1, 65535)


class InputPath:
    """``type=`` of an argument naming something the command reads: it must exist now, as a ``kind``
    ("file", "folder" or "any"), or argparse refuses it (exit 2) naming the path and ``what`` was
    expected, before anything runs. ``names(text)`` true marks a value that is a name, not a path (a
    registered competition, a Kaggle slug): it is passed on unchecked. ``returns`` converts the value."""

    def __init__(self, kind: str, what: str, *, names: Callable[[str], bool] | None = None,
                 returns: Callable[[str], object] = Path, missing: str = "{path} does not exist; expected {what}"):
        if kind not in ("file", "folder", "any"):
            raise ValueError(f"kind must be file, folder or any, not {kind!r}")
        self.kind, self.what, self.names, self.returns, self.missing = kind, what, names, returns, missing
        self.__name__ = f"existing {kind}"  # what argparse calls the type in its own messages

    def __call__(self, text: str):
        if self.names is not None and self.names(text):
            return text
        path = Path(text)
        if not path.exists():
            raise argparse.ArgumentTypeError(self.missing.format(path=text, what=self.what))
        if self.kind == "file" and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder (a directory), not a file; expected {self.what}")
        if self.kind == "folder" and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; expected {self.what}")
        return self.returns(text)


def _is_competition_name(text: str) -> bool:
    return not is_competition_file(text)


#: A registered competition's name, or a competition YAML file that exists.
competition_ref = InputPath("file", "a competition name or a competition YAML file", names=_is_competition_name,
                        missing="{path}: competition file not found; expected {what}")
#: Where pretrained weight files are (a typo must not let them come silently from the cache instead).
weights_folder = InputPath("folder", "a folder of pretrained weight files", returns=str)
#: A finished (or killed) run's directory, submissions/<competition>/<run>.
run_folder = InputPath("folder", "a run directory (submissions/<competition>/<run>)")
#: A competition folder in Kaggle's layout.
data_folder = InputPath("folder", "a competition folder (Kaggle layout)")
#: Image files, or folders of images.
image_paths = InputPath("any", "an image file or a folder of images")


def add_config_options(parser) -> None:
    """The competition and the options that make a run config: shared by run, compare and tune."""
    parser.add_argument("competition", type=competition_ref,
                        help="competition name (see competitions/) or a competition YAML file")
    parser.add_argument("--data", type=InputPath("folder", "a competition folder (Kaggle layout)", returns=str),
                        help="competition folder in Kaggle layout (default: the data cache)")
    parser.add_argument("--preset", choices=PRESETS,
                        help="a named config: fast (heads on cached features), accurate (fine-tuning, the best "
                             "a 2-core CPU does in 30 minutes), gpu (fine-tuning sized for Kaggle's GPUs/TPU)")
    parser.add_argument("--config", type=InputPath("file", "a run config YAML file"),
                        help="run config YAML (any subset of fields; over the preset)")
    parser.add_argument("--folds", type=int, help="number of cross-validation folds")
    parser.add_argument("--image-size", type=int, help="input size in pixels")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.add_argument("--output-dir", help="where run directories go (default: submissions/)")
    parser.add_argument("--time-budget", metavar="DURATION",
                        help="the run's wall time, e.g. 30m or 1.5h: fine-tuning and segmentation fit their epochs "
                             "(at most the config's) and scored folds to it (default 30m; none: the config's epochs)")


def config_options(args) -> dict:
    """What ``add_config_options`` parsed, as ``usecases.config.resolve_run`` takes it."""
    return {"competition": args.competition, "preset": args.preset, "config": args.config, "data": args.data,
            "backbone": getattr(args, "backbone", None), "folds": args.folds, "image_size": args.image_size,
            "seed": args.seed, "weights_dir": args.weights_dir, "output_dir": args.output_dir,
            "time_budget": args.time_budget}
