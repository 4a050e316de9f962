"""The progress bar of a Keras ``fit``: one bar of epochs, shown only on a terminal or in a notebook."""

from __future__ import annotations

from tqdm.keras import TqdmCallback


def epoch_bar(epochs: int, desc: str) -> TqdmCallback:
    """tqdm's Keras callback with the epochs bar only (no per-batch bar), cleared when ``fit`` ends.

    ``disable=None`` turns it off when output is not a terminal (logs, CI).
    """
    return TqdmCallback(epochs=epochs, verbose=0, desc=desc, leave=False, disable=None)
