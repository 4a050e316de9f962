"""A run's ``time_budget`` applied to its config: planned once from this machine's timings, saved, reused.

The plan (``learners.budget``) lowers a section's ``epochs`` (and ``scored_folds``) before the first fold
trains; the planned config is what the run saves as its ``config.yaml`` (what it computed), and the plan is
kept in ``time_plan.json``. After each scored fold, ``replanned`` checks the rest against the fold's measured
seconds and saves what it changed in both files. A resumed run finds them and plans nothing again, so it trains
what it started.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Callable

from kagglekit.core.config import RunConfig
from kagglekit.core.fileio import atomic_write_json
from kagglekit.learners import budget
from kagglekit.learners.devices import slowest
from kagglekit.runs.layout import RUN_FILES

log = logging.getLogger(__name__)


def budgeted(config: RunConfig, run_dir: Path, section: str, started: float,
             timings: Callable[[], tuple[float, float]], estimate: Callable[[float, float, int, int], float],
             min_epochs: int, max_scored: int) -> tuple[RunConfig, budget.Plan | None]:
    """``config`` with ``config.<section>``'s epochs (and, where ``max_scored`` > 1, scored folds) fitted to the
    budget, then its ``tta`` with the section's ``spare_views`` where they still fit (``budget.add_views``), and the
    plan (None without a budget). ``timings()`` measures (step, image) seconds; ``estimate(step_s, image_s,
    scored_folds, epochs, views=None)`` is the rest of the run's seconds, predicting in ``views`` TTA views (None: as
    many as ``config.tta``; asked only of a section with ``spare_views``)."""
    path = Path(run_dir) / RUN_FILES.time_plan
    if config.time_budget is None:
        return config, None
    if path.is_file():  # a resumed run: its config.yaml already holds the plan
        return config, budget.Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    step_s, image_s, spent_s = slowest(config.device, [*timings(), time.time() - started])  # one plan for all workers
    cfg = getattr(config, section)
    plan = budget.plan(config.time_budget, spent_s, step_s, image_s, cfg.epochs, min_epochs,
                       max_scored, lambda scored, epochs: estimate(step_s, image_s, scored, epochs))
    spare = [view for view in getattr(cfg, "spare_views", []) if view not in config.tta]
    plan = budget.add_views(plan, spare, lambda more: spent_s + estimate(step_s, image_s, plan.scored_folds,
                                                                         plan.epochs, len(config.tta) + more))
    update = {"epochs": plan.epochs} | ({"scored_folds": plan.scored_folds} if max_scored > 1 else {})
    config = config.model_copy(update={section: cfg.model_copy(update=update), "tta": [*config.tta, *plan.spare_views]})
    config.save(Path(run_dir) / RUN_FILES.config)
    atomic_write_json(path, plan.to_dict())
    log.info("time budget %.0f s: %.2f s a training step, %.3f s an image's forward pass here: %d epoch(s) (of at "
             "most %d), %d scored fold(s), %d test-time view(s), about %.0f s in all", plan.budget_s, step_s, image_s,
             plan.epochs, cfg.epochs, plan.scored_folds, len(config.tta), plan.estimated_s)
    return config, plan


def replanned(config: RunConfig, run_dir: Path, section: str, plan: budget.Plan | None, spent_s: float, done: int,
              min_epochs: int, rest: Callable[[int, int], float]) -> tuple[RunConfig, budget.Plan | None]:
    """``config`` and ``plan`` after ``done`` scored folds and ``spent_s`` seconds of the run (``budget.replan``;
    ``rest(scored_folds, epochs)``: the seconds left, from what those folds measured; where several workers train,
    the caller passes the slowest worker's figures, so that every worker re-plans alike), both saved again if the
    plan changed."""
    if plan is None:
        return config, plan
    cfg = getattr(config, section)
    changed = budget.replan(plan, spent_s, done, budget.pair_floor(cfg.epochs, min_epochs), rest)
    if changed == plan:
        return config, plan
    config = config.model_copy(update={section: cfg.model_copy(update={"scored_folds": changed.scored_folds})})
    config.save(Path(run_dir) / RUN_FILES.config)
    atomic_write_json(Path(run_dir) / RUN_FILES.time_plan, changed.to_dict())
    return config, changed


def stopped(run_dir: Path, plan: budget.Plan | None, learner, started: float) -> budget.Plan | None:
    """``plan``, with the stop of ``learner`` (a fine-tuned network or a segmenter) at its deadline recorded
    (``budget.stopped``) and saved if its fit stopped there."""
    if not learner.stopped_at:
        return plan
    changed = budget.stopped(plan, learner.workdir.name, learner.stopped_at, time.time() - started)
    atomic_write_json(Path(run_dir) / RUN_FILES.time_plan, changed.to_dict())
    return changed


def deadline(config: RunConfig, plan: budget.Plan | None, started: float, n_predicted: int,
             views: int | None = None) -> budget.Deadline | None:
    """The deadline of a network whose training ``n_predicted`` images' prediction (each in ``views`` TTA views: by
    default all the run's) still follows: the budget less that prediction's planned seconds (``budget.deadline``),
    agreed by every worker where several train. None without a budget."""
    views = len(config.tta) if views is None else views
    return budget.deadline(plan, started, 0.0 if plan is None else n_predicted * views * plan.image_s,
                           functools.partial(slowest, config.device))
