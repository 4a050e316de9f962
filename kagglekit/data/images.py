"""Decode any image file a competition may ship into RGB uint8, or say exactly why not.

Kaggle data is messy: PNG and JPEG of any size, RGBA, grayscale, palette and 16-bit images, the odd
truncated file or stray ``Thumbs.db``. Everything goes through ``read_rgb`` so models see one form.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})


class UnreadableImage(ValueError):
    """The file is not a decodable image; the message names it and the reason."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 array: alpha composited on white, 16-bit scaled.

    ``.npy`` files (competitions that ship decoded arrays) must already hold (H, W, 3) uint8.
    """
    path = Path(path)
    if path.suffix == ".npy":
        return read_rgb_array(path)
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"{path}: not a readable image ({exc})") from exc


def read_rgb_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UnreadableImage(f"{path}: not a readable NumPy array ({exc})") from exc
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise UnreadableImage(f"{path}: expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    return array


def to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"empty image of shape {array.shape}")
    return array


def find_unreadable(paths: list[Path], workers: int = 8) -> dict[Path, str]:
    """Fully decode every file (catches truncation); map each unreadable path to its reason."""

    def check(path: Path) -> str | None:
        try:
            read_rgb(path)
        except UnreadableImage as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(check, paths))
    return {p: r for p, r in zip(paths, reasons) if r is not None}
