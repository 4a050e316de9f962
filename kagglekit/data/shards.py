"""TFRecord shards of a competition's images: encoded once, in parallel, then streamed by every epoch.

Decoding every image into one array in RAM grows with the competition (3,324 seedlings images at 224 px
peaked at 9.1 GiB; 40,000 photos at 384 px do not fit a 24 GB machine). Shards keep each image encoded:
the original file's bytes where TensorFlow decodes them exactly as ``read_rgb`` does (an RGB or grayscale
JPEG or PNG no longer than ``stream.max_side``), else the decoded RGB re-encoded (JPEG when shrunk to
``max_side``, lossless PNG otherwise), with its label map (grayscale PNG, same size) and target row.
TFRecord is what Kaggle's TPU notebooks read, so a shard folder can be uploaded as a dataset as it is.

Shards live in the cache (``shards/<what>-<n>-<key>``), keyed by the files (path, size, mtime), the
targets and the encoding options: folds, runs and presets over the same files share them. Each shard is
written under a temporary name and renamed; the manifest, written last, records each shard's size and
modification time. Reuse trusts a shard whose size and time still match it (a stat, not a read of 40,000
images' bytes); any other shard (changed since, or of a killed build with no manifest yet) has its records
counted and CRC-checked: a damaged one is rebuilt with a warning, a killed build resumes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from kagglekit.core.config import StreamConfig
from kagglekit.core.fileio import atomic_write_json
from kagglekit.core.paths import shards_cache_dir
from kagglekit.core.progress import progress
from kagglekit.data.images import check_pixels, decoding, read_rgb_array, to_rgb
from kagglekit.data.masks import read_label_map, resize_labels

log = logging.getLogger(__name__)

SHARD_FORMAT = 2  # bump when what a record holds, or how an image is encoded, changes
MANIFEST = "manifest.json"
#: Originals kept as they are: TensorFlow decodes these modes to the pixels ``read_rgb`` gives.
KEPT = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "L")}


@dataclass(frozen=True)
class Stored:
    """One image as a shard holds it: encoded bytes, their format (``jpeg`` or ``png``) and size."""

    data: bytes
    format: str
    height: int
    width: int


def stored_image(path: str | Path, cfg: StreamConfig) -> Stored:
    """``path`` as a shard stores it: its own bytes when TensorFlow decodes them as ``read_rgb`` does and its
    longer side is at most ``cfg.max_side``, else re-encoded from PIL's decode. Fully decoded either way (by
    TensorFlow where the bytes are kept, else by PIL), so a truncated or corrupt file is an UnreadableImage
    naming it here, and a file PIL reads but TensorFlow cannot is re-encoded: never an op error mid-epoch."""
    path = Path(path)
    with decoding(path, "image"):
        if path.suffix.lower() == ".npy":
            return encode_rgb(read_rgb_array(path), cfg)
        raw = path.read_bytes()
        with Image.open(io.BytesIO(raw)) as image:
            check_pixels(path, image.width, image.height)
            if (image.mode in KEPT.get(image.format, ()) and "transparency" not in image.info  # from the header
                    and max(image.size) <= cfg.max_side and _tensorflow_decodes(raw, image.height, image.width)):
                return Stored(raw, image.format.lower(), image.height, image.width)
            image.load()  # a file TensorFlow could not decode fails here, named, if PIL cannot either
            rgb = to_rgb(image)
        return encode_rgb(rgb, cfg)


def _tensorflow_decodes(data: bytes, height: int, width: int) -> bool:
    """Whether TensorFlow decodes ``data`` to an RGB image of that size (libpng and libjpeg refuse some
    files PIL reads)."""
    import tensorflow as tf

    try:
        shape = tf.io.decode_image(data, channels=3, expand_animations=False).shape
    except tf.errors.OpError:
        return False
    return tuple(shape) == (height, width, 3)


def encode_rgb(rgb: np.ndarray, cfg: StreamConfig) -> Stored:
    """(H, W, 3) uint8 as stored bytes: shrunk to ``max_side`` (antialiased) and JPEG-encoded if larger,
    else lossless PNG."""
    height, width = rgb.shape[:2]
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if max(height, width) > cfg.max_side:
        scale = cfg.max_side / max(height, width)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image.resize((width, height), Image.BILINEAR).save(buffer, format="JPEG", quality=cfg.jpeg_quality)
        return Stored(buffer.getvalue(), "jpeg", height, width)
    image.save(buffer, format="PNG", compress_level=3)
    return Stored(buffer.getvalue(), "png", height, width)


def stored_mask(path: Path, height: int, width: int) -> bytes:
    """A label map as a grayscale PNG at its stored image's size (nearest: no invented classes). Not a
    palette PNG: TensorFlow would decode its palette colours instead of the class indices."""
    labels = resize_labels(read_label_map(path), (height, width))
    buffer = io.BytesIO()
    Image.fromarray(labels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


@dataclass(frozen=True)
class ImageShards:
    """A built shard set: record ``index`` ``i`` holds image ``i`` of the list it was built from; ``order``
    lists the indices as the shards store them (each shard a fixed random sample: ``placement``)."""

    folder: Path
    files: tuple[Path, ...]
    count: int
    target_width: int  # 0: no targets stored
    masks: bool
    order: np.ndarray = field(compare=False, repr=False)

    def features(self) -> dict:
        """What ``tf.io.parse_single_example`` reads from a record."""
        import tensorflow as tf

        spec = {"id": tf.io.FixedLenFeature([], tf.string), "index": tf.io.FixedLenFeature([], tf.int64),
                "image": tf.io.FixedLenFeature([], tf.string), "format": tf.io.FixedLenFeature([], tf.string),
                "height": tf.io.FixedLenFeature([], tf.int64), "width": tf.io.FixedLenFeature([], tf.int64)}
        if self.target_width:
            spec["target"] = tf.io.FixedLenFeature([self.target_width], tf.float32)
        if self.masks:
            spec["mask"] = tf.io.FixedLenFeature([], tf.string)
        return spec


def shard_key(paths: list[Path], cfg: StreamConfig, ids: list[str], targets: np.ndarray | None,
              masks: list[Path] | None) -> str:
    """What the shards' bytes depend on: each file's path, size and modification time (its mask's too),
    the ids, the targets and the encoding options."""

    def stat(path: Path) -> list:
        info = Path(path).stat()
        return [str(path), info.st_size, info.st_mtime_ns]

    digest = hashlib.sha256(json.dumps([SHARD_FORMAT, cfg.max_side, cfg.jpeg_quality, cfg.images_per_shard, ids,
                                        [stat(p) for p in paths], [stat(m) for m in masks or []]]).encode())
    if targets is not None:
        digest.update(np.ascontiguousarray(targets, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def build_shards(paths: list[Path], cfg: StreamConfig, ids: list[str] | None = None,
                 targets: np.ndarray | None = None, masks: list[Path] | None = None, what: str = "images",
                 workers: int | None = None, root: Path | None = None) -> ImageShards:
    """The shards of ``paths`` (with their ``targets`` rows and label ``masks``), from the cache or built
    now, ``workers`` images at a time; UnreadableImage naming the first file that cannot be decoded."""
    paths = [Path(p) for p in paths]
    ids = list(ids) if ids is not None else [p.name for p in paths]
    if targets is not None:
        targets = np.asarray(targets, dtype=np.float32).reshape(len(paths), -1)
    key = shard_key(paths, cfg, ids, targets, masks)
    folder = (root or shards_cache_dir()) / f"{what}-{len(paths)}-{key}"
    chunks = placement(len(paths), cfg.images_per_shard)
    names = [f"{what}-{i:05d}-of-{len(chunks):05d}.tfrecord" for i in range(len(chunks))]
    shards = ImageShards(folder, tuple(folder / n for n in names), len(paths),
                         0 if targets is None else targets.shape[1], masks is not None,
                         np.concatenate(chunks) if chunks else np.zeros(0, np.int64))
    recorded = _manifest_stats(folder, names)
    todo = [i for i, chunk in enumerate(chunks) if not _intact(shards.files[i], len(chunk), recorded.get(names[i]))]
    if not todo and recorded:
        return shards
    folder.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool, \
            progress(sum(len(chunks[i]) for i in todo), f"shards {what} ({len(paths)} images)") as bar:
        for i in todo:
            def record(index: int) -> bytes:
                serialized = _record(index, paths, ids, targets, masks, cfg)
                bar.update(1)
                return serialized

            _write_shard(shards.files[i], pool.map(record, chunks[i]))
    atomic_write_json(folder / MANIFEST, {"format": SHARD_FORMAT, "count": len(paths), "shards": [
        {"file": n, "records": len(c), **dict(zip(("bytes", "mtime_ns"), _stat(folder / n)))}
        for n, c in zip(names, chunks)]})
    return shards


def _stat(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def placement(n: int, per: int) -> list[np.ndarray]:
    """The images (indices) each shard holds, in its storage order: a fixed random sample of ``per``, itself in
    random order, so that any run of consecutive records mixes every class. A class-folder competition lists its
    images class by class: shards of consecutive images would each hold a class or two, and shards holding sorted
    samples made every window a training epoch shuffles a few classes at a time (a seedlings epoch went through
    the species in order, and its networks lost 0.02-0.04 of held-out accuracy)."""
    scattered = np.random.default_rng(0).permutation(n)
    return [scattered[start:start + per] for start in range(0, n, per)]


def _record(index: int, paths: list[Path], ids: list[str], targets: np.ndarray | None,
            masks: list[Path] | None, cfg: StreamConfig) -> bytes:
    """One image's serialized ``tf.train.Example``."""
    import tensorflow as tf

    stored = stored_image(paths[index], cfg)

    def raw(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def whole(value: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {"id": raw(ids[index].encode("utf-8")), "index": whole(index), "image": raw(stored.data),
               "format": raw(stored.format.encode()), "height": whole(stored.height), "width": whole(stored.width)}
    if targets is not None:
        feature["target"] = tf.train.Feature(float_list=tf.train.FloatList(value=targets[index].tolist()))
    if masks is not None:
        feature["mask"] = raw(stored_mask(masks[index], stored.height, stored.width))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_shard(path: Path, records) -> None:
    """Write under a temporary name, then rename: a killed build never leaves half a shard in place."""
    import tensorflow as tf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for serialized in records:
                writer.write(serialized)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _manifest_stats(folder: Path, names: list[str]) -> dict[str, tuple[int, int | None]]:
    """Each shard's (size in bytes, modification time in ns) as the manifest recorded them ({} if there is
    none yet: a first or killed build, whose finished shards are then checked record by record)."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
        stats = {s["file"]: (int(s["bytes"]), s.get("mtime_ns")) for s in manifest["shards"]}  # no time: checked
        if manifest["format"] != SHARD_FORMAT or sorted(stats) != sorted(names):
            raise ValueError(f"format {manifest['format']}, {len(stats)} shards; expected {len(names)}")
        return stats
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("shard manifest %s is unreadable (%s); checking every shard", path, exc)
        return {}


def _intact(path: Path, records: int, recorded: tuple[int, int | None] | None) -> bool:
    """Whether the shard at ``path`` is whole: as the manifest ``recorded`` it (same size and modification
    time: trusted without a read), else holding ``records`` whole records (each CRC-checked) and, where the
    manifest gives one, its size. A damaged shard is warned about (and then rebuilt)."""
    import tensorflow as tf

    if not path.exists():
        return False
    size, _ = stat = _stat(path)
    if stat == recorded:
        return True
    problem = None
    if recorded is not None and size != recorded[0]:
        problem = f"{size} bytes, the manifest says {recorded[0]}"
    else:
        try:
            found = int(tf.data.TFRecordDataset(str(path)).reduce(np.int64(0), lambda n, _: n + 1))
            if found != records:
                problem = f"{found} records, expected {records}"
        except tf.errors.OpError as exc:
            problem = f"{type(exc).__name__}: {exc.message.splitlines()[0]}"
    if problem:
        log.warning("image shard %s is damaged (%s); rebuilding it", path, problem)
        return False
    return True
