"""Run directories: ``<output>/<competition>/<time>-<config hash>/``, each one explaining itself (what they
hold: ``runs/layout.py``)."""

from __future__ import annotations

import time
from pathlib import Path

from kagglekit.core.config import RunConfig
from kagglekit.runs.provenance import write_provenance


def new_run_dir(config: RunConfig, competition: str) -> Path:
    """A new, empty run directory; runs started in the same second get distinct names."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = Path(config.output_dir) / competition
    parent.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        run_dir = parent / (f"{stamp}-{config.hash()}" + (f"-{suffix}" if suffix > 1 else ""))
        try:
            run_dir.mkdir()  # atomic: two runs can never claim the same directory
            break
        except FileExistsError:
            suffix += 1
    write_provenance(run_dir)
    return run_dir
