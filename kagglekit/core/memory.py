"""Peak resident memory, so a user sees how near a command came to the machine's limit before it is too late:
every long command prints it when it ends, and runs and blends keep it in ``metrics.json`` (``timing``).

``ru_maxrss`` is the high-water mark of this process and, apart, of the largest child process it waited for
(a ``kagglekit compare`` cell, a ``tune`` trial's Ray worker once reaped): reported only for the commands
whose work runs in children, so a stray ``git`` call never shows up as a figure.
"""

from __future__ import annotations

import resource
import sys

_UNIT = 2**30 if sys.platform == "darwin" else 2**20  # ru_maxrss: bytes on macOS, KiB on Linux


def peak_memory_gib(children: bool = False) -> dict[str, float]:
    """``peak_memory_gib``: this process's peak resident memory; with ``children`` (for work done in child
    processes), ``peak_child_memory_gib``: the largest finished child's, where there was one."""
    out = {"peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _UNIT, 2)}
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if children else 0
    if child:
        out["peak_child_memory_gib"] = round(child / _UNIT, 2)
    return out


def peak_memory_line(children: bool = False) -> str:
    """``peak memory 2.41 GiB`` (with ``children``: and ``, largest child process 1.20 GiB``), as commands
    print it."""
    peak = peak_memory_gib(children)
    line = f"peak memory {peak['peak_memory_gib']:.2f} GiB"
    return line + (f", largest child process {peak['peak_child_memory_gib']:.2f} GiB" if "peak_child_memory_gib" in peak
                   else "")
