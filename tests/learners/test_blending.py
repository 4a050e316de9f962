"""Blends of members read a chunk at a time score, climb and predict exactly as blends of members held whole."""

from __future__ import annotations

import numpy as np
import pytest

from kagglekit.learners.blending import Chunked, HillClimbBlend, MeanBlend, weighted_sum


def noisy_maps(seed: int = 0, n: int = 12) -> tuple[np.ndarray, list[np.ndarray]]:
    """True label maps of ``n`` 5 x 7 images, 4 classes, and three members' float16 maps of them, each noisier."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, (n, 5, 7))
    members = []
    for noise in (1.2, 1.5, 3.0):
        logits = rng.normal(size=(n, 5, 7, 4)) * noise + np.eye(4)[truth]
        members.append((np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float16))
    return truth, members


@pytest.mark.parametrize("chunk", [1, 5, 12])
@pytest.mark.parametrize("method", [HillClimbBlend, MeanBlend])
def test_fitting_chunk_by_chunk_equals_fitting_on_every_row_at_once(method, chunk):
    truth, members = noisy_maps()
    rows = np.arange(len(truth))

    def row_score(at: np.ndarray, proba: np.ndarray) -> np.ndarray:
        return (proba.argmax(-1) == truth[at]).mean((1, 2))

    whole = method().fit(members, rows, lambda at, proba: float(np.mean(row_score(at, proba))))
    reads = []

    def read(at: np.ndarray) -> list[np.ndarray]:
        reads.append(len(at))
        return [m[at] for m in members]

    chunked = method().fit_chunked(Chunked(read, len(members), rows, chunk), row_score)
    np.testing.assert_array_equal(chunked.weights_, whole.weights_)
    assert max(reads, default=0) <= chunk  # never more than a chunk read at once
    if method is HillClimbBlend:
        assert (whole.weights_ > 0).sum() >= 2  # it climbed: the equality covers more than the first pick
    np.testing.assert_array_equal(chunked.predict_proba([m[:3] for m in members]),
                                  whole.predict_proba(members)[:3])


def test_the_weighted_sum_is_the_stacked_one_without_the_stack():
    _, members = noisy_maps(1)
    weights = np.array([0.5, 0.25, 0.25])
    summed = weighted_sum(weights, members)
    assert summed.dtype == np.float64  # float16 maps mixed as float64, as the stacked product was
    np.testing.assert_allclose(summed, np.tensordot(weights, np.stack(members), axes=1), rtol=1e-12)
    np.testing.assert_array_equal(weighted_sum(np.array([0.0, 1.0, 0.0]), members), members[1].astype(np.float64))
