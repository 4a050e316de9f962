"""Bounded retries of Kaggle API calls (tenacity), and bounded polling.

Every loop here ends: after ``attempts`` tries or ``deadline`` seconds, whichever comes first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random_exponential,
)

from kagglekit.core.errors import KaggleError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Retry policy: waits of ``base * factor**n`` capped at ``cap``, each drawn from [d/2, d] ("equal
    jitter"), for at most ``attempts`` tries and ``deadline`` seconds in all."""

    attempts: int = 5
    base: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    deadline: float = 120.0  # seconds, over all attempts

    def jitter(self):
        """Equal jitter as a tenacity wait: half the exponential delay for sure, plus up to as much again."""
        half = {"multiplier": self.base / 2, "exp_base": self.factor, "max": self.cap / 2}
        return wait_exponential(**half) + wait_random_exponential(**half)

    def delays(self) -> Iterator[float]:
        """The waits between the ``attempts`` tries, for a loop that keeps its own books (kaggle.submit)."""
        jitter, state = self.jitter(), RetryCallState(None, None, (), {})
        for attempt in range(1, self.attempts):
            state.attempt_number = attempt
            yield jitter(state)


def call_with_retry(func: Callable[[], T], what: str, backoff: Backoff = Backoff(),
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``func``; retry it on transient KaggleErrors, then raise the last one. Only for calls that
    are safe to repeat."""
    jitter = backoff.jitter()

    def wait(state: RetryCallState) -> float:
        delay, retry_after = jitter(state), state.outcome.exception().retry_after
        return delay if retry_after is None else max(delay, min(retry_after, backoff.cap))  # HTTP 429 Retry-After

    def warn(state: RetryCallState) -> None:
        log.warning("%s failed (%s); retrying in %.1f s", what, state.outcome.exception(), state.next_action.sleep)

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, KaggleError) and exc.transient),
        wait=wait,
        stop=stop_after_attempt(backoff.attempts) | stop_before_delay(backoff.deadline),
        before_sleep=warn,
        sleep=sleep,
        reraise=True,  # the KaggleError says what to do; tenacity's RetryError would not
    )
    return retrying(func)


def poll(check: Callable[[], T | None], timeout: float, interval: float = 1.0, max_interval: float = 15.0,
         sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Call ``check`` until it returns something other than None, or ``timeout`` seconds pass.

    Written out rather than with tenacity: the last wait is cut to end exactly at ``timeout``.
    """
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
