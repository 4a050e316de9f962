"""Probability maps kept per image: written as they come, read a few at a time, old whole-array files still read."""

from __future__ import annotations

import io

import numpy as np
import pytest

from kagglekit.core.errors import DataError
from kagglekit.runs.probability_maps import ProbabilityMaps, compact, maps_writer, save_maps


def softmax_maps(n: int, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(n, 4, 6, 3)) * 3
    return (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)


def test_chunks_written_in_order_or_at_rows_read_back_as_compact_float16(tmp_path):
    proba, ids = softmax_maps(7), [f"img{i}" for i in range(7)]
    with maps_writer(tmp_path / "a.npz", ids, ["x", "y", "z"]) as writer:
        writer(proba[:3])  # the next images, as a segmenter predicts them
        writer(proba[3:])
    with maps_writer(tmp_path / "b.npz", ids, ["x", "y", "z"]) as writer:
        writer.put(np.array([6, 0, 3]), proba[[6, 0, 3]])  # a nested blend's held rows, in any order
        writer.put(np.array([1, 2, 4, 5]), proba[[1, 2, 4, 5]])
    for name in ("a.npz", "b.npz"):
        maps = ProbabilityMaps(tmp_path / name)
        assert maps.ids == ids and maps.classes == ["x", "y", "z"] and maps.size == (4, 6)
        np.testing.assert_array_equal(maps.rows(), compact(proba))
        np.testing.assert_array_equal(maps.rows([5, 1]), compact(proba[[5, 1]]))
        assert maps.rows([]).shape == (0, 4, 6, 3)


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    with pytest.raises(ValueError, match="the maps of 2 of 5 images were not written"):
        with maps_writer(tmp_path / "short.npz", list("abcde"), ["x", "y", "z"]) as writer:
            writer(softmax_maps(3))
    with pytest.raises(RuntimeError):
        with maps_writer(tmp_path / "failed.npz", list("ab"), ["x", "y", "z"]) as writer:
            writer(softmax_maps(1))
            raise RuntimeError("the segmenter failed")
    assert list(tmp_path.iterdir()) == []


def test_maps_saved_before_per_image_members_are_read(tmp_path):
    """A run made before maps were kept per image saved one ``proba`` array of every image."""
    proba = compact(softmax_maps(4))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=np.array(list("abcd")), classes=np.array(["x", "y", "z"]), proba=proba)
    (tmp_path / "old.npz").write_bytes(buffer.getvalue())
    old = ProbabilityMaps(tmp_path / "old.npz")
    assert old.ids == list("abcd") and old.size == (4, 6)
    np.testing.assert_array_equal(old.rows([3, 0]), proba[[3, 0]])
    save_maps(tmp_path / "new.npz", old.ids, old.classes, old.rows())
    np.testing.assert_array_equal(ProbabilityMaps(tmp_path / "new.npz").rows(), proba)


def test_an_unreadable_maps_file_is_named(tmp_path):
    (tmp_path / "test_maps.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="test_maps.npz: not a readable probability maps file.*--resume"):
        ProbabilityMaps(tmp_path / "test_maps.npz")
