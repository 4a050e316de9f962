"""Decode any image file a competition may ship into RGB uint8, or say exactly why not.

Kaggle data is messy: PNG and JPEG of any size, RGBA, grayscale, palette and 16-bit images, the odd
truncated, empty or enormous file, a dangling symlink, a stray ``Thumbs.db``. Everything goes through
``read_rgb`` so models see one form, and every way a file can fail becomes one ``UnreadableImage``
that names it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from kagglekit.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
DEFAULT_MAX_PIXELS = 100_000_000  # 10,000 x 10,000: far beyond any competition photo, far below a bomb
MAX_PIXELS_ENV = "KAGGLEKIT_MAX_PIXELS"


class UnreadableImage(DataError, ValueError):
    """The file is not a decodable image; the message names it and the reason."""


class TooManyPixels(UnreadableImage):
    """The image is larger than ``max_pixels()`` (a decompression bomb, or a limit set too low)."""


def max_pixels() -> int:
    """The largest image (width x height) kagglekit decodes: ``$KAGGLEKIT_MAX_PIXELS`` or 100 megapixels."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive whole number of pixels")
    return int(text)


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 array: alpha composited on white, 16-bit scaled.

    ``.npy`` files (competitions that ship decoded arrays) must already hold (H, W, 3) uint8.
    """
    path = Path(path)
    with decoding(path, "image"):
        if path.suffix.lower() == ".npy":
            return read_rgb_array(path)
        return _decode_rgb(path, path)


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """``read_rgb`` for an image held in memory (an upload): ``name`` is what error messages call it."""
    with decoding_errors(name, "image"):
        if not data:
            raise UnreadableImage(f"{name}: empty file (0 bytes)")
        return _decode_rgb(io.BytesIO(data), name)


def _decode_rgb(source, name) -> np.ndarray:
    with Image.open(source) as image:
        check_pixels(name, image.width, image.height)
        image.load()
        return to_rgb(image)


@contextlib.contextmanager
def decoding(path: Path, what: str) -> Iterator[None]:
    """Turn every way decoding ``path`` can fail into one UnreadableImage naming it: nothing to read
    (missing, dangling symlink, empty), too many pixels, or anything a decoder raises on bad bytes."""
    with decoding_errors(path, what):
        missing = missing_reason(path)
        if missing:
            raise UnreadableImage(f"{path}: {missing}")
        yield


@contextlib.contextmanager
def decoding_errors(name, what: str) -> Iterator[None]:
    """Too many pixels (TooManyPixels), or anything a decoder raises on bad bytes, as one UnreadableImage
    naming ``name``."""
    Image.MAX_IMAGE_PIXELS = max_pixels()  # Pillow's own guard (it acts inside Image.open) agrees with ours
    try:
        yield
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels(f"{name}: unreadable: too large ({exc}); raise {MAX_PIXELS_ENV} to allow it") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise anything (struct.error, zlib.error, ...) on bad bytes
        said = re.sub(r" ?<[\w.]+ object at 0x[0-9a-f]+>", "", str(exc))  # an upload's BytesIO names nothing
        raise UnreadableImage(f"{name}: not a readable {what} ({type(exc).__name__}: {said})") from exc


def missing_reason(path: Path) -> str | None:
    """Why there is nothing to decode at ``path`` (dangling symlink, no file, empty file), or None."""
    if path.is_symlink() and not path.exists():
        return f"dangling symlink (its target {os.readlink(path)} does not exist)"
    if not path.exists():
        return "file not found"
    if not path.is_file():
        return "not a file"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    return None


def check_pixels(path: Path, width: int, height: int, limit: int | None = None) -> None:
    """UnreadableImage unless a ``width`` x ``height`` image is within the pixel limit."""
    limit = max_pixels() if limit is None else limit
    if width * height > limit:
        raise TooManyPixels(f"{path}: unreadable: too large, {width} x {height} = {width * height} pixels > "
                              f"the limit of {limit} (raise {MAX_PIXELS_ENV} to allow it)")


def read_rgb_array(path: Path) -> np.ndarray:
    # memory-mapped first, so the header's shape is checked before anything is read into memory
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise UnreadableImage(f"{path}: expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    check_pixels(path, array.shape[1], array.shape[0])
    return np.array(array)


def to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
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


def check_image(path: str | Path) -> None:
    """UnreadableImage unless ``path`` decodes as ``read_rgb`` would, found at a fraction of its cost: a JPEG
    is decoded at 1/8 scale (libjpeg still reads every coefficient, so truncated or garbled data fails as in
    a full decode; 640x480: 3.8 ms against 12.3), any other file fully."""
    path = Path(path)
    with decoding(path, "image"):
        if path.suffix.lower() == ".npy":
            read_rgb_array(path)
            return
        with Image.open(path) as image:
            check_pixels(path, image.width, image.height)
            if image.format == "JPEG":
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
            to_rgb(image)


def find_unreadable(paths: list[Path], workers: int = 8,
                    read: Callable[[Path], object] = check_image) -> dict[Path, str]:
    """Decode every file with ``read`` (to the end: catches truncation); map each unreadable path to its reason."""

    def check(path: Path) -> str | None:
        try:
            read(path)
        except UnreadableImage as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(check, paths))
    return {p: r for p, r in zip(paths, reasons) if r is not None}


@dataclass(frozen=True)
class FolderScan:
    """What a flat image folder holds: its images, and everything a loader would otherwise pass over
    in silence. Dangling symlinks with an image name count as images, so they are reported as
    unreadable (by name) where the images are checked, instead of vanishing."""

    folder: Path
    images: list[Path] = field(default_factory=list)
    other_files: list[Path] = field(default_factory=list)  # not images: notes, Thumbs.db, .DS_Store
    nested: list[Path] = field(default_factory=list)  # images inside subfolders, not part of the layout
    dangling: list[Path] = field(default_factory=list)  # symlinks to nothing


def native_size(paths: list[Path], ceiling: int, floor: int = 64, sample: int = 256) -> int:
    """The input size that suits images of these files: the median shorter side of an evenly spaced sample (read
    from the headers), rounded up to a multiple of 32, within [``floor``, ``ceiling``]. A network fed an image
    resized far above its own pixels pays for pixels that hold nothing: Plant Seedlings' 150 px images at 224 cost
    twice the compute of 160 (0.98 s a training step against 0.49) and scored no better (fold 0: 0.925 both, in 10
    and 14 epochs of one budget)."""
    chosen = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(sample, len(paths)))] if paths else []
    sides = []
    for path in chosen:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # an unreadable file is named where images are read; the others decide the size
    if not sides:
        return ceiling
    return int(min(ceiling, max(floor, -(-int(np.median(sides)) // 32) * 32)))


def scan_folder(folder: Path, look_inside: bool = True) -> FolderScan:
    """The direct contents of ``folder`` sorted by kind (DataError if it cannot be listed); with
    ``look_inside``, the images in its subfolders too."""
    scan = FolderScan(Path(folder))
    try:
        entries = sorted(scan.folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder ({exc})") from exc
    for path in entries:
        looks_like_image = path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
        if path.is_symlink() and not path.exists():
            scan.dangling.append(path)
            if looks_like_image:
                scan.images.append(path)
        elif path.is_dir():
            if look_inside:
                scan.nested.extend(sorted(
                    Path(top) / name for top, _, names in os.walk(path) for name in names
                    if is_image_file(Path(top) / name)))
        elif is_image_file(path):
            scan.images.append(path)
        elif path.is_file():
            scan.other_files.append(path)
    return scan


def list_images(folder: Path, what: str) -> FolderScan:
    """``scan_folder`` of a folder the layout says holds images directly: DataError if it is missing or
    holds none (naming any found in its subfolders: the usual sign of one folder level too many)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} not found")
    scan = scan_folder(folder)
    if not scan.images:
        nested = ""
        if scan.nested:
            nested = (f"; {len(scan.nested)} image(s) lie in its subfolders ({_first_few(scan.nested, folder, 3)}), "
                      f"but the layout expects them directly in {folder}")
        raise DataError(f"{folder}: {what} has no images{nested}")
    return scan


def unique_ids(paths: list[Path], id_of: Callable[[Path], str]) -> list[str]:
    """The id of each path; DataError naming the files if two share one (``a.png`` and ``a.jpg`` by stem)."""
    ids = [id_of(p) for p in paths]
    if len(set(ids)) < len(ids):
        clashes = {}
        for path, id_ in zip(paths, ids):
            clashes.setdefault(id_, []).append(path.name)
        shown = "; ".join(f"{id_!r}: {', '.join(names)}" for id_, names in clashes.items() if len(names) > 1)
        raise DataError(f"{paths[0].parent}: several images have the same id ({shown[:500]}); "
                        "keep one file per id")
    return ids


def warn_ignored(scans: list[FolderScan], root: Path, shown: int = 5) -> str | None:
    """Log one warning naming (count + first few, relative to ``root``) what the scanned folders hold
    besides their images: images in subfolders, dangling symlinks, other files. Returns it (None if
    there is nothing to say)."""

    def listed(paths: list[Path], what: str) -> str | None:
        return f"{len(paths)} {what} ({_first_few(paths, root, shown)})" if paths else None

    parts = [listed([p for s in scans for p in s.nested], "image(s) in subfolders, not used"),
             listed([p for s in scans for p in s.dangling], "dangling symlink(s), their targets missing"),
             listed([p for s in scans for p in s.other_files], "non-image file(s), skipped")]
    parts = [p for p in parts if p]
    if not parts:
        return None
    message = f"{root}: " + "; ".join(parts)
    log.warning("%s", message)
    return message


def _first_few(paths: list[Path], root: Path, shown: int) -> str:
    return ", ".join(_relative(p, root) for p in paths[:shown]) + (", ..." if len(paths) > shown else "")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
