"""Label maps (one class index per pixel): reading, resizing and splitting into per-class masks.

Segmentation competitions ship label maps as palette PNGs (VOC: the pixel is the palette index, so
never convert to RGB), grayscale PNGs (CamVid) or NumPy arrays (the VOC course competition).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from kagglekit.core.errors import DataError


def read_label_map(path: str | Path) -> np.ndarray:
    """(H, W) uint8 class indices from a ``.npy`` array or a palette / grayscale image."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                if image.mode not in ("P", "L", "I;16", "I"):
                    raise DataError(f"{path}: a label map is a palette or grayscale image, not mode {image.mode}")
                array = np.asarray(image)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable label map ({exc})") from exc
    if array.ndim != 2:
        raise DataError(f"{path}: a label map is 2-D (H, W), this one has shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise DataError(f"{path}: label values must lie in 0..255, found {array.min()}..{array.max()}")
    return array.astype(np.uint8, copy=False)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image or ``.npy`` array, read from its header only."""
    path = Path(path)
    if path.suffix == ".npy":
        return tuple(np.load(path, mmap_mode="r").shape[:2])
    with Image.open(path) as image:
        return image.height, image.width


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (height, width): no invented classes at edges."""
    height, width = size
    if labels.shape == (height, width):
        return labels
    return np.asarray(Image.fromarray(labels).resize((width, height), Image.NEAREST))


def class_masks(labels: np.ndarray, classes) -> np.ndarray:
    """(len(classes), H, W) boolean stack: mask j marks the pixels labelled ``classes[j]``."""
    return labels[None] == np.asarray(classes, dtype=labels.dtype)[:, None, None]
