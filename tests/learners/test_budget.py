"""A time budget becomes epochs and scored folds before training: the plan from timings, its order of
sacrifices, its file for a resumed run, and the real timings of the shared fine-tuned run."""

import json
import time

import pytest

from kagglekit.core.config import RunConfig, from_dict
from kagglekit.core.errors import ConfigError
from kagglekit.learners import budget
from kagglekit.pipelines.budgeting import budgeted
from kagglekit.pipelines.finetuning import finetune_seconds
from kagglekit.runs.layout import RUN_FILES


def linear(seconds_per_epoch: float, fixed: float = 0.0):
    """An estimate: each scored fold costs ``fixed`` plus its epochs."""
    return lambda scored, epochs: scored * (fixed + epochs * seconds_per_epoch)


@pytest.mark.parametrize("budget_s,max_scored,expected", [
    (1000, 2, (10, 2)),  # 2 x 10 x 40 = 800 <= 0.9 x 1000: everything fits
    (1500, 3, (10, 3)),  # 3 x 10 x 40 = 1200 <= 1350
    (1000, 3, (10, 2)),  # 3 folds would not fit: a fold is dropped, every network keeps its 10 epochs
    (880, 2, (9, 2)),  # 2 x 10 x 40 = 800 > 792: two folds keep their pair, at 9 epochs (720)
    (700, 2, (10, 1)),  # 2 x 8 = 640 > 630, and 8 is the pair's floor (3/4 of 10): one fold, not two of 7 epochs
    (400, 2, (9, 1)),  # one fold, epochs down to what fits (360 <= 360)
    (300, 3, (6, 1)),  # (240 <= 270)
])
def test_folds_fall_before_epochs_down_to_a_pair(budget_s, max_scored, expected):
    plan = budget.plan(budget_s, 0.0, 1.0, 0.01, max_epochs=10, min_epochs=2, max_scored=max_scored,
                       estimate=linear(40))
    assert (plan.epochs, plan.scored_folds) == expected and plan.fits
    assert plan.estimated_s <= budget.SAFETY * budget_s


def test_a_budget_too_small_runs_the_smallest_plan_and_says_so(caplog):
    plan = budget.plan(100, 50.0, 1.0, 0.01, max_epochs=10, min_epochs=3, max_scored=2, estimate=linear(40))
    assert (plan.epochs, plan.scored_folds, plan.fits) == (3, 1, False)
    assert plan.estimated_s == 50 + 120 and "even 3 epoch(s) on 1 fold" in caplog.text


def test_time_spent_before_planning_counts():
    early = budget.plan(1000, 0.0, 1.0, 0.0, 10, 1, 1, linear(80))
    late = budget.plan(1000, 500.0, 1.0, 0.0, 10, 1, 1, linear(80))
    assert (early.epochs, late.epochs) == (10, 5)


@pytest.mark.parametrize("written,seconds", [("30m", 1800), ("1.5h", 5400), ("90s", 90), (1200, 1200), (None, None)])
def test_a_budget_is_written_as_people_write_durations(written, seconds):
    assert from_dict(RunConfig, {"time_budget": written}).time_budget == seconds


@pytest.mark.parametrize("written", ["soon", "30 minutes", 0, -5, True])
def test_a_budget_that_is_no_duration_names_the_key(written):
    with pytest.raises(ConfigError, match="time_budget"):
        from_dict(RunConfig, {"time_budget": written})


def test_the_plan_is_saved_with_the_config_and_a_resumed_run_reuses_it(tmp_path):
    config = from_dict(RunConfig, {"time_budget": "20m", "folds": 5, "finetune": {"epochs": 14, "scored_folds": 2}})
    estimate = finetune_seconds(config, n_train=2000, n_test=800)
    planned, plan = budgeted(config, tmp_path, "finetune", started=time.time(),
                             timings=lambda: (2.0, 0.05), estimate=estimate, min_epochs=4, max_scored=2)
    assert plan.fits and planned.finetune.epochs == plan.epochs < 14
    assert plan.estimated_s <= budget.SAFETY * 1200
    saved = RunConfig.load(tmp_path / "config.yaml")
    assert (saved.finetune.epochs, saved.finetune.scored_folds) == (plan.epochs, plan.scored_folds)
    assert json.loads((tmp_path / RUN_FILES.time_plan).read_text())["epochs"] == plan.epochs

    def never():
        raise AssertionError("a resumed run measured again")

    again, same = budgeted(saved, tmp_path, "finetune", 0.0, never, estimate, 4, 2)
    assert same == plan and again == saved


def test_no_budget_trains_the_configured_epochs(tmp_path):
    config = from_dict(RunConfig, {"time_budget": None})
    assert budgeted(config, tmp_path, "finetune", 0.0, None, None, 1, 2) == (config, None)
    assert not (tmp_path / RUN_FILES.time_plan).exists()


@pytest.mark.slow
def test_the_shared_fine_tuned_run_planned_from_real_timings(seedlings_finetuned_run):
    metrics = json.loads((seedlings_finetuned_run / "metrics.json").read_text())
    planned = metrics["time_budget"]
    assert planned["budget_s"] == 36000 and planned["fits"] and planned["kept"]
    assert planned["epochs"] == 6 and planned["scored_folds"] == 1  # a 10-hour budget never binds
    assert planned["step_s"] > 0 and planned["image_s"] > 0 and 0 < planned["estimated_s"] < 36000
    assert planned["actual_s"] <= metrics["seconds"] + 1
