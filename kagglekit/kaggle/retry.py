"""Bounded retries with jittered exponential backoff, and bounded polling.

Every loop here ends: after ``attempts`` tries or ``deadline`` seconds, whichever comes first.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from kagglekit.core.errors import KaggleError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays ``base * factor**n`` capped at ``cap``, each drawn uniformly from [d/2, d] ("equal jitter")."""

    attempts: int = 5
    base: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    deadline: float = 120.0  # seconds, over all attempts

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        for n in range(self.attempts - 1):
            full = min(self.cap, self.base * self.factor**n)
            yield rng.uniform(full / 2, full)


def call_with_retry(func: Callable[[], T], what: str, backoff: Backoff = Backoff(),
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``func``; retry it on transient KaggleErrors. Only for calls that are safe to repeat."""
    start = time.monotonic()
    delays = backoff.delays()
    while True:
        try:
            return func()
        except KaggleError as exc:
            delay = next(delays, None) if exc.transient else None
            if delay is None:
                raise
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, backoff.cap))
            if time.monotonic() - start + delay > backoff.deadline:
                raise
            log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            sleep(delay)


def poll(check: Callable[[], T | None], timeout: float, interval: float = 1.0, max_interval: float = 15.0,
         sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Call ``check`` until it returns something other than None, or ``timeout`` seconds pass."""
    start = time.monotonic()
    while True:
        result = check()
        if result is not None:
            return result
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return None
        sleep(min(interval, left))
        interval = min(max_interval, interval * 1.5)
