"""Progress of long work: a tqdm bar on a terminal or in a notebook, a log line every 30 s otherwise.

A cold run redirected to a file (CI, ``nohup``, a Kaggle commit) must not go silent for minutes: tqdm
would either stay quiet (``disable=None``) or pile carriage returns into one line, so off a terminal the
bar writes through ``_LogLines`` instead, which turns each refresh (at most one per ``LOG_INTERVAL_S``)
into one ``logging`` line with counts, rate and time left.
"""

from __future__ import annotations

import functools
import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("kagglekit.progress")

LOG_INTERVAL_S = 30


class _LogLines:
    """A file-like sink for tqdm: every refresh becomes one log line (the final one only once)."""

    def __init__(self):
        self.last = ""

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line and line != self.last:
            log.info("%s", line)
            self.last = line

    def flush(self) -> None:
        pass


def interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def bar_options() -> dict:
    """tqdm keyword arguments for the current console."""
    if interactive():
        return {}
    return {"file": _LogLines(), "mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S, "ascii": True,
            "ncols": 100}


def progress(total: int, desc: str, unit: str = "img") -> tqdm:
    """A bar over ``total`` items (use as a context manager; ``update(n)`` as work is done)."""
    return tqdm(total=total, desc=desc, unit=unit, **bar_options())


def epoch_bar(epochs: int, desc: str):
    """The epochs of a Keras ``fit`` as one bar (no per-batch bar): a Keras callback."""
    from tqdm.keras import TqdmCallback

    return TqdmCallback(epochs=epochs, verbose=0, desc=desc, leave=not interactive(),
                        tqdm_class=functools.partial(tqdm, **bar_options()))


class Stopwatch:
    """Seconds per named stage of a run, for its summary table (``lap`` ends the current stage)."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._start, 1)
        self._start = now
