"""AdamW with a learning-rate multiplier per layer, an EMA swapped in only when asked, and the warm-up +
cosine schedule both trainers (fine-tuning, segmentation) use.

Keras 3 has no per-layer learning rates, and scaling gradients instead does nothing under Adam (its
step is invariant to the gradient's scale), so the multiplier is applied to the step itself in
``update_step``, which every backend calls once per variable. Keras' own EMA (``use_ema``) is kept,
but ``fit`` would copy it into the model at the end of every call; the fine-tuning learner calls
``fit`` once per epoch (so that each epoch is reproducible on resume), so the copy happens only in
``swap_in_ema``.
"""

from __future__ import annotations

import keras


def warmup_cosine(lr: float, steps: int, warmup_steps: int):
    """Linear warm-up from 0 to ``lr`` over ``warmup_steps``, then cosine decay to 1% of it at ``steps``."""
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else lr, max(1, steps - warmup_steps), alpha=0.01,
        warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


@keras.saving.register_keras_serializable(package="kagglekit")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """``lr_multipliers`` maps a layer name to the factor its variables' steps are scaled by (default 1)."""

    def __init__(self, lr_multipliers: dict[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})

    def update_step(self, gradient, variable, learning_rate):
        factor = self.lr_multipliers.get(_layer_name(variable), 1.0)
        if factor != 1.0:
            learning_rate = keras.ops.multiply(keras.ops.cast(learning_rate, variable.dtype), factor)
        return super().update_step(gradient, variable, learning_rate)

    def finalize_variable_values(self, var_list):
        """Left to ``swap_in_ema``: see the module docstring."""

    def swap_in_ema(self, var_list) -> None:
        """Overwrite the model's variables with their moving averages (when ``use_ema``)."""
        super().finalize_variable_values(var_list)

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": self.lr_multipliers}


def _layer_name(variable) -> str:
    path = getattr(variable, "path", None) or getattr(variable, "name", "")
    return path.split("/")[0]
