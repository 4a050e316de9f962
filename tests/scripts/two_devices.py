"""Train the same small fine-tuning job on one device and on two logical CPU devices (MirroredStrategy);
print the largest difference between their predicted probabilities. Run as a script: the logical
devices must be configured before TensorFlow starts."""

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import shard_rows  # noqa: E402

from kagglekit.core.config import AugmentConfig, DeviceConfig  # noqa: E402
from kagglekit.learners.devices import resolve_devices  # noqa: E402
from kagglekit.learners.finetune import FineTunedClassifier  # noqa: E402

work = Path(sys.argv[1])
rng = np.random.default_rng(0)
images = shard_rows(work / "images", rng.integers(0, 256, (64, 64, 64, 3), dtype=np.uint8), work / "cache")
labels = rng.integers(0, 3, 64)
# no dropout: each replica would draw its own masks, which is a real difference, not an error
# no augmentation and no dropout: under a strategy tf.data rewrites the pipeline, so random draws differ
# from a one-device run's; that is a real difference, not an error, and would hide the one tested here
augment = AugmentConfig(horizontal_flip=False, vertical_flip=False, rotation=0, shift=0, shear=0, zoom=0,
                        channel_shift=0, crop=False)
out = {}
for strategy in ("none", "mirrored"):
    devices = resolve_devices(DeviceConfig(strategy=strategy))
    model = FineTunedClassifier("efficientnet_lite0", 64, 3, work / strategy, epochs=2, head_epochs=1, top_epochs=0,
                                batch_size=16, dropout=0.0, lr=2e-4, augment=augment, seed=3, devices=devices)
    model.fit(images, labels)
    out[strategy] = {"replicas": devices.replicas, "proba": model.predict_proba(images.subset(range(16)), ["identity"]),
                     "loss": model.history["loss"]}
print(json.dumps({
    "replicas": [out["none"]["replicas"], out["mirrored"]["replicas"]],
    "max_proba_diff": float(np.abs(out["none"]["proba"] - out["mirrored"]["proba"]).max()),
    "losses": [out["none"]["loss"], out["mirrored"]["loss"]],
}))
