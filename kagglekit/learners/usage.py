"""What a run used: seconds per epoch, training and inference images per second, the device, peak memory.

Every learner counts its own epochs with ``epoch_timer`` (or, fine-tuning, in its own epoch hook); a
pipeline adds up its learners' ``TrainingTime`` with ``usage``, which is what ``metrics.json`` (``timing``),
the score ledger and ``kagglekit compare``'s cost column read.
"""

from __future__ import annotations

from dataclasses import dataclass

from kagglekit.core.memory import peak_memory_gib


@dataclass
class TrainingTime:
    """Epochs trained by this process, the images they went through and their seconds."""

    epochs: int = 0
    images: int = 0
    seconds: float = 0.0

    def add(self, images: int, seconds: float) -> None:
        self.epochs, self.images, self.seconds = self.epochs + 1, self.images + images, self.seconds + seconds


def epoch_timer(time: TrainingTime, images_per_epoch: int):
    """A Keras callback adding each epoch of ``fit`` (its training pass, validation included) to ``time``."""
    import time as clock

    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = clock.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            time.add(images_per_epoch, clock.perf_counter() - self.began)

    return EpochTimer()


def machine() -> str:
    """The backend and the devices it computes on, e.g. ``tensorflow on 1 GPU (NVIDIA H200)``."""
    import os

    import keras

    from kagglekit.learners.devices import accelerators

    kind, count = accelerators()
    detail = f"{os.cpu_count()} cores" if kind == "cpu" else _accelerator_name()
    return f"{keras.backend.backend()} on {count} {kind.upper()}" + (f" ({detail})" if detail else "")


def _accelerator_name() -> str:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return ""


def peak_memory() -> dict[str, float]:
    """The process's peak resident memory (``core.memory``), and an accelerator's peak allocation where the
    backend reports it."""
    out = peak_memory_gib()
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            out["peak_device_memory_gib"] = round(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30, 2)
    return out


def usage(times: list[TrainingTime], predicted_images: int, predict_seconds: float) -> dict:
    """The ``timing`` of ``metrics.json``: speeds of what this process trained and predicted, device, memory.
    A resumed run counts only the epochs it trained itself."""
    seconds, epochs = sum(t.seconds for t in times), sum(t.epochs for t in times)
    from kagglekit.learners.devices import accelerators

    out = {"device": machine(), "device_count": accelerators()[1],
           "predict_images_per_s": round(predicted_images / max(predict_seconds, 1e-9), 1)}
    if epochs:
        out |= {"train_images_per_s": round(sum(t.images for t in times) / max(seconds, 1e-9), 1),
                "seconds_per_epoch": round(seconds / epochs, 2), "epochs_trained": epochs}
    return out | peak_memory()
