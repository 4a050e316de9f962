"""Epoch checkpoints that let a killed training resume where it stopped, with the same end weights.

After each epoch a learner writes the model's weights and its optimizer's state (step count, moments:
Keras keeps them in the same weights file once the optimizer is built) to ``checkpoint-<epoch>.weights.h5``,
then ``checkpoint.json`` naming that file with the epoch and whatever else the learner needs (its history).
Every file is written atomically and the JSON last, so after ``kill -9`` the JSON names a whole file.
What a checkpoint cannot hold, dropout's random state, is set from ``(seed, epoch)`` before each epoch
(``reseed``), and the learner draws each epoch's batches from ``(seed, epoch)`` too: a resumed run is then
computed exactly as an uninterrupted one (on a deterministic backend: TensorFlow on a CPU here).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from kagglekit.core.fileio import atomic_write_json

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"


def reseed(model, seed: int) -> None:
    """Set every random state the model draws from (dropout's seed generators, Keras' global seed) from ``seed``."""
    import keras

    keras.utils.set_random_seed(seed)
    states = [v for v in model.variables if "seed_generator" in v.path]
    for i, state in enumerate(states):
        state.assign(np.array([seed, i], dtype=state.dtype))


def save_weights(model, path: Path) -> None:
    """Atomically: a kill mid-write must leave the previous file, never half of a new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.weights.h5")  # Keras wants the suffix
    model.save_weights(tmp)
    os.replace(tmp, path)


def read_checkpoint(workdir: Path) -> dict | None:
    """The last checkpoint's state (``epoch``: epochs finished, ``file``, the learner's fields), or None."""
    path = Path(workdir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if (Path(workdir) / state["file"]).exists():
            return state
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("checkpoint %s is unreadable (%s); %s starts from its first epoch", path, exc, Path(workdir).name)
    return None


def load_checkpoint(model, workdir: Path, state: dict) -> None:
    """The checkpoint's weights and optimizer state into ``model`` (compiled, its optimizer built)."""
    model.load_weights(Path(workdir) / state["file"])


def write_checkpoint(model, workdir: Path, epoch: int, **fields) -> None:
    """Checkpoint ``model`` after ``epoch`` finished epochs, with ``fields`` (JSON) beside it; older ones go."""
    name = f"checkpoint-{epoch:04d}.weights.h5"
    save_weights(model, Path(workdir) / name)
    atomic_write_json(Path(workdir) / CHECKPOINT, {"epoch": epoch, "file": name, **fields})
    for old in Path(workdir).glob("checkpoint-*.weights.h5"):
        if old.name != name:
            old.unlink(missing_ok=True)


def clear_checkpoints(workdir: Path) -> None:
    """Remove the checkpoints once the final weights are saved."""
    for old in Path(workdir).glob("checkpoint-*.weights.h5"):
        old.unlink(missing_ok=True)
    (Path(workdir) / CHECKPOINT).unlink(missing_ok=True)
