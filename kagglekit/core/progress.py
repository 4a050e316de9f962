"""Progress bars for long work (tqdm), including one for Keras epochs."""

from __future__ import annotations

import keras
from tqdm.auto import tqdm


class EpochBar(keras.callbacks.Callback):
    """One bar per ``fit``: an epoch per step, with the latest losses in the postfix."""

    def __init__(self, epochs: int, desc: str):
        super().__init__()
        self.epochs, self.desc, self.bar = epochs, desc, None

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.epochs, desc=self.desc, unit="epoch", leave=False, disable=None)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss", "val_accuracy")})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()
