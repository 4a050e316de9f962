"""Frozen-backbone features, computed once per image and view, cached on disk by image content.

Training heads on cached features is what makes K-fold CV and reruns cheap on a CPU: the backbone
runs once per image per view, ever. The cache key covers everything the numbers depend on: backbone
name, the exact weight values, image size, the tapped layers, the view and the image bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from kagglekit.core.config import AugmentConfig
from kagglekit.core.paths import features_cache_dir
from kagglekit.core.progress import progress
from kagglekit.data.augment import Augmenter, augment_key, is_augmented
from kagglekit.data.loaders import image_batches
from kagglekit.data.views import apply_view
from kagglekit.learners.devices import ONE_DEVICE, Devices

log = logging.getLogger(__name__)

FEATURE_FORMAT = 1  # bump when the way features are computed changes
#: Images per cache save: a killed extraction loses at most this much backbone work.
CHUNK_IMAGES = 512


class FeatureExtractor:
    """Maps images to the concatenated global-average-pooled outputs of ``taps`` of a frozen backbone.

    With ``pool=False`` and one tap it returns that layer's activation map instead (the input of
    fine-tuned top blocks). The backbone is built, and runs, under ``devices``.
    """

    def __init__(self, backbone: str, image_size: int, taps: list[str] | None = None, pool: bool = True,
                 weights_dir: str | None = None, batch_size: int = 64, cache_dir: Path | None = None,
                 augment: AugmentConfig | None = None, seed: int = 0, devices: Devices = ONE_DEVICE):
        import keras

        from kagglekit.models.backbones import require_pretrained

        self.backbone, self.image_size, self.pool, self.batch_size = backbone, image_size, pool, batch_size
        self.devices = devices
        self.spec = require_pretrained(backbone, "its frozen features")
        self.taps = list(taps or [])
        with devices.scope():
            net = self.spec.build(image_size, weights_dir=weights_dir)
            if not self.taps:
                outputs = net.output
            elif pool:
                pooled = [keras.layers.GlobalAveragePooling2D(name=f"gap_{t}")(net.get_layer(t).output)
                          for t in self.taps]
                outputs = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="taps")(pooled)
            else:
                (tap,) = self.taps
                outputs = net.get_layer(tap).output
            self.model = keras.Model(net.input, outputs, name=f"{backbone}_features")
        self.key = self._key(net)
        self.cache_dir = (cache_dir or features_cache_dir()) / self.key
        self.augment = augment or AugmentConfig()
        self.augmenter = Augmenter(self.augment, seed)

    def _key(self, net) -> str:
        digest = hashlib.sha256()
        digest.update(repr((FEATURE_FORMAT, self.backbone, self.image_size, self.taps, self.pool)).encode())
        for weight in net.weights:
            digest.update(np.asarray(weight.numpy()).tobytes())
        return f"{self.backbone}-{self.image_size}-{digest.hexdigest()[:16]}"

    def transform(self, paths: list[Path], shas: list[str], views: list[str], desc: str = "features") -> np.ndarray:
        """Features of shape (len(views), len(paths), ...), float16, from cache where possible."""
        cached = {view: self._load(view) for view in views}
        missing = sorted({i for view in views for i, s in enumerate(shas) if s not in cached[view]})
        if missing:
            self._compute([paths[i] for i in missing], [shas[i] for i in missing], views, cached, desc)
        return np.stack([np.stack([cached[view][s] for s in shas]) for view in views])

    def features(self, view: str, batch: np.ndarray) -> np.ndarray:
        """One view of a batch of resized images (``image_batches``) through the backbone, float16.

        The cache is optional: serving maps uploads straight through this (an upload's sha is never
        seen again), and gets the same numbers as a run that read them from the cache.
        """
        images = self.augmenter(view, batch) if is_augmented(view) else apply_view(view, batch)
        return np.asarray(self.devices.predict(self.model, images, len(images)), dtype=np.float16)

    def _compute(self, paths, shas, views, cached, desc) -> None:
        """Add the features of ``paths`` to ``cached``, saving the cache after every ``CHUNK_IMAGES``
        images: a run killed an hour into extraction resumes from its last chunk, not from scratch."""
        with progress(len(paths) * len(views), f"{desc} {self.backbone}@{self.image_size}") as bar:
            for start in range(0, len(paths), CHUNK_IMAGES):
                chunk = slice(start, start + CHUNK_IMAGES)
                self._compute_chunk(paths[chunk], shas[chunk], views, cached, bar)
                for view in views:
                    self._save(view, cached[view])

    def _compute_chunk(self, paths, shas, views, cached, bar) -> None:
        """Add the features of one chunk of images to ``cached`` (in memory only)."""
        new = {view: [] for view in views}
        for batch in image_batches(paths, self.image_size, self.batch_size):
            for view in views:
                new[view].append(self.features(view, batch))
                bar.update(len(batch))
        for view in views:
            cached[view].update(zip(shas, np.concatenate(new[view])))

    def _path(self, view: str) -> Path:
        if is_augmented(view):  # a random draw: its identity includes the settings and the seed
            return self.cache_dir / f"{view}-{augment_key(self.augment)}-{self.augmenter.seed}.npz"
        return self.cache_dir / f"{view}.npz"

    def _load(self, view: str) -> dict[str, np.ndarray]:
        """The cached features of ``view`` by image sha; a cache file that cannot be read (truncated by a
        killed run, corrupted, foreign) is only a miss: warned about, recomputed and overwritten."""
        path = self._path(view)
        if not path.exists():
            return {}
        try:
            # our own handle: np.load leaks the one it opens when the zip directory is unreadable (ResourceWarning)
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                shas, features = data["shas"], data["features"]
            if shas.ndim != 1 or len(shas) != len(features):
                raise ValueError(f"{len(shas)} keys for {len(features)} feature rows")
            return dict(zip(shas.tolist(), features))
        except Exception as exc:  # noqa: BLE001 - zipfile, zlib, pickle and NumPy each raise their own on bad bytes
            log.warning("feature cache %s is unreadable (%s: %s); recomputing it", path, type(exc).__name__, exc)
            return {}

    def _save(self, view: str, table: dict[str, np.ndarray]) -> None:
        """Write the cache atomically; failing to (disk full, read-only) costs only a later recomputation."""
        path = self._path(view)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, shas=np.array(list(table)), features=np.stack(list(table.values())))
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            log.warning("could not write the feature cache %s (%s); features will be computed again next time",
                        path, exc)
