"""A time budget turned into an epoch count before any fold trains (as AutoGluon's ``time_limit``).

A fixed epoch budget makes wall time a property of the machine: the same run took 24 minutes on one 2-core
machine and 40 on another. So a run with ``time_budget`` measures, on this machine, the seconds of a training
step of its network (the first batches of its real training stream through the real model, compiled with every
layer it may unfreeze: the dearest stage) and of a forward pass per image, then picks the most epochs (up to the
config's, as a maximum)
and scored folds whose estimated time, prediction included, fits the budget. Everything is fixed before the
first fold trains, from timings alone: nothing is chosen on a scored fold, so the CV stays honest.

Scored folds fall first, down to two; then the two networks' epochs, down to ``PAIR_EPOCHS`` of the configured;
then the second fold, and the last network's epochs down to the minimum (below it the plan says the budget is
exceeded). A network trained for fewer epochs lost more than an ensemble that lost a third member, and a lone
network lost its partner's votes. Plant Seedlings at 160 px, 2 cores (held-out micro-F1 on 665 images, CV):
3 folds x 14 epochs 0.950, 0.945; 2 x 14 0.946, 0.947; 3 x 11, what epochs-first planned on a machine 1.67x
slower, 0.940, 0.940; 2 x 20 0.952, 0.952, its two networks alone 0.943 and 0.958 (held-out).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "Plan":
        return cls(**saved)


def timings(model, stream, forward, loss, scope=None) -> tuple[float, float]:
    """(seconds per training step, seconds per image's forward pass) of ``model`` on this machine. Steps are timed
    on the first batches of the real training ``stream`` (decoding and augmentation included: on a CPU they share
    the cores with the step, and random pixels left them out: 805 s planned for a CamVid run that took 1077), with
    ``loss`` and an Adam optimizer (the optimizer's own cost is small beside the network's); the forward pass on
    ``forward``, batches of real images as prediction reads them (``(images, ...)`` or images). The model is
    compiled here: pass a throwaway one."""
    import contextlib

    import keras

    with scope() if scope else contextlib.nullcontext():
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    # the first steps trace the function while the stream fills its buffers: they are left out
    model.fit(stream.take(WARM_STEPS + TIMED_STEPS), epochs=1, verbose=0, shuffle=False, callbacks=[Clock()])
    if len(ends) <= WARM_STEPS:  # fewer batches than the warm-up: time what there is, tracing included
        step = (ends[-1] - ends[0]) / max(len(ends) - 1, 1) if len(ends) > 1 else 0.0
    else:
        step = (ends[-1] - ends[WARM_STEPS - 1]) / (len(ends) - WARM_STEPS)
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
    return step, (time.perf_counter() - started) / seen


def plan(budget_s: float, spent_s: float, step_s: float, image_s: float, max_epochs: int, min_epochs: int,
         max_scored: int, estimate: Callable[[int, int], float]) -> Plan:
    """The first plan, in the order of sacrifices (see the module), whose ``spent_s + estimate(scored_folds,
    epochs)`` (seconds) fits ``SAFETY`` of the budget: the most scored folds training ``max_epochs`` each, down to two;
    two folds of fewer epochs, down to ``PAIR_EPOCHS`` of ``max_epochs``; one fold of the most epochs (at least
    ``min_epochs``)."""
    candidates = [(scored, max_epochs) for scored in range(max_scored, 1, -1)]
    if max_scored > 1:
        floor = max(min_epochs, math.ceil(PAIR_EPOCHS * max_epochs))
        candidates += [(2, epochs) for epochs in range(max_epochs - 1, floor - 1, -1)]
    candidates += [(1, epochs) for epochs in range(max_epochs, min(min_epochs, max_epochs) - 1, -1)]
    for scored, epochs in candidates:
        total = spent_s + estimate(scored, epochs)
        if total <= SAFETY * budget_s:
            return Plan(budget_s, spent_s, step_s, image_s, epochs, scored, total, True)
    scored, epochs = 1, min(min_epochs, max_epochs)
    total = spent_s + estimate(scored, epochs)
    log.warning("time budget %.0f s: even %d epoch(s) on %d fold need about %.0f s on this machine; running that "
                "(raise time_budget, or lower image_size or the backbone's size)", budget_s, epochs, scored, total)
    return Plan(budget_s, spent_s, step_s, image_s, epochs, scored, total, False)


def record(plan_: Plan | None, seconds: float) -> dict | None:
    """metrics.json's ``time_budget``: the plan beside the run's actual time."""
    if plan_ is None:
        return None
    return {**plan_.to_dict(), "actual_s": round(seconds, 1), "kept": seconds <= plan_.budget_s}
