"""The ``device`` settings made concrete: which distribution engine, which precision, whether XLA.

Nothing here is home-made distribution: on TensorFlow it is ``tf.distribute`` (MirroredStrategy over
several GPUs, such as Kaggle's 2xT4, TPUStrategy on a TPU, MultiWorkerMirroredStrategy over the machines a
``TF_CONFIG`` names), on JAX the Keras distribution API (``keras.distribution.DataParallel``). ``auto``
picks what the machine has; an explicit choice that the machine or backend cannot honour is a ConfigError
saying what to set instead.

On several workers every worker runs the same command on the same data; the chief (``TF_CONFIG``'s task
``chief``, else worker 0) writes the run, the others write to a scratch directory they delete (``scratch``),
as TensorFlow's multi-worker guide does with its checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
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


def cluster() -> dict:
    """``TF_CONFIG``'s ``cluster`` and ``task`` (empty without one); a ConfigError if it is not JSON."""
    text = os.environ.get("TF_CONFIG", "").strip()
    try:
        spec = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not JSON ({exc}): {text[:200]}") from None
    return spec if isinstance(spec, dict) else {}


def worker_count() -> int:
    """The workers ``TF_CONFIG`` names (its ``chief`` and ``worker`` tasks); 0 without a TF_CONFIG."""
    tasks = cluster().get("cluster", {})
    return len(tasks.get("chief", [])) + len(tasks.get("worker", []))


def multi_worker(cfg: DeviceConfig) -> bool:
    """Whether ``cfg`` trains on the several workers of a ``TF_CONFIG`` (explicitly, or ``auto`` with more than
    one worker named on TensorFlow)."""
    import keras

    if cfg.strategy == "multi_worker":
        return True
    return cfg.strategy == "auto" and keras.backend.backend() == "tensorflow" and worker_count() > 1


def is_chief(cfg: DeviceConfig) -> bool:
    """Whether this process writes the run: always on one worker; on several, the ``chief`` task, or worker 0
    of a cluster without one (TensorFlow's rule)."""
    if not multi_worker(cfg):
        return True
    spec = cluster()
    task, tasks = spec.get("task", {}), spec.get("cluster", {})
    kind = task.get("type", "worker")
    return kind == "chief" or (kind == "worker" and int(task.get("index", 0)) == 0 and not tasks.get("chief"))


def start_workers(cfg: DeviceConfig) -> None:
    """Join the workers' cluster now, where ``cfg`` trains on several: MultiWorkerMirroredStrategy must exist
    before TensorFlow runs anything else in the process (it configures the collective ops at start)."""
    if multi_worker(cfg):
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ConfigError("device.strategy: multi_worker is tf.distribute's MultiWorkerMirroredStrategy and needs "
                              "KERAS_BACKEND=tensorflow; several JAX processes are not supported (docs/scaling.md)")
        if worker_count() < 1:
            raise ConfigError("device.strategy: multi_worker needs a TF_CONFIG naming the workers, e.g. "
                              '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                              '"task": {"type": "worker", "index": 0}} (docs/scaling.md)')
        _multi_worker_strategy()


def slowest(cfg: DeviceConfig, values: list[float]) -> list[float]:
    """Each of ``values`` at its largest over the workers where ``cfg`` trains on several (so that every worker
    makes the same plan, for the slowest of them); ``values`` on one."""
    if not multi_worker(cfg):
        return values
    import tensorflow as tf

    strategy = _multi_worker_strategy()
    mine = tf.constant([values], tf.float64)
    every = strategy.gather(strategy.run(lambda: tf.identity(mine)), axis=0)  # (replicas, len(values))
    return [float(v) for v in tf.reduce_max(every, axis=0).numpy()]


def resolve_devices(cfg: DeviceConfig) -> Devices:
    """Apply ``cfg``: set the global dtype policy and choose the strategy. Call before building a model."""
    import keras

    backend = keras.backend.backend()
    start_workers(cfg)  # before ``accelerators`` lists (and so initialises) the devices
    kind, count = accelerators()
    precision = cfg.precision
    if precision == "auto":
        # float16 on GPUs (tensor cores), bfloat16 on TPUs; float32 on CPUs, where bfloat16 fine-tuned
        # EfficientNet-Lite0 at 0.69x float32's speed (11.1 vs 16.1 images/s at 224 px, AVX512-BF16 + AMX CPU,
        # TensorFlow 2.20 with oneDNN; bench/precision.py), though it predicted 2.5x faster
        precision = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16"}.get(kind, "float32")
    keras.mixed_precision.set_dtype_policy(precision)
    # XLA: on accelerators only (on this CPU it compiled for minutes and ran 9x slower); not with
    # mixed_float16 on TensorFlow, which has crashed under jit_compile (keras#21366)
    jit = {"on": True, "off": False}.get(cfg.jit_compile,
                                         kind != "cpu" and not (backend == "tensorflow" and precision == "mixed_float16"))
    choice = "multi_worker" if multi_worker(cfg) else cfg.strategy
    strategy, replicas, how = _strategy(choice, backend, kind, count)
    description = f"{how} on {count} {kind.upper()} device(s), {precision}, XLA {'on' if jit else 'off'}"
    log.info("devices: %s", description)
    return Devices(strategy, replicas, precision, jit, description)


def _strategy(choice: str, backend: str, kind: str, count: int):
    if choice == "auto":
        choice = ("tpu" if kind == "tpu" else "mirrored" if kind == "gpu" and count > 1 else "none") \
            if backend == "tensorflow" else ("data_parallel" if backend == "jax" and count > 1 else "none")
    if choice == "none":
        return None, 1, "one device"
    if choice == "multi_worker":  # checked and started by start_workers
        strategy = _multi_worker_strategy()
        return strategy, strategy.num_replicas_in_sync, f"tf.distribute.MultiWorkerMirroredStrategy " \
                                                        f"({worker_count()} workers)"
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


@functools.cache
def _multi_worker_strategy():
    """The process's one MultiWorkerMirroredStrategy (a second could not configure the collectives again)."""
    import tensorflow as tf

    class NestReducing(tf.distribute.MultiWorkerMirroredStrategy):
        """``reduce`` of a nest of values, and of per-replica scalars, as MirroredStrategy's does. Keras 3's
        ``fit`` reduces the first batch's (x, y) nest to read its shapes, and the metrics' scalars along axis 0,
        both of which this strategy rejects on several workers (keras#20585): each value is reduced alone, a
        scalar across the replicas only."""

        def reduce(self, reduce_op, value, axis):
            def one(v):
                if v is None:
                    return None
                first = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                return super(NestReducing, self).reduce(reduce_op, v, None if first.shape.rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return NestReducing()


def scratch() -> str:
    """Where a worker that is not the chief writes its copy of the run: a new temporary directory, named
    after its task."""
    import tempfile

    task = cluster().get("task", {})
    return tempfile.mkdtemp(prefix=f"kagglekit-{task.get('type', 'worker')}{task.get('index', 0)}-")
