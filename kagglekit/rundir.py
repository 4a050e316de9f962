"""Run directories: ``<output>/<competition>/<time>-<config hash>/``, each one explaining itself."""

from __future__ import annotations

import time
from pathlib import Path

from kagglekit.config import RunConfig
from kagglekit.provenance import write_provenance


def new_run_dir(config: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(config.output_dir) / config.competition / f"{stamp}-{config.hash()}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{stamp}-{config.hash()}-{suffix}")
    run_dir.mkdir(parents=True)
    write_provenance(run_dir)
    return run_dir
