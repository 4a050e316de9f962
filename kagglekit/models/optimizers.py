"""Optimizers by name (one line each), with a learning-rate multiplier per layer, an EMA swapped in only
when asked, and the warm-up + cosine schedule the trainers (fine-tuning, segmentation) use.

``optimizer: adamw | adam | sgd | rmsprop`` is a config field of every learner; ``make_optimizer`` turns it
into a Keras optimizer. A name's ``lr_scale`` converts the configured learning rate, which is an Adam-family
rate, into the usual rate of that optimizer (SGD with momentum takes about ten times Adam's), so one config
compares optimizers at their customary rates rather than at one rate that suits only some of them.

Keras 3 has no per-layer learning rates, and scaling gradients instead does nothing under Adam (its
step is invariant to the gradient's scale), so the multiplier is applied to the step itself in
``update_step``, which every Keras optimizer's backend calls once per variable. Keras' own EMA
(``use_ema``) is kept, but ``fit`` would copy it into the model at the end of every call; the fine-tuning
learner calls ``fit`` once per stage, so the copy happens only in ``swap_in_ema``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras

from kagglekit.core.registry import Registry


def warmup_cosine(lr: float, steps: int, warmup_steps: int):
    """Linear warm-up from 0 to ``lr`` over ``warmup_steps``, then cosine decay to 1% of it at ``steps``."""
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else lr, max(1, steps - warmup_steps), alpha=0.01,
        warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


class _LayerwiseRates:
    """Mixed into a Keras optimizer: ``lr_multipliers`` maps a layer name to the factor its variables'
    steps are scaled by (default 1)."""

    def __init__(self, lr_multipliers: dict[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})

    def update_step(self, gradient, variable, learning_rate):
        factor = self.lr_multipliers.get(_layer_name(variable), 1.0)
        if factor != 1.0:
            learning_rate = keras.ops.multiply(keras.ops.cast(learning_rate, variable.dtype), factor)
        return super().update_step(gradient, variable, learning_rate)

    def _clip_gradients(self, grads):
        """Keras clips in ``apply``, before the TensorFlow backend sums the replicas' gradients: under a
        distribution strategy each replica's share was clipped, not the gradient (tensorflow#33929; two
        logical CPUs ended a fine-tuning epoch at loss 1.61 against one device's 3.05). There the sum is
        clipped instead, in ``_all_reduce_sum_gradients``; other backends clip here as Keras does."""
        return grads if self._sums_replicas else super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        pairs = list(super()._all_reduce_sum_gradients(grads_and_vars))
        clipped = super()._clip_gradients([grad for grad, _ in pairs])
        return [(grad, variable) for grad, (_, variable) in zip(clipped, pairs)]

    @property
    def _sums_replicas(self) -> bool:
        return callable(getattr(super(), "_all_reduce_sum_gradients", None))

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


def _layerwise(base: type) -> type:
    """``base`` with per-layer rates, registered for Keras serialization as ``kagglekit>Layerwise<Base>``."""
    return keras.saving.register_keras_serializable(package="kagglekit")(
        type(f"Layerwise{base.__name__}", (_LayerwiseRates, base), {}))


LayerwiseAdamW = _layerwise(keras.optimizers.AdamW)
LayerwiseAdam = _layerwise(keras.optimizers.Adam)
LayerwiseSGD = _layerwise(keras.optimizers.SGD)
LayerwiseRMSprop = _layerwise(keras.optimizers.RMSprop)


@dataclass(frozen=True)
class Optimizer:
    """How a configured name becomes a Keras optimizer: its class, the factor from an Adam-family learning
    rate to its own, whether it takes decoupled weight decay, and fixed options."""

    cls: type
    lr_scale: float = 1.0
    decays: bool = False
    options: dict = field(default_factory=dict)


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")
OPTIMIZERS.register("adamw", Optimizer(LayerwiseAdamW, decays=True))
OPTIMIZERS.register("adam", Optimizer(LayerwiseAdam))  # Adam proper: no weight decay
OPTIMIZERS.register("sgd", Optimizer(LayerwiseSGD, lr_scale=10.0, decays=True, options={"momentum": 0.9, "nesterov": True}))
OPTIMIZERS.register("rmsprop", Optimizer(LayerwiseRMSprop, options={"rho": 0.9}))


def make_optimizer(name: str, lr: float, steps: int | None = None, warmup_steps: int = 0, weight_decay: float = 0.0,
                   lr_multipliers: dict[str, float] | None = None, **keras_options):
    """Optimizer ``name`` at ``lr`` (an Adam-family rate, scaled by the optimizer's ``lr_scale``): constant
    when ``steps`` is None (callbacks such as ReduceLROnPlateau may then change it), else warm-up + cosine
    over ``steps``. ``weight_decay`` applies to the optimizers that take it (AdamW, SGD)."""
    spec = OPTIMIZERS.get(name)
    rate = lr * spec.lr_scale
    learning_rate = rate if steps is None else warmup_cosine(rate, steps, warmup_steps)
    return spec.cls(lr_multipliers=lr_multipliers, learning_rate=learning_rate,
                    weight_decay=weight_decay if spec.decays else None, **spec.options, **keras_options)
