"""Label maps (one class index per pixel): reading, resizing and splitting into per-class masks.

Segmentation competitions ship label maps as palette PNGs (VOC: the pixel is the palette index, so
never convert to RGB), grayscale PNGs (CamVid) or NumPy arrays (the VOC course competition).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from kagglekit.data.images import UnreadableImage, check_pixels, decoding


def read_label_map(path: str | Path) -> np.ndarray:
    """(H, W) uint8 class indices from a ``.npy`` array or a palette / grayscale image.

    Every way the file can fail is an UnreadableImage (a DataError) naming it, so pipelines can skip
    and list a bad training mask exactly like a bad training image.
    """
    path = Path(path)
    with decoding(path, "label map"):
        if path.suffix.lower() == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)  # its shape is checked before it is read
            if array.ndim != 2:
                raise UnreadableImage(f"{path}: a label map is 2-D (H, W), this one has shape {array.shape}")
            check_pixels(path, array.shape[1], array.shape[0])
            array = np.array(array)
        else:
            with Image.open(path) as image:
                check_pixels(path, image.width, image.height)
                if image.mode not in ("P", "L", "I;16", "I", "1"):
                    raise UnreadableImage(f"{path}: a label map is a palette or grayscale image, not mode {image.mode}")
                array = np.asarray(image)  # 2-D in every mode allowed
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise UnreadableImage(f"{path}: label values must be whole numbers, this map holds {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise UnreadableImage(f"{path}: label values must lie in 0..255, found {array.min()}..{array.max()}")
    return array.astype(np.uint8, copy=False)


class LabelMapFiles(Sequence):
    """The label maps of ``paths``, each read when indexed, none held: a split's masks at full size can
    outgrow memory (CamVid's are 0.7 MB each). ``sizes`` are read from the headers."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.sizes = [image_size(p) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return read_label_map(self.paths[index])


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image or ``.npy`` array, read from its header only (UnreadableImage naming
    the file if it has none, or is larger than ``KAGGLEKIT_MAX_PIXELS``)."""
    path = Path(path)
    with decoding(path, "image"):
        if path.suffix.lower() == ".npy":
            height, width = np.load(path, mmap_mode="r", allow_pickle=False).shape[:2]
        else:
            with Image.open(path) as image:
                height, width = image.height, image.width
    check_pixels(path, width, height)
    return int(height), int(width)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to (height, width): no invented classes at edges."""
    height, width = size
    if labels.shape == (height, width):
        return labels
    return np.asarray(Image.fromarray(labels).resize((width, height), Image.NEAREST))


def class_masks(labels: np.ndarray, classes) -> np.ndarray:
    """(len(classes), H, W) boolean stack: mask j marks the pixels labelled ``classes[j]``."""
    return labels[None] == np.asarray(classes, dtype=labels.dtype)[:, None, None]


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (index bits spread over R, G, B), flattened for ``Image.putpalette``:
    the palette every segmentation viewer knows, and distinct colours for up to 256 labels."""
    palette = []
    for index in range(256):
        r = g = b = 0
        for shift in range(8):
            r |= ((index >> 0) & 1) << (7 - shift)
            g |= ((index >> 1) & 1) << (7 - shift)
            b |= ((index >> 2) & 1) << (7 - shift)
            index >>= 3
        palette += [r, g, b]
    return palette


def label_png(labels: np.ndarray) -> bytes:
    """A label map as a palette PNG: the pixel values are the class indices (what ``read_label_map``
    reads back), and any image viewer shows them in VOC colours."""
    import io

    image = Image.fromarray(np.asarray(labels, dtype=np.uint8))  # mode L; the palette makes it P
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
