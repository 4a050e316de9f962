"""Faults the local service injects on demand, to prove clients retry and never submit twice.

A fault names an operation (an RPC method such as ``CreateSubmission``, or ``upload``,
``download``, ``score``) and what goes wrong, consumed ``times`` times:
- ``"500"``, ``"503"``, ``"429"``...: answer that HTTP status before doing anything;
- ``"500-after"``: do the work, then answer 500 (the client cannot know it worked);
- ``"timeout"``: do the work, then stall ``seconds`` and hang up without an answer;
- ``"drop"``: hang up without an answer, doing nothing;
- ``"slow"``: take ``seconds`` (a download trickles over that time; scoring waits that long).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = ("500-after", "timeout", "drop", "slow")


@dataclass
class Fault:
    op: str
    kind: str
    times: int = 1
    seconds: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS and not (self.kind.isdigit() and 400 <= int(self.kind) < 600):
            raise ValueError(f"unknown fault kind {self.kind!r}: an HTTP status or one of {KINDS}")

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None


class Faults:
    """Thread-safe queue of pending faults; ``hits`` counts the ones that fired per operation."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        self.hits: dict[str, int] = {}

    def add(self, op: str, kind: str, times: int = 1, seconds: float = 0.0) -> Fault:
        fault = Fault(op, kind, times, seconds)
        with self._lock:
            self._pending.append(fault)
        return fault

    def take(self, op: str) -> Fault | None:
        with self._lock:
            for fault in self._pending:
                if fault.op == op and fault.times > 0:
                    fault.times -= 1
                    self.hits[op] = self.hits.get(op, 0) + 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self.hits.clear()
