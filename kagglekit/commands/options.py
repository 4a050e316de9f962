"""Checked option values: argparse ``type=`` functions that refuse nonsense before a command starts.

``type=number(0, 1)`` accepts a finite number strictly between 0 and 1; ``type=integer(1)`` a whole
number of at least 1. A refused value is reported by argparse as a usage error (exit 2) naming the option.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


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
