"""Feature extraction saves the cache chunk by chunk: a killed extraction resumes from its last chunk."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

from kagglekit.learners import features as features_module
from kagglekit.learners.features import FeatureExtractor
from kagglekit.models.backbones import BACKBONES, Backbone

VIEWS = ["identity", "hflip"]
REAL_FEATURES = FeatureExtractor.features


class Killed(Exception):
    """Stands in for the kill (OOM, timeout, Ctrl-C) that ends a long extraction."""


def tiny_net(x, weights_dir):
    """One seeded convolution: the same weights (so the same cache key) every time it is built."""
    return keras.layers.Conv2D(8, 3, strides=2, name="conv",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=7),
                               bias_initializer=keras.initializers.RandomUniform(seed=8))(x)


@pytest.fixture
def tiny_backbone(monkeypatch):
    monkeypatch.setitem(BACKBONES._items, "tiny_test", Backbone("tiny_test", tiny_net, "tf", 16, "none.h5", "test"))
    monkeypatch.setattr(features_module, "CHUNK_IMAGES", 3)
    return "tiny_test"


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):  # chunks of 3, 3 and 1 images
        paths.append(tmp_path / "images" / f"{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(paths[-1])
    return paths, [f"sha{i}" for i in range(7)]


def counting_features(monkeypatch, kill_after: int | None = None) -> list[int]:
    """Record the batch size of every backbone call (first view only); raise Killed once ``kill_after``
    images have been computed and another batch comes."""
    sizes = []

    def counting(self, view, batch):
        if view == VIEWS[0]:
            if kill_after is not None and sum(sizes) >= kill_after:
                raise Killed
            sizes.append(len(batch))
        return REAL_FEATURES(self, view, batch)

    monkeypatch.setattr(FeatureExtractor, "features", counting)
    return sizes


def extractor(backbone, cache_dir):
    return FeatureExtractor(backbone, 16, batch_size=2, cache_dir=cache_dir)


def test_a_killed_extraction_keeps_its_chunks_and_resumes(tiny_backbone, images, tmp_path, monkeypatch):
    paths, shas = images
    expected = extractor(tiny_backbone, tmp_path / "uninterrupted").transform(paths, shas, VIEWS)

    cache = tmp_path / "killed"
    computed = counting_features(monkeypatch, kill_after=6)
    with pytest.raises(Killed):
        extractor(tiny_backbone, cache).transform(paths, shas, VIEWS)
    assert sum(computed) == 6
    for view in VIEWS:  # the two finished chunks are on disk, for every view
        assert extractor(tiny_backbone, cache)._load(view).keys() == set(shas[:6])

    computed = counting_features(monkeypatch)
    resumed = extractor(tiny_backbone, cache).transform(paths, shas, VIEWS)
    assert computed == [1]  # only the image of the unfinished chunk
    np.testing.assert_array_equal(resumed, expected)
    assert extractor(tiny_backbone, cache)._load(VIEWS[1]).keys() == set(shas)


def test_a_completed_extraction_is_never_recomputed(tiny_backbone, images, tmp_path, monkeypatch):
    paths, shas = images
    computed = counting_features(monkeypatch)
    first = extractor(tiny_backbone, tmp_path / "cache").transform(paths, shas, VIEWS)
    assert sum(computed) == len(paths)
    again = extractor(tiny_backbone, tmp_path / "cache").transform(paths, shas, VIEWS)
    assert sum(computed) == len(paths)  # all from the cache
    np.testing.assert_array_equal(again, first)
