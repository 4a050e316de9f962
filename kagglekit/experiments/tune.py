"""Hyperparameter search (``kagglekit tune``): Optuna proposes, Ray Tune runs the trials.

- The search: Optuna's TPE sampler inside Ray Tune's ``OptunaSearch``, its study kept in an SQLite
  storage in the tuning folder (``study.db``: every trial's parameters, fold-by-fold values and result).
- The pruning: each trial reports its running CV after every fold; Ray's ASHA scheduler stops trials whose
  running CV falls behind the others' at the same fold.
- The trials: Ray Tune on a local Ray started in-process, or on an existing cluster (``address``), as many
  at once as their CPU/GPU reservations fit. TensorFlow ignores Ray's CPU reservation, so a trial sets
  its thread pools to it.
- Where a trial ran: each result carries Ray's id of the node that ran it and the resources Ray gave it
  (``node``, ``resources``, kept in ``trials.csv``), so a cluster's user sees where the work went.
- Resuming: an interrupted study (Ctrl-C, a killed driver) continues with ``Tuner.restore`` when the same
  command is run again; a trial's unfinished run is resumed in its own run directory.

Every trial is an ordinary run (run directory, ledger row). The best finished trial's config is written
as ``best.yaml``, which ``kagglekit run COMPETITION --config best.yaml`` accepts and reproduces.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kagglekit.core.config import RunConfig, from_dict, merge
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json, atomic_write_text
from kagglekit.experiments.cells import finished_run
from kagglekit.experiments.space import SearchSpace
from kagglekit.runs.layout import RUN_FILES

log = logging.getLogger(__name__)

SPEC, STUDY, RAY_FOLDER, BEST = "tune.json", "study.db", "ray", "best.yaml"
METRIC = "cv"  # the running mean of the fold scores reported so far; the CV once every fold is in
FINISHED = "finished"  # set in a trial's last report only (Ray sets its own "done" on a pruned trial's last too)
#: Passed on to the trial processes, which a Ray cluster does not start with the driver's environment.
FORWARDED_ENV = ("KERAS_BACKEND", "KAGGLEKIT_CACHE", "KAGGLEKIT_LEDGER", "KAGGLEKIT_WEIGHTS_DIR",
                 "TF_CPP_MIN_LOG_LEVEL", "KAGGLE_CONFIG_DIR")


@dataclass(frozen=True)
class Study:
    """What a tuning folder searches: the competition, the resolved base config and the space."""

    folder: Path
    competition_ref: str
    competition: str
    task: str
    base: dict
    space: SearchSpace
    trials: int
    seed: int

    def spec(self) -> dict:
        return {"competition": self.competition_ref, "space": self.space.to_dict(), "trials": self.trials,
                "seed": self.seed, "config": self.base}

    def config(self, params: dict) -> RunConfig:
        return from_dict(RunConfig, merge(self.base, self.space.overrides(params)), where="trial config")


def trial(params: dict, study: Study, threads: int) -> None:
    """One trial, in a Ray worker: an ordinary run of the drawn config, reporting its running CV per fold."""
    from ray import tune

    _limit_threads(threads)
    from kagglekit.competitions.discovery import get_competition
    from kagglekit.pipelines import get_pipeline
    from kagglekit.runs.ledger import Ledger, LedgerError, default_ledger_path
    from kagglekit.runs.rundir import new_run_dir

    output = study.folder / "trials" / tune.get_context().get_trial_id()
    config = study.config(params).model_copy(update={"output_dir": str(output)})
    where = placement()
    run_dir, done = finished_run(output, study.competition)
    if done:  # finished before the study was interrupted: report it again
        metrics = json.loads((run_dir / RUN_FILES.metrics).read_text(encoding="utf-8"))
        tune.report({METRIC: metrics["cv_mean"], "cv_std": metrics["cv_std"], "folds": len(metrics["fold_scores"]),
                     FINISHED: True, "run_dir": str(run_dir), **where})
        return
    run_dir = run_dir or new_run_dir(config, study.competition)  # an unfinished run resumes in its own folder
    competition = get_competition(study.competition_ref).resolve(Path(config.data))
    scores: list[float] = []

    def on_fold(fold: int, score: float) -> None:
        scores.append(score)
        tune.report({METRIC: sum(scores) / len(scores), "fold": fold, "fold_score": score, "folds": len(scores),
                     "run_dir": str(run_dir), **where})

    result = get_pipeline(competition.task, config.train.learner)(competition, config, run_dir, on_fold=on_fold)
    try:
        Ledger(default_ledger_path()).record_run(result, config)
    except LedgerError as exc:
        log.warning("trial %s is not recorded in the ledger: %s", run_dir, exc)
    tune.report({METRIC: result.cv_mean, "cv_std": result.cv_std, "folds": len(result.fold_scores), FINISHED: True,
                 "run_dir": str(run_dir), **where})


def placement() -> dict:
    """Where this trial runs: Ray's node id and the resources Ray gave it (e.g. ``{"CPU": 1.0}``, as JSON)."""
    import ray

    context = ray.get_runtime_context()
    return {"node": context.get_node_id(), "resources": json.dumps(context.get_assigned_resources(), sort_keys=True)}


def _limit_threads(threads: int) -> None:
    """TensorFlow sizes its thread pools to the machine, not to the trial's CPU reservation."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))


def claim_folder(study: Study) -> bool:
    """True to resume the study in ``study.folder``; False for a new one. Refuses a folder holding anything else."""
    spec_file = study.folder / SPEC
    if spec_file.is_file():
        saved = json.loads(spec_file.read_text(encoding="utf-8"))
        if saved != json.loads(json.dumps(study.spec())):
            raise ConfigError(f"{study.folder} holds another study ({spec_file}); choose a new --out folder, or repeat "
                              "that study's own options (competition, config, --space, --trials, --seed) to continue it")
        return True
    if study.folder.exists() and any(study.folder.iterdir()):
        raise ConfigError(f"{study.folder} is not empty and holds no study; choose a new --out folder")
    study.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(spec_file, study.spec())
    return False


def run_study(study: Study, address: str | None, cpus_per_trial: float | None, gpus_per_trial: float | None) -> pd.DataFrame:
    """Run (or resume) the study; returns its trials table. KeyboardInterrupt after Ray saved its state."""
    try:
        import optuna
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise ConfigError(f"kagglekit tune needs Ray Tune and Optuna ({exc}): pip install 'kagglekit[tune]'") from None

    resuming = claim_folder(study)
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": env}, ignore_reinit_error=True)
    try:
        # default: a GPU per trial where there are GPUs, the CPUs shared among them; else every CPU per trial
        total_cpus, total_gpus = ray.cluster_resources().get("CPU", 1), ray.cluster_resources().get("GPU", 0)
        gpus = gpus_per_trial if gpus_per_trial is not None else min(1, total_gpus)
        cpus = cpus_per_trial or max(1, total_cpus // max(1, int(total_gpus) if gpus else 1))
        trainable = tune.with_resources(tune.with_parameters(trial, study=study, threads=max(1, int(cpus))),
                                        {"cpu": cpus, "gpu": gpus})
        path = study.folder / RAY_FOLDER
        if resuming and tune.Tuner.can_restore(path):
            log.info("resuming the study in %s", study.folder)
            tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
        else:
            storage = optuna.storages.RDBStorage(f"sqlite:///{(study.folder / STUDY).resolve()}")
            searcher = OptunaSearch(metric=METRIC, mode="max", storage=storage, study_name="kagglekit", seed=study.seed)
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=study.base["folds"] + 1, grace_period=1,
                                      reduction_factor=2)
            tuner = tune.Tuner(
                trainable, param_space=study.space.ray_space(),
                tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=searcher, scheduler=scheduler,
                                            num_samples=study.trials),
                run_config=tune.RunConfig(name=RAY_FOLDER, storage_path=str(study.folder.resolve()), verbose=1,
                                          failure_config=tune.FailureConfig(max_failures=0)))
        tuner.fit()
    finally:
        ray.shutdown()
    grid, unfinished = saved_trials(path)
    table = trials_table(study, grid, unfinished)
    atomic_write_text(study.folder / "trials.csv", table.to_csv(index=False))
    if unfinished or len(grid) < study.trials:  # a Ctrl-C'd ``fit`` returns, its state saved
        raise KeyboardInterrupt
    return table


def saved_trials(path: Path) -> tuple:
    """(Ray's ResultGrid, the paths of the trials not ended) as Ray's experiment state in ``path`` last saved them.
    Not the grid ``fit`` returns: after a Ctrl-C, Ray's clean-up marks every trial it stops TERMINATED, as it marks
    a finished or pruned one (a study of 2 trials interrupted while both existed was reported as ended: "no trial
    finished", both "pruned"); the state it saved before the clean-up keeps them running or pending, and
    ``Tuner.restore`` resumes them from it."""
    from ray.tune import ExperimentAnalysis, ResultGrid
    from ray.tune.experiment import Trial

    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")  # fit has already said which trials have
    level = quiet.level                                                 # no results yet
    quiet.setLevel(logging.ERROR)
    try:
        analysis = ExperimentAnalysis(str(path))
    finally:
        quiet.setLevel(level)
    return ResultGrid(analysis), {t.path for t in analysis.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)}


def trials_table(study: Study, grid, unfinished: set[str]) -> pd.DataFrame:
    """One row per trial: its parameters, state (done, pruned, error, or interrupted: ``unfinished``, resumed by
    the same command), CV, folds scored, where it ran (node, resources) and run directory; best first."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        state = "error" if result.error else "done" if metrics.get(FINISHED) else \
            "interrupted" if result.path in unfinished else "pruned"
        params = {d.key: d.cast(result.config[d.key]) for d in study.space.dimensions if d.key in (result.config or {})}
        rows.append({"trial": metrics.get("trial_id", ""), "state": state, METRIC: metrics.get(METRIC),
                     "cv_std": metrics.get("cv_std"), "folds": metrics.get("folds"), **params,
                     "node": metrics.get("node"), "resources": metrics.get("resources"),
                     "run_dir": metrics.get("run_dir")})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table.assign(_done=table.state == "done").sort_values(["_done", METRIC], ascending=False)
    return order.drop(columns="_done").reset_index(drop=True)


def write_best(study: Study, table: pd.DataFrame) -> Path | None:
    """``best.yaml``: the run config of the best finished trial (base config + its parameters)."""
    done = table[table.state == "done"] if not table.empty else table
    if done.empty:
        return None
    best = done.iloc[0]
    params = {d.key: best[d.key] for d in study.space.dimensions}
    path = study.folder / BEST
    study.config(params).save(path)
    atomic_write_json(study.folder / "best.json", {"cv": float(best[METRIC]), "cv_std": float(best["cv_std"]),
                                                   "run_dir": best["run_dir"], "params": {k: _plain(v) for k, v in params.items()}})
    return path


def _plain(value):
    return value.item() if hasattr(value, "item") else value
