"""What the fine-tuning stream's augmentation does, by behaviour: fresh draws every epoch (not merely a
new order), MixUp and CutMix labels that carry exactly the mass of what was mixed into the pixels, and
a RandAugment that changes pixels, keeps their shape, type and range, and repeats for a seed; flips and a
transpose that draw exact symmetries of the square."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import shard_rows

from kagglekit.core.config import AugmentConfig
from kagglekit.data import streams

BATCH = 4
#: every augmentation switched off: the stream only reads, shuffles and casts
OFF = AugmentConfig(horizontal_flip=False, vertical_flip=False, rotation=0.0, shift=0.0, zoom=0.0, channel_shift=0.0,
                    crop=False)


@pytest.fixture
def epoch(tmp_path):
    """One epoch of ``training_stream`` over images given as an array: (images, targets, the image each row
    shows), every batch concatenated, in stream order."""
    sharded = {}

    def stream(images: np.ndarray, targets: np.ndarray, seed: int, epoch_: int, augment: AugmentConfig):
        key = images.tobytes()
        if key not in sharded:
            sharded[key] = shard_rows(tmp_path / f"images{len(sharded)}", images, tmp_path / "cache")
        rows = sharded[key]
        batches = list(streams.training_stream(rows, targets, images.shape[1], BATCH, seed, epoch_, augment)
                       .as_numpy_iterator())
        order = streams.epoch_indices(rows, BATCH, seed, epoch_)
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), order

    return stream


def noise(n: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_each_epoch_draws_new_augmentations_for_every_image(epoch):
    """Image i, wherever each epoch's shuffle puts it, looks different in epochs 3 and 4 (and under another
    run seed), and identical when (seed, epoch) repeat; with every augmentation off it is itself."""
    images = noise(8)
    targets = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    for e in (3, 4):
        plain, _, order = epoch(images, targets, 1, e, OFF)
        np.testing.assert_array_equal(plain, images[order])  # ``epoch_indices`` is the stream's order

    def by_image(seed, epoch_):
        x, _, order = epoch(images, targets, seed, epoch_, AugmentConfig())
        assert sorted(order) == list(range(8))
        return x[np.argsort(order)]

    first, again = by_image(1, 3), by_image(1, 3)
    np.testing.assert_array_equal(first, again)
    next_epoch, other_run = by_image(1, 4), by_image(2, 3)
    for i in range(len(images)):
        assert not np.allclose(first[i], images[i]), f"image {i} not augmented"
        assert not np.allclose(first[i], next_epoch[i]), f"image {i}: epochs 3 and 4 drew the same augmentation"
        assert not np.allclose(first[i], other_run[i]), f"image {i}: seeds 1 and 2 drew the same augmentation"


def test_flips_and_transpose_make_every_image_an_exact_symmetry_of_the_square_and_reach_all_eight(epoch):
    """With both flips and ``transpose`` (no rotation), each image of the stream is its source rotated by a right
    angle or reflected, pixel for pixel; over a few epochs all 8 symmetries of the square are drawn."""
    images = noise(16)
    targets = np.eye(2, dtype=np.float32)[np.arange(16) % 2]
    dihedral = OFF.model_copy(update={"horizontal_flip": True, "vertical_flip": True, "transpose": True})
    seen = set()
    for e in range(3):
        x, _, order = epoch(images, targets, 1, e, dihedral)
        for shown, source in zip(x, images[order]):
            views = [np.rot90(source, k) for k in range(4)] + [np.rot90(source.transpose(1, 0, 2), k) for k in range(4)]
            matches = [i for i, view in enumerate(views) if np.array_equal(shown, view)]
            assert len(matches) == 1, "not an exact symmetry of its source"
            seen.add(matches[0])
    assert seen == set(range(8))


def test_mixup_labels_weigh_each_image_as_much_as_its_pixels_do(epoch):
    """Every image is its own class (one-hot ``eye``), so a label row reads as "how much of each image".
    Random images are linearly independent, so the pixels alone determine those weights: they must be
    the label's, one of them the row's own image, summing to 1."""
    n = 8
    images = noise(n)
    x, y, order = epoch(images, np.eye(n, dtype=np.float32), 5, 0, OFF.model_copy(update={"mixup": 1.0}))
    sources = images.reshape(n, -1).T.astype(np.float64)  # (pixels, images)
    for row in range(len(x)):
        weights = np.linalg.lstsq(sources, x[row].ravel().astype(np.float64), rcond=None)[0]
        np.testing.assert_allclose(y[row], weights, atol=1e-3, err_msg=f"row {row}: label vs pixel mix")
        assert y[row].sum() == pytest.approx(1, abs=1e-6) and (y[row] >= 0).all()
        assert np.count_nonzero(y[row] > 1e-6) <= 2 and y[row, order[row]] > 0  # its own image and one other
    assert (y.max(axis=1) < 0.9).sum() >= 2  # some rows truly mixed (a row paired with itself stays one-hot)


def test_cutmix_labels_carry_the_pasted_area(epoch):
    """Each image one constant colour (its own class): the pixels that changed colour are the pasted
    patch, whose colour names its source. The label's mass on that source is the patch's area fraction,
    up to the patch's rounding to whole pixels: (H + W + 1) / (H W)."""
    n, size = 8, 64
    colours = np.stack([np.arange(n) * 30 + 10, 250 - np.arange(n) * 25, (np.arange(n) * 77) % 256], axis=1)
    images = np.broadcast_to(colours[:, None, None, :], (n, size, size, 3)).astype(np.uint8)
    x, y, order = epoch(images, np.eye(n, dtype=np.float32), 5, 0, OFF.model_copy(update={"cutmix": 1.0}))
    rounding = (2 * size + 1) / size ** 2
    fractions = []
    for row in range(len(x)):
        own = order[row]
        pasted = np.any(x[row] != colours[own], axis=-1)
        fractions.append(pasted.mean())
        assert y[row].sum() == pytest.approx(1, abs=1e-6) and (y[row] >= 0).all()
        assert 1 - y[row, own] == pytest.approx(pasted.mean(), abs=rounding), f"row {row}"
        if pasted.any():
            (source,) = {tuple(c) for c in x[row][pasted].astype(int)}  # one source image per patch
            j = int(np.flatnonzero((colours == source).all(axis=1))[0])
            assert y[row, j] == pytest.approx(pasted.mean(), abs=rounding), f"row {row}: mass on image {j}"
    assert max(fractions) > 0.2  # patches of real size were pasted, so the mass check had something to check


def test_randaugment_changes_pixels_keeps_shape_type_range_and_repeats_for_a_seed(epoch):
    images = noise(8)
    targets = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    config = OFF.model_copy(update={"randaugment": True})
    x, y, order = epoch(images, targets, 3, 0, config)
    assert x.shape == images.shape and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    np.testing.assert_array_equal(y, targets[order])  # RandAugment leaves labels alone
    changed = [not np.allclose(x[row], images[order[row]]) for row in range(len(x))]
    assert sum(changed) >= len(x) - 1, changed
    np.testing.assert_array_equal(x, epoch(images, targets, 3, 0, config)[0])  # (each build traces: ~2 s)


def test_every_stretch_of_an_epoch_mixes_the_classes(tmp_path):
    """Images listed class by class (as a class-folder competition lists them), several shards: each tenth of
    a training epoch holds most classes. With shards of sorted samples, an epoch went through the classes in
    order, and what a network saw last was a few classes."""
    classes, per_class = 10, 240  # shards larger than a shuffle window (streams.WINDOW), as on real competitions
    rows = shard_rows(tmp_path / "images", noise(classes * per_class, 4), tmp_path / "cache", images_per_shard=1200)
    order = streams.epoch_indices(rows, 8, seed=0, epoch=0)
    for stretch in np.array_split(order, 10):
        assert len(np.unique(stretch // per_class)) >= 8, stretch // per_class
