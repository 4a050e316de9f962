"""Build, fit (tiny), load and predict with each learner kind named on the command line under a MirroredStrategy
over two logical CPU devices; print, per kind, whether every variable of its model is a mirrored (distributed)
variable and how many rows it predicted. Run as a script: the logical devices must be configured before
TensorFlow starts."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

work = Path(sys.argv[1])
os.environ["KAGGLEKIT_CACHE"] = str(work / "cache")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import shard_rows  # noqa: E402
from PIL import Image  # noqa: E402

from kagglekit.core.config import DeviceConfig  # noqa: E402
from kagglekit.learners.devices import resolve_devices  # noqa: E402

devices = resolve_devices(DeviceConfig(strategy="mirrored"))
rng = np.random.default_rng(0)
pixels = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
labels = np.arange(8) % 2


def features():
    from kagglekit.learners.features import FeatureExtractor

    extractor = FeatureExtractor("efficientnet_lite0", 32, devices=devices)
    return extractor.model, extractor.features("identity", pixels.astype(np.float32))


def keras_classifier(make, x, y):
    """Fit one epoch, load the saved weights into a fresh learner, predict."""
    make(work / make.__name__).fit(x, y, x, y)
    loaded = make(work / make.__name__).load()
    return loaded.model, loaded.predict_proba(x)


def head():
    from kagglekit.learners.head import HeadClassifier

    def head(workdir):
        return HeadClassifier(8, 2, workdir, epochs=1, batch_size=4, devices=devices)

    return keras_classifier(head, rng.normal(size=(8, 8)), labels)


def multilabel_head():
    from kagglekit.learners.multilabel_head import MultiLabelHead

    def multilabel_head(workdir):
        return MultiLabelHead(8, 3, workdir, epochs=1, batch_size=4, devices=devices)

    return keras_classifier(multilabel_head, rng.normal(size=(8, 8)), rng.integers(0, 2, (8, 3)))


def top_blocks():
    from kagglekit.learners.top_blocks import TopBlocksClassifier

    def top_blocks(workdir):
        return TopBlocksClassifier("efficientnet_lite0", 32, 2, workdir, epochs=1, batch_size=4, devices=devices)

    shape = top_blocks(work).build().input_shape[1:]
    return keras_classifier(top_blocks, rng.normal(size=(8, *shape)), labels)


def finetuned():
    from kagglekit.learners.finetune import FineTunedClassifier

    images = shard_rows(work / "images", pixels, work / "shards")
    learner = FineTunedClassifier("scratch_cnn", 32, 2, work / "finetuned", epochs=1, head_epochs=0, top_epochs=0,
                                  batch_size=4, devices=devices).fit(images, labels)
    loaded = FineTunedClassifier("scratch_cnn", 32, 2, learner.workdir, devices=devices).load()
    return loaded.model, loaded.predict_proba(images, ["identity"])


def segmenter():
    from kagglekit.learners.segmenter import Segmenter

    paths, masks = [], []
    for i, image in enumerate(pixels[:4]):
        paths.append(work / f"seg{i}.png")
        masks.append(work / f"seg{i}_mask.png")
        Image.fromarray(image).save(paths[-1])
        Image.fromarray((np.arange(32)[None, :] >= 16).astype(np.uint8).repeat(32, 0) * (i % 3)).save(masks[-1])
    params = dict(head="unet", backbone="scratch_cnn", input_size=(32, 32), freeze_encoder=False, epochs=1,
                  batch_size=2, devices=devices)
    Segmenter(3, None, work / "segmenter", **params).fit(paths, masks)
    loaded = Segmenter(3, None, work / "segmenter", **params).load()
    return loaded.model, loaded.proba_resized(pixels[:4])


report = {"replicas": devices.replicas}
for kind in sys.argv[2:]:
    model, predicted = globals()[kind]()
    report[kind] = {"variables": len(model.variables),
                    "mirrored": sum(isinstance(v.value, tf.distribute.DistributedValues) for v in model.variables),
                    "rows": len(predicted), "finite": bool(np.isfinite(predicted).all())}
print(json.dumps(report))
