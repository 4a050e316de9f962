"""A time budget turned into an epoch count before any fold trains (as AutoGluon's ``time_limit``).

A fixed epoch budget makes wall time a property of the machine: the same run took 24 minutes on one 2-core
machine and 40 on another. So a run with ``time_budget`` measures, on this machine, the seconds of a training
step of its network (the first batches of its real training stream through the real model, compiled with every
layer it may unfreeze: the dearest stage) and of a forward pass per image, then picks the most epochs (up to the
config's, as a maximum)
and scored folds whose estimated time, prediction included, fits the budget. Everything is fixed before the
first fold trains, from timings alone: nothing is chosen on a scored fold, so the CV stays honest.
A step timed alone is not an epoch: a fold's epochs ran 5-16% slower than the steps they were planned from (the
margin, ``SAFETY``, is 10%). So after each scored fold the rest is planned again (``replan``) from the seconds the
fold actually took, again from time alone: the networks left train fewer epochs, or the folds left are dropped.
A plan of one fold has no fold after which to re-plan: every network also has a ``Deadline`` and stops after the
first epoch after which another epoch and the prediction still to follow (as planned, scaled by how much slower than
planned the epochs run) would end past the budget.

Scored folds fall first, down to two; then the two networks' epochs, down to ``PAIR_EPOCHS`` of the configured;
then the second fold, and the last network's epochs down to the minimum (below it the plan says the budget is
exceeded). A network trained for fewer epochs lost more than an ensemble that lost a third member, and a lone
network lost its partner's votes. Plant Seedlings at 160 px, 2 cores (held-out micro-F1 on 665 images, CV):
3 folds x 14 epochs 0.950, 0.945; 2 x 14 0.946, 0.947; 3 x 11, what epochs-first planned on a machine 1.67x
slower, 0.940, 0.940; 2 x 20 0.952, 0.952, its two networks alone 0.943 and 0.958 (held-out). With the
training flips fixed (held-out): 2 x 20 and 2 x 15 0.953, 2 x 12 0.946, 2 x 10 0.949, one network of 20 epochs
0.947 and of 28 0.947 (a lone network gains nothing from the budget a pair would have had).
What the plan leaves over may buy more test-time views (``add_views``): they cost prediction only, never an epoch or
a fold, and a lone network has seconds over for them (in 8 views its held-out score went from 0.947 to 0.956).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

log = logging.getLogger(__name__)
#: The share of the remaining budget a plan may fill: the estimate leaves out file writing and jitter.
SAFETY = 0.9
#: Two scored folds keep at least this share of the configured epochs before one fold trains alone.
PAIR_EPOCHS = 0.75
#: Training steps timed on the real stream, after untimed ones that trace the step and fill the stream's buffers
#: (enough that batches prefetched during tracing do not hide the input pipeline's cost).
WARM_STEPS, TIMED_STEPS = 2, 8
#: Batches of prediction read for the forward pass's time (the first traces it).
FORWARD_BATCHES = 3


@dataclass(frozen=True)
class Plan:
    """What a budget allowed: ``epochs`` per network, ``scored_folds``, and the figures it was planned from."""

    budget_s: float
    spent_s: float  # before planning (reading, decoding, the classifier of a VOC run, the timing itself)
    step_s: float  # one training step at the configured batch size
    image_s: float  # one image's forward pass
    epochs: int
    scored_folds: int
    estimated_s: float  # the whole run's estimated time, spent_s included
    fits: bool  # False: even the smallest plan exceeds the budget
    # what the measured seconds of the first folds changed, in order: {"after_folds", "epochs", "scored_folds",
    # "spent_s", "estimated_s"}: the networks trained after ``after_folds`` folds train ``epochs``
    replans: list[dict] = field(default_factory=list)
    # the networks stopped short at their deadline (``deadline``), in order: {"network", "epochs", "spent_s"}
    stops: list[dict] = field(default_factory=list)
    # the test-time views the budget had room for beyond the run's own (``add_views``): its ``tta`` predicts with them
    spare_views: list[str] = field(default_factory=list)

    def epochs_for(self, network: int) -> int:
        """The epochs of the ``network``-th network to train (0: the first fold; a refit comes after the folds)."""
        epochs = self.epochs
        for change in self.replans:
            if network >= change["after_folds"]:
                epochs = change["epochs"]
        return epochs

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "Plan":
        return cls(**saved)


def timings(model, stream, forward, loss, scope=None) -> tuple[float, float]:
    """(``step_seconds``, ``forward_seconds``) of ``model``: what a plan is made from. The model is compiled here:
    pass a throwaway one."""
    return step_seconds(model, stream, loss, scope), forward_seconds(model, forward)


def step_seconds(model, stream, loss, scope=None) -> float:
    """Seconds per training step of ``model`` on this machine, timed on the first batches of the real training
    ``stream`` (decoding and augmentation included: on a CPU they share the cores with the step, and random pixels
    left them out: 805 s planned for a CamVid run that took 1077), with ``loss`` and an Adam optimizer (the
    optimizer's own cost is small beside the network's). The model is compiled here: pass a throwaway one."""
    import contextlib

    import keras

    with scope() if scope else contextlib.nullcontext():
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    # the first steps trace the function while the stream fills its buffers: they are left out. Repeated: a
    # training set of one batch an epoch had no step left to time once traced (0 s a step: a 3-minute budget
    # planned 16 s for a run of 162)
    model.fit(stream.repeat().take(WARM_STEPS + TIMED_STEPS), epochs=1, verbose=0, shuffle=False,
              callbacks=[Clock()])
    return (ends[-1] - ends[WARM_STEPS - 1]) / TIMED_STEPS


def forward_seconds(model, forward) -> float:
    """Seconds per image of ``model``'s forward pass on this machine, on ``forward``: batches of real images as
    prediction reads them (``(images, ...)`` or images)."""
    batches = (batch[0] if isinstance(batch, tuple) else batch for batch in forward.take(FORWARD_BATCHES))
    first = next(batches)
    # ``predict`` as the learners call it, its per-call overhead counted: timed with ``predict_on_batch`` on random
    # pixels, a seedlings run planned 0.012 s an image's view and took 0.03
    model.predict(first, batch_size=len(first), verbose=0)  # traces the forward function
    started, seen = time.perf_counter(), 0
    for pixels in batches:
        model.predict(pixels, batch_size=len(pixels), verbose=0)
        seen += len(pixels)
    if not seen:  # one batch of images in all: time it again
        started, seen = time.perf_counter(), len(first)
        model.predict(first, batch_size=len(first), verbose=0)
    return (time.perf_counter() - started) / seen


def plan(budget_s: float, spent_s: float, step_s: float, image_s: float, max_epochs: int, min_epochs: int,
         max_scored: int, estimate: Callable[[int, int], float]) -> Plan:
    """The first plan, in the order of sacrifices (see the module), whose ``spent_s + estimate(scored_folds,
    epochs)`` (seconds) fits ``SAFETY`` of the budget: the most scored folds training ``max_epochs`` each, down to two;
    two folds of fewer epochs, down to ``PAIR_EPOCHS`` of ``max_epochs``; one fold of the most epochs (at least
    ``min_epochs``)."""
    candidates = [(scored, max_epochs) for scored in range(max_scored, 1, -1)]
    if max_scored > 1:
        candidates += [(2, epochs) for epochs in range(max_epochs - 1, pair_floor(max_epochs, min_epochs) - 1, -1)]
    candidates += [(1, epochs) for epochs in range(max_epochs, min(min_epochs, max_epochs) - 1, -1)]
    scored, epochs, total, fits = _first_fitting(candidates, lambda s, e: spent_s + estimate(s, e), budget_s)
    if not fits:
        log.warning("time budget %.0f s: even %d epoch(s) on %d fold need about %.0f s on this machine; running that "
                    "(raise time_budget, or lower image_size or the backbone's size)", budget_s, epochs, scored, total)
    return Plan(budget_s, spent_s, step_s, image_s, epochs, scored, total, fits)


def _first_fitting(candidates: list[tuple[int, int]], seconds: Callable[[int, int], float],
                   budget_s: float) -> tuple[int, int, float, bool]:
    """``(scored_folds, epochs, seconds, True)`` of the first candidate whose ``seconds`` fit ``SAFETY`` of the
    budget; else the last candidate's (the cheapest, in every order of sacrifices here) with False."""
    for scored, epochs in candidates:
        total = seconds(scored, epochs)
        if total <= SAFETY * budget_s:
            return scored, epochs, total, True
    return scored, epochs, total, False


def add_views(plan_: Plan, spare: list[str], seconds: Callable[[int], float]) -> Plan:
    """``plan_`` with the ``spare`` test-time views if the whole run's estimate with them, ``seconds(len(spare))``,
    still fits ``SAFETY`` of the budget. Views come after every fold and epoch, never at their cost: they cost
    prediction only, and a lone network that has no partner has seconds over for them."""
    if not spare or not plan_.fits:
        return plan_
    total = seconds(len(spare))
    return replace(plan_, estimated_s=total, spare_views=list(spare)) if total <= SAFETY * plan_.budget_s else plan_


def pair_floor(max_epochs: int, min_epochs: int) -> int:
    """The fewest epochs a network trains beside another: below it, one network alone does better."""
    return max(min_epochs, math.ceil(PAIR_EPOCHS * max_epochs))


def replan(plan_: Plan, spent_s: float, done: int, floor: int, rest: Callable[[int, int], float]) -> Plan:
    """``plan_`` after ``done`` scored folds trained, ``spent_s`` seconds into the run: kept if ``spent_s + rest(
    scored_folds, epochs)`` (the seconds left, from what the finished folds measured) fits ``SAFETY`` of the budget;
    else the networks left train fewer epochs, down to ``floor``; else the folds left are dropped (``rest(done,
    epochs)``: the test's prediction, and a refit if any)."""
    planned, epochs = plan_.scored_folds, plan_.epochs_for(done)
    if done >= planned:
        return plan_
    candidates = [(planned, epochs), *((planned, fewer) for fewer in range(epochs - 1, floor - 1, -1)), (done, epochs)]
    scored, epochs, total, _ = _first_fitting(candidates, lambda s, e: spent_s + rest(s, e), plan_.budget_s)
    if (scored, epochs) == candidates[0]:
        return plan_
    log.warning("time budget %.0f s: %d fold(s) done %.0f s into the run, slower than planned: %s (about %.0f s "
                "in all)", plan_.budget_s, done, spent_s,
                f"the networks left train {epochs} epoch(s)" if scored > done else
                f"the {plan_.scored_folds - done} scored fold(s) left are dropped", total)
    change = {"after_folds": done, "epochs": epochs, "scored_folds": scored, "spent_s": round(spent_s, 1),
              "estimated_s": round(total, 1)}
    return replace(plan_, scored_folds=scored, replans=[*plan_.replans, change])


@dataclass(frozen=True)
class Deadline:
    """When a network's training must end: the budget's ``end`` (``time.time()`` seconds) less the work still to
    follow it (scoring, the test's prediction), ``after_s`` as planned from a training step of ``step_s``. A machine
    slower than it timed is slower at predicting too: the work after is scaled by how much slower than planned the
    epochs run (seedlings in a 0.6-core cgroup from its first epoch: its prediction took 3x the planned 17 s)."""

    end: float
    after_s: float
    step_s: float
    # on several workers, each figure's largest over them (``devices.slowest``): they stop at the same epoch, as
    # their synchronous training needs (one stopping alone would leave the others waiting in a collective)
    agree: Callable[[list[float]], list[float]] | None = None

    def overrun(self, epoch_s: float, steps: int) -> float:
        """Seconds past ``end`` the run would finish if one more epoch as long as the last one (``epoch_s`` for
        ``steps`` steps) trained."""
        slower = max(1.0, epoch_s / (steps * self.step_s)) if self.step_s > 0 else 1.0
        past = time.time() + epoch_s + self.after_s * slower - self.end
        return self.agree([past])[0] if self.agree else past


def deadline(plan_: Plan | None, started: float, after_s: float, agree=None) -> Deadline | None:
    """The ``Deadline`` of a network of the run started at ``started``, ``after_s`` planned seconds of work still to
    follow its training: the budget's last guard (a plan's estimate is from a timed step; a one-fold plan has no
    re-plan after it). None without a budget."""
    return None if plan_ is None else Deadline(started + plan_.budget_s, after_s, plan_.step_s, agree)


def deadline_stop(deadline_: Deadline | None, name: str, epochs: int, steps: int):
    """A Keras callback that stops ``fit`` after the first epoch (of ``steps`` steps) after which another would
    overrun ``deadline_`` (None: never), ``epochs`` being the network's total; its ``stopped_at`` is then the epochs
    trained. The epochs cut are the last of a cosine schedule, at a small learning rate."""
    import keras

    class DeadlineStop(keras.callbacks.Callback):
        stopped_at: int | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.began
            past = deadline_.overrun(seconds, steps) if deadline_ is not None else 0.0
            if past > 0 and epoch + 1 < epochs:
                self.stopped_at, self.model.stop_training = epoch + 1, True
                log.warning("%s: stopped after epoch %d of %d: another epoch (%.0f s) and the prediction after it "
                            "would end %.0f s past the time budget", name, epoch + 1, epochs, seconds, past)

    return DeadlineStop()


def stopped(plan_: Plan, network: str, epochs: int, spent_s: float) -> Plan:
    """``plan_`` recording that ``network`` stopped at its deadline after ``epochs`` epochs."""
    return replace(plan_, stops=[*plan_.stops, {"network": network, "epochs": epochs, "spent_s": round(spent_s, 1)}])


def record(plan_: Plan | None, seconds: float) -> dict | None:
    """metrics.json's ``time_budget``: the plan beside the run's actual time."""
    if plan_ is None:
        return None
    return {**plan_.to_dict(), "actual_s": round(seconds, 1), "kept": seconds <= plan_.budget_s}
