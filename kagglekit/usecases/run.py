"""A run trained from its resolved competition and config, then recorded in the score ledger and submitted if
asked (a blend too), and summed up in a table.

The competition and the run config are resolved once (``usecases.config``) and passed down frozen; the run is
recorded in the ledger after its outputs are safe on disk.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.competitions.reference import is_competition_file
from kagglekit.core.config import RunConfig
from kagglekit.core.errors import ConfigError
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.submit import describe, submit_file
from kagglekit.learners.devices import is_chief, multi_worker, scratch, start_workers
from kagglekit.pipelines import get_pipeline
from kagglekit.runs.ledger import Ledger, LedgerError, default_ledger_path
from kagglekit.runs.result import RunResult
from kagglekit.runs.layout import RUN_FILES
from kagglekit.runs.rundir import new_run_dir

log = logging.getLogger(__name__)


def train(competition: Competition, config: RunConfig, run_dir: Path | None = None) -> RunResult:
    """Cross-validate, predict and write a validated submission in a new run directory, or in ``run_dir``
    (a killed run, continued from its last finished fold and epoch). On several workers (``TF_CONFIG``) every
    worker trains; the chief writes the run, the others a scratch copy, removed when they end."""
    if run_dir is None:
        start_workers(config.device)  # before anything else runs TensorFlow
        if not is_chief(config.device):
            config = config.model_copy(update={"output_dir": scratch()})
        run_dir = new_run_dir(config, competition.name)
        if is_competition_file(config.competition):  # the run directory must explain itself
            shutil.copyfile(config.competition, run_dir / RUN_FILES.competition)
    else:
        if multi_worker(config.device):  # the other workers' copies (their checkpoints) are gone
            raise ConfigError(f"--resume {run_dir}: a run on several workers (TF_CONFIG) cannot resume; start it "
                              "again, or resume it on one worker (device.strategy: none, without TF_CONFIG)")
        log.info("resuming %s", run_dir)
    log.info("%s → %s", competition.describe(), run_dir)
    try:
        result = get_pipeline(competition.task, config.train.learner)(competition, config, run_dir)
    except KeyboardInterrupt:  # Ctrl-C: what it trained is kept; say how to go on (the CLI says "interrupted")
        if not multi_worker(config.device) and (run_dir / RUN_FILES.config).is_file():  # what --resume reads
            log.warning("%s keeps the folds and epochs it finished; continue it with: kagglekit run %s --resume %s",
                        run_dir, config.competition, run_dir)
        raise
    if not is_chief(config.device):
        shutil.rmtree(config.output_dir, ignore_errors=True)
    return result


def summary_table(result: RunResult) -> str:
    """The end-of-run summary: the CV beside the best constant answer's, the time of each stage (where the
    pipeline timed them), the outputs."""
    from tabulate import tabulate

    rows = [[f"CV {result.metric}", f"{result.cv_mean:.4f} ± {result.cv_std:.4f}"]]
    constant = result.extra.get("baseline")
    if constant:
        rows += [[f"constant baseline{f' ({part})' if part else ''}",
                  f"{c['score']:.4f}{'' if c['beaten'] else ' NOT BEATEN'}: {c['name']}"]
                 for part, c in [("", constant), *constant.get("parts", {}).items()]]
    rows += [[stage, f"{seconds:.0f} s"] for stage, seconds in result.extra.get("stages", {}).items()]
    rows += [["total", f"{result.seconds:.0f} s"], ["run directory", str(result.run_dir)]]
    return tabulate(rows, tablefmt="simple_outline")


def record_and_submit(result: RunResult, config: RunConfig, competition: Competition, submit: bool = False,
                      message: str | None = None, force: bool = False,
                      service: KaggleService | None = None) -> dict | None:
    """Record the finished run in the user's ledger; with ``submit``, send its submission.csv once.

    The run's outputs are already safe in its directory: a ledger that cannot be written only costs the
    record (a warning naming the ledger file), unless the submission, which needs it, was asked for.
    """
    try:
        ledger = Ledger(default_ledger_path())
        run_id = ledger.record_run(result, config)
    except LedgerError as exc:
        if submit:
            raise
        log.warning("the run is not recorded in the score ledger (its outputs are safe in %s): %s",
                    result.run_dir, exc)
        return None
    if not submit:
        return None
    text = f"{run_id}: CV {result.metric} {result.cv_mean:.4f} ± {result.cv_std:.4f}"
    row = submit_file(service or KaggleService(), ledger, competition, Path(result.submission),
                      f"{text} - {message}" if message else text, Path(config.data), run_id=run_id, force=force)
    print(f"submitted {result.submission}: {describe(row)}")
    return row
