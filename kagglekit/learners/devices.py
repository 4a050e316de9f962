"""The ``device`` settings made concrete: which distribution engine, which precision, whether XLA.

Nothing here is home-made distribution: on TensorFlow it is ``tf.distribute`` (MirroredStrategy over
several GPUs, such as Kaggle's 2xT4, TPUStrategy on a TPU), on JAX the Keras distribution API
(``keras.distribution.DataParallel``). ``auto`` picks what the machine has; an explicit choice that the
machine or backend cannot honour is a ConfigError saying what to set instead.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from kagglekit.core.config import DeviceConfig
from kagglekit.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Devices:
    """What a training run uses: ``scope()`` wraps model building and compiling."""

    strategy: object | None  # a tf.distribute.Strategy, or None
    replicas: int
    precision: str
    jit_compile: bool
    description: str

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def predict(self, model, x, batch_size: int):
        """``model``'s outputs for the rows of ``x`` (at least one): on one device ``predict_on_batch`` a chunk of
        ``batch_size`` at a time (``predict``'s numbers without its ~100 ms of setup per call, which a served image
        would pay folds x views times); under a strategy ``predict``, the one call that splits a batch across the
        replicas (``predict_on_batch`` gives each replica the whole batch)."""
        import numpy as np

        if self.strategy is not None:
            return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
        return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)])


#: No distribution strategy, the dtype policy as it is: what a learner given no ``Devices`` builds under.
ONE_DEVICE = Devices(None, 1, "float32", False, "one device")


def accelerators() -> tuple[str, int]:
    """("tpu" | "gpu" | "cpu", how many) of what the current backend sees."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        for kind in ("TPU", "GPU"):
            found = tf.config.list_logical_devices(kind)
            if found:
                return kind.lower(), len(found)
        return "cpu", len(tf.config.list_logical_devices("CPU"))
    if backend == "jax":
        import jax

        devices = jax.devices()
        return devices[0].platform, len(devices)
    if backend == "torch":
        import torch

        return ("gpu", torch.cuda.device_count()) if torch.cuda.is_available() else ("cpu", 1)
    return "cpu", 1


def resolve_devices(cfg: DeviceConfig) -> Devices:
    """Apply ``cfg``: set the global dtype policy and choose the strategy. Call before building a model."""
    import keras

    backend = keras.backend.backend()
    kind, count = accelerators()
    precision = cfg.precision
    if precision == "auto":
        # float16 on GPUs (tensor cores), bfloat16 on TPUs; float32 on CPUs, where bfloat16 measured
        # slower for EfficientNet-Lite training here (12 vs 18 images/s, AMX CPU, TensorFlow 2.20)
        precision = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(kind, "float32")
    keras.mixed_precision.set_dtype_policy(precision)
    # XLA: on accelerators only (on this CPU it compiled for minutes and ran 9x slower); not with
    # mixed_float16 on TensorFlow, which has crashed under jit_compile (keras#21366)
    jit = {"on": True, "off": False}.get(cfg.jit_compile,
                                         kind != "cpu" and not (backend == "tensorflow" and precision == "mixed_float16"))
    strategy, replicas, how = _strategy(cfg.strategy, backend, kind, count)
    description = f"{how} on {count} {kind.upper()} device(s), {precision}, XLA {'on' if jit else 'off'}"
    log.info("devices: %s", description)
    return Devices(strategy, replicas, precision, jit, description)


def _strategy(choice: str, backend: str, kind: str, count: int):
    if choice == "auto":
        choice = ("tpu" if kind == "tpu" else "mirrored" if kind == "gpu" and count > 1 else "none") \
            if backend == "tensorflow" else ("data_parallel" if backend == "jax" and count > 1 else "none")
    if choice == "none":
        return None, 1, "one device"
    if choice == "data_parallel":
        if backend != "jax":
            raise ConfigError("device.strategy: data_parallel is the Keras distribution API, which kagglekit uses "
                              "on JAX; on TensorFlow set mirrored (GPUs) or tpu")
        import keras

        keras.distribution.set_distribution(keras.distribution.DataParallel())
        return None, count, "keras.distribution.DataParallel"
    if backend != "tensorflow":
        raise ConfigError(f"device.strategy: {choice} is tf.distribute and needs KERAS_BACKEND=tensorflow; "
                          "on JAX set data_parallel")
    import tensorflow as tf

    if choice == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
        return strategy, strategy.num_replicas_in_sync, "tf.distribute.TPUStrategy"
    # mirrored: every GPU, or (no GPU) every logical CPU device, which is how the tests exercise it
    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
        [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    return strategy, strategy.num_replicas_in_sync, "tf.distribute.MirroredStrategy"
