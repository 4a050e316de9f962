"""A time budget becomes epochs and scored folds before training: the plan from timings, its order of
sacrifices, its file for a resumed run, and the real timings of the shared fine-tuned run."""

import json
import time

import pytest

from kagglekit.core.config import RunConfig, from_dict
from kagglekit.core.errors import ConfigError
from kagglekit.learners import budget
from kagglekit.learners.segmenter import segmenter_views
from kagglekit.pipelines.budgeting import budgeted, deadline, replanned
from kagglekit.pipelines.finetuning import finetune_seconds, measured_rest
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


def two_folds_of_10() -> budget.Plan:
    """The plan of a 1000 s budget for two folds of 10 epochs at 40 s an epoch (800 s: it fits 900)."""
    return budget.plan(1000, 0.0, 1.0, 0.01, max_epochs=10, min_epochs=2, max_scored=2, estimate=linear(40))


@pytest.mark.parametrize("spent_s,per_epoch,expected", [
    (400, 40, (2, 10)),  # the first fold took what was planned: 400 + 400 <= 900, the plan stands
    (500, 40, (2, 10)),  # 500 + 400 = 900: still fits
    (500, 50, (2, 8)),  # slower than planned: 500 + 8 x 50 = 900, the second network trains 8 epochs
    (600, 50, (1, 10)),  # 600 + 8 x 50 > 900 and 8 is the pair's floor: the second fold is dropped
])
def test_after_a_fold_the_rest_is_planned_again_from_its_seconds(spent_s, per_epoch, expected):
    first = two_folds_of_10()
    assert (first.scored_folds, first.epochs) == (2, 10)
    again = budget.replan(first, spent_s, done=1, floor=8,
                          rest=lambda scored, epochs: (scored - 1) * epochs * per_epoch)
    assert (again.scored_folds, again.epochs_for(1)) == expected
    assert again.epochs_for(0) == again.epochs == 10  # the first fold trained what it was planned
    if again == first:
        assert again.replans == []
    else:
        (change,) = again.replans
        assert change["after_folds"] == 1 and change["spent_s"] == spent_s
        assert change["estimated_s"] <= budget.SAFETY * 1000


def test_a_replan_survives_the_plan_file_and_later_networks_follow_the_last_change():
    first = budget.plan(2000, 0.0, 1.0, 0.01, max_epochs=10, min_epochs=2, max_scored=4, estimate=linear(40))
    assert first.scored_folds == 4
    once = budget.replan(first, 1000, 1, 2, lambda scored, epochs: (scored - 1) * epochs * 40)  # 3 x 10 x 40 > 800
    twice = budget.replan(once, 1500, 2, 2, lambda scored, epochs: (scored - 2) * epochs * 40)
    assert [once.epochs_for(n) for n in range(4)] == [10, 6, 6, 6]  # 1000 + 3 x 6 x 40 = 1720 <= 1800
    assert budget.Plan.from_dict(json.loads(json.dumps(twice.to_dict()))) == twice
    assert [twice.epochs_for(n) for n in range(4)] == [10, 6, 3, 3]  # 1500 + 2 x 3 x 40 = 1740


def test_replanned_saves_the_changed_config_and_plan_and_a_kept_plan_writes_nothing(tmp_path):
    config = from_dict(RunConfig, {"time_budget": 1000, "finetune": {"epochs": 10, "scored_folds": 2}})
    first = two_folds_of_10()
    kept = replanned(config, tmp_path, "finetune", first, 400.0, 1, 2, lambda s, e: (s - 1) * e * 40)
    assert kept == (config, first) and not (tmp_path / RUN_FILES.time_plan).exists()
    dropped_config, dropped = replanned(config, tmp_path, "finetune", first, 800.0, 1, 2,
                                        lambda s, e: (s - 1) * e * 40)
    assert dropped.scored_folds == dropped_config.finetune.scored_folds == 1
    assert RunConfig.load(tmp_path / "config.yaml").finetune.scored_folds == 1
    assert budget.Plan.from_dict(json.loads((tmp_path / RUN_FILES.time_plan).read_text())) == dropped
    assert replanned(config, tmp_path, "finetune", None, 0.0, 1, 2, None) == (config, None)


def test_the_rest_is_scaled_from_the_fold_that_was_measured():
    config = from_dict(RunConfig, {"folds": 4, "tta": "identity,hflip", "finetune": {"scored_folds": 3}})
    folds = [(range(300), range(100))] * 4  # 300 training images, 100 held out, per fold
    rest = measured_rest(config, folds, n_test=50, last=0, epochs=10, fit_s=300.0, score_s=20.0)
    # an image's epoch 0.1 s, a view 0.1 s: each fold left 300 x e x 0.1 + 200 x 0.1, the test 100 views a network
    assert rest(3, 10) == pytest.approx(2 * (300 + 20) + 3 * 10)
    assert rest(3, 5) == pytest.approx(2 * (150 + 20) + 3 * 10)
    assert rest(1, 10) == pytest.approx(10)  # the folds left dropped: the first network predicts the test alone
    refit = measured_rest(config.model_copy(update={"finetune": config.finetune.model_copy(update={"refit": True})}),
                          folds, 50, 0, 10, 300.0, 20.0)
    assert refit(1, 10) == pytest.approx(400 * 10 * 0.1 + 10)  # the refit on every image, then the test once


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


@pytest.mark.parametrize("budget_s,expected", [
    (1000, ["rot180", "rot270"]),  # 2 x 10 x 40 + 4 views x 10 s = 840 <= 900: the spare views fit
    (920, []),  # 840 > 828: the pair keeps its 10 epochs and predicts in the two views it has
])
def test_spare_views_take_only_the_seconds_the_folds_and_epochs_left(budget_s, expected):
    plan = budget.plan(budget_s, 0.0, 1.0, 0.01, max_epochs=10, min_epochs=2, max_scored=2, estimate=linear(40))
    with_views = budget.add_views(plan, ["rot180", "rot270"], lambda more: 800 + (2 + more) * 10)
    assert (with_views.epochs, with_views.scored_folds, with_views.spare_views) == (10, 2, expected)
    assert with_views.estimated_s == (840 if expected else plan.estimated_s)
    cramped = budget.plan(100, 0.0, 1.0, 0.01, 10, 3, 2, linear(40))  # even the smallest plan is over
    assert budget.add_views(cramped, ["rot180"], lambda more: 0.0) == cramped


def test_a_planned_run_predicts_in_its_spare_views_saved_in_its_config(tmp_path):
    """The views join ``tta`` in the saved config (what prediction, ``predict``, serving and a resumed run read), and
    the plan names them; a budget with no room for them leaves ``tta`` as configured."""
    config = from_dict(RunConfig, {"time_budget": "1h", "tta": ["identity", "hflip"],
                                   "finetune": {"epochs": 10, "scored_folds": 2, "spare_views": ["vflip", "hflip"]}})
    estimate = finetune_seconds(config, n_train=2000, n_test=800)
    roomy, plan = budgeted(config, tmp_path / "roomy", "finetune", time.time(), lambda: (0.5, 0.01), estimate, 4, 2)
    assert roomy.tta == ["identity", "hflip", "vflip"] and plan.spare_views == ["vflip"]  # hflip was there
    assert plan.estimated_s == pytest.approx(plan.spent_s + estimate(0.5, 0.01, 2, 10, views=3))
    assert RunConfig.load(tmp_path / "roomy" / "config.yaml").tta == roomy.tta
    assert json.loads((tmp_path / "roomy" / RUN_FILES.time_plan).read_text())["spare_views"] == ["vflip"]
    # 2 x 10 epochs of 50 steps at 2.75 s, their probes and prediction: 3150 s in two views, 3270 in three (of 3240)
    tight, plan = budgeted(config, tmp_path / "tight", "finetune", time.time(), lambda: (2.75, 0.05), estimate, 4, 2)
    assert (tight.tta, plan.spare_views, plan.epochs, plan.scored_folds) == (["identity", "hflip"], [], 10, 2)


def test_no_budget_trains_the_configured_epochs(tmp_path):
    config = from_dict(RunConfig, {"time_budget": None})
    assert budgeted(config, tmp_path, "finetune", 0.0, None, None, 1, 2) == (config, None)
    assert not (tmp_path / RUN_FILES.time_plan).exists()


def test_a_training_set_of_one_batch_is_timed_on_its_batch_repeated():
    """One batch an epoch (a small competition's fold) still gives a step to time after the one that traces."""
    import keras
    import numpy as np
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    one_batch = tf.data.Dataset.from_tensors((np.ones((4, 8), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]))
    slow = one_batch.map(lambda x, y: (tf.py_function(lambda t: time.sleep(0.05) or t, [x], tf.float32), y))
    slow = slow.map(lambda x, y: (tf.ensure_shape(x, (4, 8)), y))
    assert budget.step_seconds(model, slow, keras.losses.CategoricalCrossentropy()) >= 0.04  # was 0.0


def test_a_deadline_counts_the_prediction_after_scaled_by_the_slowdown_and_is_agreed_by_the_workers():
    """Another epoch as long as the last, then the prediction still to follow (as much slower than planned as the
    epochs were): past the end or not; where several workers train, the largest of their figures decides for all."""
    soon = budget.Deadline(time.time() + 100, after_s=50.0, step_s=1.0)
    assert soon.overrun(epoch_s=10.0, steps=10) == pytest.approx(10 + 50 - 100, abs=1)  # as planned: 40 s to spare
    assert soon.overrun(epoch_s=20.0, steps=10) == pytest.approx(20 + 2 * 50 - 100, abs=1)  # twice as slow: past
    assert soon.overrun(epoch_s=5.0, steps=10) == pytest.approx(5 + 50 - 100, abs=1)  # faster: the plan's 50 s kept
    late_elsewhere = budget.Deadline(soon.end, 50.0, 1.0, agree=lambda past: [max(past[0], 7.0)])
    assert late_elsewhere.overrun(epoch_s=10.0, steps=10) == 7.0  # this worker had time; another had not


def test_a_runs_deadline_reserves_the_prediction_in_the_views_its_network_predicts_with():
    """A classifier predicts with every TTA view; a segmenter only with those that undo themselves (3 of the
    default 4): its deadline reserves no time for the fourth."""
    config = from_dict(RunConfig, {"tta": ["identity", "hflip", "vflip", "rot90"], "time_budget": 1000})
    plan = budget.Plan(1000.0, 10.0, 1.0, 0.5, 10, 1, 500.0, True)
    classifier = deadline(config, plan, started=0.0, n_predicted=100)
    segmenter = deadline(config, plan, 0.0, 100, len(segmenter_views(config.tta)))
    assert (classifier.end, classifier.after_s, segmenter.after_s) == (1000.0, 100 * 4 * 0.5, 100 * 3 * 0.5)
    assert deadline(config, None, 0.0, 100) is None
