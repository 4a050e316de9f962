"""Notebooks on Kaggle (kernels): push a version, wait for its run, fetch its output and its log.

A pushed version runs on Kaggle's machines, minutes to hours; ``wait_for_kernel`` polls its status with
growing intervals and says how it went: a failed run is a KaggleError that carries the end of its log.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kagglekit.core.errors import ConfigError, KaggleError
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.retry import poll

log = logging.getLogger(__name__)
METADATA = "kernel-metadata.json"  # what ``kaggle kernels push`` reads
FINISHED = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED")
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class KernelVersion:
    ref: str  # owner/slug
    version: int

    def __str__(self) -> str:  # how the kaggle client names one version
        return f"{self.ref}/{self.version}"


def kernel_ref(folder: Path) -> str:
    try:
        return json.loads((Path(folder) / METADATA).read_text(encoding="utf-8"))["id"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{Path(folder) / METADATA}: no kernel id to push to ({exc})") from None


def push_kernel(service: KaggleService, folder: Path, timeout: float | None = None,
                accelerator: str | None = None) -> KernelVersion:
    """Push the notebook ``folder`` describes as a new version; Kaggle queues its run."""
    ref = kernel_ref(folder)
    response = service.push_kernel(folder, ref, timeout, accelerator)
    kernel = KernelVersion(ref, int(response.version_number))
    log.info("notebook %s: version %d pushed, its run is queued", ref, kernel.version)
    return kernel


def wait_for_kernel(service: KaggleService, kernel: KernelVersion, timeout: float, interval: float = 2.0) -> None:
    """Return when ``kernel``'s run completes; KaggleError (with the end of its log) when it fails, or when it
    is still running after ``timeout`` seconds (it goes on running on Kaggle)."""
    started, seen = time.monotonic(), None

    def finished():
        nonlocal seen
        status = service.kernel_status(str(kernel))
        name = status.status.name
        if name != seen:
            log.info("notebook %s: %s (%.0f s)", kernel, name.lower(), time.monotonic() - started)
            seen = name
        return status if name in FINISHED else None

    status = poll(finished, timeout=timeout, interval=interval)
    if status is None:
        raise KaggleError(f"notebook {kernel} is still {(seen or 'queued').lower()} after {timeout:.0f} s; it goes on "
                          "running on Kaggle. Run the same command again later to pick it up (or wait longer)",
                          transient=True)
    if status.status.name != "COMPLETE":
        raise KaggleError(f"notebook {kernel} failed on Kaggle: {status.failure_message or status.status.name}\n"
                          f"--- the end of its log ---\n{log_tail(service.kernel_log(str(kernel)))}\n"
                          "--- fix the notebook (or the run it reproduces), then publish again")


def fetch_output(service: KaggleService, kernel: KernelVersion, folder: Path) -> Path:
    """Download the run's output files into ``folder`` (emptied first)."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    service.kernel_output(str(kernel), folder)
    return folder


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a run's log, each cut to a readable length. kaggle.com's log is
    a JSON list of ``{"stream_name", "time", "data"}`` entries; plain text is taken as it is."""
    try:
        entries = json.loads(text)
        text = "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))
    except (ValueError, TypeError, AttributeError):
        pass
    kept = [line.rstrip()[:300] for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(the log is empty)"
