"""RLE codecs: property tests for both conventions, and the real VOC masks byte for byte."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kagglekit.data.masks import class_masks, read_label_map
from kagglekit.submission import rle

FORMATS = [rle.COLUMN_MAJOR, rle.ROW_MAJOR, rle.RLEFormat("F", base=0, empty="-1")]
masks = arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9)))


def naive_encode(mask, fmt):
    """Pixel by pixel, as the competitions' own starter code writes it."""
    flat, pairs, i = list(mask.ravel(order=fmt.order)), [], 0
    while i < len(flat):
        if flat[i]:
            j = i
            while j < len(flat) and flat[j]:
                j += 1
            pairs += [i + fmt.base, j - i]
            i = j
        else:
            i += 1
    return " ".join(map(str, pairs)) if pairs else fmt.empty


@pytest.mark.parametrize("fmt", FORMATS, ids=["column-major", "row-major", "0-based"])
@given(mask=masks)
@settings(max_examples=150, deadline=None)
def test_round_trip_and_agreement_with_naive_encoder(fmt, mask):
    text = rle.encode(mask, fmt)
    assert text == naive_encode(mask, fmt)
    np.testing.assert_array_equal(rle.decode(text, mask.shape, fmt), mask)
    assert rle.check(text, fmt, mask.size) is None


@given(mask=masks, other=masks)
@settings(max_examples=150, deadline=None)
def test_dice_from_encodings_equals_dice_of_masks(mask, other):
    other = np.resize(other, mask.shape)
    expected = 1.0 if not (mask.any() or other.any()) else 2 * (mask & other).sum() / (mask.sum() + other.sum())
    assert rle.dice(rle.encode(mask), rle.encode(other)) == pytest.approx(expected)


@pytest.mark.parametrize("fmt", FORMATS, ids=["column-major", "row-major", "0-based"])
def test_edges_empty_and_full(fmt):
    shape = (3, 4)
    empty, full = np.zeros(shape, bool), np.ones(shape, bool)
    assert rle.encode(empty, fmt) == fmt.empty
    assert rle.encode(full, fmt) == f"{fmt.base} 12"
    corners = empty.copy()
    corners[0, 0] = corners[-1, -1] = True  # first and last pixel in both orders
    assert rle.encode(corners, fmt) == f"{fmt.base} 1 {11 + fmt.base} 1"
    for mask in (empty, full, corners):
        np.testing.assert_array_equal(rle.decode(rle.encode(mask, fmt), shape, fmt), mask)


def test_orders_differ_as_documented():
    mask = np.array([[1, 1, 0], [0, 0, 0]], bool)
    assert rle.encode(mask, rle.ROW_MAJOR) == "1 2"
    assert rle.encode(mask, rle.COLUMN_MAJOR) == "1 1 3 1"


@pytest.mark.parametrize("text, reason", [
    ("1 2 3", "pairs"),
    ("1 x", "not a whole number"),
    ("0 2", "before the first pixel"),
    ("1 0", "length 0"),
    ("5 2 1 1", "out of order"),
    ("1 3 3 1", "overlaps"),
    ("10 3", "past the mask's 11 pixels"),
])
def test_check_explains_malformed_encodings(text, reason):
    assert reason in rle.check(text, rle.COLUMN_MAJOR, size=11)
    with pytest.raises(rle.RLEError, match=reason):
        rle.decode(text, (11,), rle.COLUMN_MAJOR)


def test_real_voc_masks_round_trip_byte_for_byte(voc_masks):
    """Encode each real mask's 20-class stack row-major, decode it, rebuild the label map exactly."""
    root = voc_masks
    labels = pd.read_csv(root / "labels.csv", dtype={"id": str})
    for row in labels.itertuples():  # all 1,400
        label_map = read_label_map(root / "masks" / f"{row.id}.png")
        assert label_map.shape == (row.height, row.width)
        stack = class_masks(label_map, range(1, 21))
        text = rle.encode(stack, rle.ROW_MAJOR)
        decoded = rle.decode(text, stack.shape, rle.ROW_MAJOR)
        rebuilt = np.where(decoded.any(0), decoded.argmax(0) + 1, 0).astype(np.uint8)
        expected = np.where(label_map == 255, 0, label_map)  # void is in no class mask
        assert rebuilt.tobytes() == expected.tobytes()
        present = [int(c) for c in labels.columns[1:21].map(lambda c: getattr(row, c))]
        assert decoded.reshape(20, -1).any(1).astype(int).tolist() == present
