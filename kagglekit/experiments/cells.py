"""One run of an experiment as a child ``kagglekit run`` process: resumable, logged to a file, timed.

A child process per run keeps each run's peak memory its own (the figure the comparison reports) and
lets one failing run end without ending the experiment. A run folder left by a killed experiment is
resumed (``kagglekit run --resume``), never started again beside itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from kagglekit.core.config import RunConfig, from_dict
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.runs.layout import RUN_FILES

LOG_TAIL = 15  # lines of a failed run's log quoted in its error
WALL = "wall.json"
#: The cell's run config, which the child reads (``--config``); the run directory keeps its own resolved copy.
CELL_CONFIG = "config.yaml"


@dataclass
class Outcome:
    """What one run left: its run directory and metrics (None if it failed) or the tail of its log, and
    the wall seconds of its child processes (start-up included; every attempt, for a resumed run)."""

    run_dir: Path | None
    metrics: dict | None
    seconds: float
    error: str | None = None


def finished_run(output_dir: Path, competition: str) -> tuple[Path | None, bool]:
    """The run directory in ``output_dir`` (at most one per cell) and whether it finished."""
    runs = sorted(p for p in (output_dir / competition).glob("*") if p.is_dir()) if output_dir.is_dir() else []
    if not runs:
        return None, False
    return runs[-1], (runs[-1] / RUN_FILES.metrics).is_file()


def run_cell(competition_ref: str, competition: str, config: dict, folder: Path, data: str,
             weights_dir: str | None = None) -> Outcome:
    """Run (or resume, or just read) the run of ``config`` whose home is ``folder``."""
    output_dir = folder / "runs"
    run_dir, done = finished_run(output_dir, competition)
    if not done:
        from_dict(RunConfig, config, where=str(folder / CELL_CONFIG))  # a bad cell fails here, not in a child
        config_file = folder / CELL_CONFIG
        atomic_write_text(config_file, yaml.safe_dump(config, sort_keys=False))
        command = [sys.executable, "-m", "kagglekit", "run", competition_ref, "--data", data]
        command += ["--resume", str(run_dir)] if run_dir else ["--config", str(config_file), "--output-dir", str(output_dir)]
        if weights_dir:
            command += ["--weights-dir", weights_dir]
        log_file = folder / "run.log"
        started = time.perf_counter()
        with open(log_file, "a", encoding="utf-8") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        atomic_write_json(folder / WALL, {"seconds": wall_seconds(folder) + time.perf_counter() - started})
        run_dir, done = finished_run(output_dir, competition)
        if code != 0 or not done:
            tail = "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL:])
            return Outcome(run_dir, None, wall_seconds(folder), f"`kagglekit run` exited with {code}; see {log_file}:\n{tail}")
    metrics = json.loads((run_dir / RUN_FILES.metrics).read_text(encoding="utf-8"))
    return Outcome(run_dir, metrics, wall_seconds(folder) or metrics.get("seconds", 0.0))


def wall_seconds(folder: Path) -> float:
    path = folder / WALL
    return json.loads(path.read_text(encoding="utf-8"))["seconds"] if path.is_file() else 0.0
