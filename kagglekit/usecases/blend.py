"""Several finished runs of a competition combined into a new run directory, with a nested-CV score and a
validated submission, by the blend module the competition's task names (``kagglekit.tasks``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_text
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.result import RunResult

if TYPE_CHECKING:  # the blend pipelines are imported when a blend is made
    from kagglekit.pipelines.blend import BlendConfig

#: How members are weighted: equal weights, ensemble selection on out-of-fold rows, logistic regression on them.
METHODS = ("mean", "hill", "stack")


def blend(runs: list[Path], method: str = "hill", data: Path | None = None,
          output_dir: Path | None = None) -> tuple[RunResult, BlendConfig, Competition]:
    """The blend's result, its config (what the ledger records) and its competition. ``data``: the competition
    folder (default: the first run's); ``output_dir``: where the blend's run directory goes (default: beside
    the first run's)."""
    from kagglekit.pipelines import blend_module
    from kagglekit.pipelines.blend import BlendConfig
    from kagglekit.pipelines.rebuild import run_competition
    from kagglekit.runs.rundir import new_run_dir

    if method not in METHODS:
        raise ConfigError(f"blend method {method!r}: expected one of {', '.join(METHODS)}")
    runs = [Path(run) for run in runs]
    if len(set(p.resolve() for p in runs)) < 2:
        raise ConfigError("a blend needs two or more different run directories")
    competition = run_competition(runs[0])
    pipeline = blend_module(competition.task)
    members = [pipeline.read_member(p) for p in runs]
    first = members[0]
    data = Path(data) if data is not None else Path(first.config.data or "")
    if not data.is_dir():
        raise ConfigError(f"the competition folder {data} is gone; pass --data with it (the submission is validated)")
    competition = competition.resolve(data)
    output = output_dir or first.run_dir.parent.parent
    config = BlendConfig(competition=first.config.competition, members=[str(m.run_dir) for m in members],
                         method=method, output_dir=str(output), data=str(data))
    run_dir = new_run_dir(config, competition.name)
    atomic_write_text(run_dir / RUN_FILES.blend_config, config.model_dump_json(indent=1) + "\n")
    if (first.run_dir / RUN_FILES.competition).is_file():  # the blend explains itself like its members
        (run_dir / RUN_FILES.competition).write_bytes((first.run_dir / RUN_FILES.competition).read_bytes())
    return pipeline.run(competition, members, method, run_dir, data), config, competition
