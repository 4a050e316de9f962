"""A run's predictions for any images: a classifier's classes (or labels) and probabilities as a table, a
segmenter's masks as palette PNGs with a table of pixel shares beside them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_bytes, atomic_write_text
from kagglekit.core.manifest import refuse_used_folder
from kagglekit.data.images import scan_folder


def refuse_existing_file(out: Path, force: bool) -> None:
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass the path of the file to write")
    if out.exists() and not force:
        raise ConfigError(f"--out {out} already exists; pass --force to overwrite it, or another path")


def write_predictions(run_dir: Path, paths: list[Path], out: Path, fmt: str | None = None, force: bool = False,
                      weights_dir: str | None = None) -> str:
    """A run's predictions for image files written to ``out`` (a classifier's table; a new folder for a segmenter's
    masks and their table); the line that says what was written."""
    from kagglekit.pipelines.rebuild import run_competition
    from kagglekit.serving.predictor import load_predictor
    from kagglekit.tasks import TASKS

    masks = TASKS.get(run_competition(run_dir).task).masks
    if masks and not (force and out.is_dir()):
        refuse_used_folder(out, "a segmenter's masks go into a new folder (or pass --force to write into an "
                                "existing one)")
    elif not masks:
        refuse_existing_file(out, force)
    predictor = load_predictor(run_dir, weights_dir)
    if masks:
        return write_masks(predictor, paths, out, fmt)
    proba = predictor.predict_files(paths)
    rows = [as_row(predictor.answer(str(path), p)) for path, p in zip(paths, proba)]
    write_table(out, fmt, rows, label_columns)
    return f"predictions for {len(rows)} image(s): {out}"


def prediction_frame(predictor, images: Sequence[str | Path | np.ndarray]):
    """One row per image, in the columns ``write_predictions`` writes; a segmenter's rows hold the mask itself
    (an (H, W) array, pixel = index into ``predictor.mask_classes``) where the table names its PNG.

    ``images``: image files or folders of them, or decoded (H, W, 3) uint8 RGB arrays (a row's ``image`` is then
    its position)."""
    import pandas as pd

    arrays = [isinstance(image, np.ndarray) for image in images]
    if any(arrays) and not all(arrays):
        raise ConfigError("pass image files or decoded image arrays, not both")
    if all(arrays) and len(images):
        bad = [k for k, image in enumerate(images) if image.ndim != 3 or image.shape[-1] != 3]
        if bad:
            raise DataError(f"image array(s) {bad[:5]}: expected (height, width, 3) RGB, "
                            f"got shape {images[bad[0]].shape}")
        names, found = list(range(len(images))), predictor.predict_images([np.asarray(i, np.uint8) for i in images])
    else:
        paths = image_files([Path(image) for image in images])
        names, found = [str(path) for path in paths], predictor.predict_files(paths)
    if hasattr(predictor, "mask_classes"):
        rows = [{**as_row(predictor.describe(name, p)), "mask": p.mask} for name, p in zip(names, found)]
        return pd.DataFrame([mask_columns(row) for row in rows])
    return pd.DataFrame([label_columns(as_row(predictor.answer(name, p))) for name, p in zip(names, found)])


def label_columns(row: dict) -> dict:
    """A classifier's row as table columns: the image, its class (or labels), each class's probability."""
    named = {"class": row["class"]} if "class" in row else {"labels": " ".join(row["labels"])}
    return {"image": row["image"], **named, **row["probabilities"]}


def mask_columns(row: dict) -> dict:
    """A segmenter's row as table columns: the image, its mask, size, labels, each class's pixel share."""
    return {"image": row["image"], "mask": row["mask"], "height": row["height"], "width": row["width"],
            **({"labels": " ".join(row["labels"])} if "labels" in row else {}),
            **{f"share_{c}": v for c, v in row["pixel_share"].items()},
            **{f"p_{c}": v for c, v in row.get("probabilities", {}).items()}}


def write_masks(predictor, paths: list[Path], out: Path, fmt: str | None) -> str:
    """A segmenter's predictions: ``OUT/masks/<name>.png`` (palette PNG, pixel = index into the mask
    classes, at the image's own size) and ``OUT/predictions.csv|json``."""
    from kagglekit.data.masks import label_png
    from kagglekit.pipelines.inputs import require_readable

    require_readable(paths, "image(s)")
    predictions = (p for part in predictor.file_chunks(paths) for p in part)  # each mask written as it comes
    rows = []
    for path, name, prediction in zip(paths, mask_names(paths), predictions):
        atomic_write_bytes(out / "masks" / name, label_png(prediction.mask))
        rows.append({**as_row(predictor.describe(str(path), prediction)), "mask": f"masks/{name}"})
    table = out / f"predictions.{fmt or 'csv'}"
    write_table(table, fmt, rows, mask_columns)
    atomic_write_text(out / "mask_classes.json", json.dumps(dict(enumerate(predictor.mask_classes)), indent=1) + "\n")
    return (f"masks for {len(rows)} image(s): {out / 'masks'} (pixel value = class index, "
            f"{out / 'mask_classes.json'}); table: {table}")


def as_row(answer: dict) -> dict:
    """A predictor's answer for a file, keyed ``image`` (the path given) as the tables are."""
    return {"image": answer["file"], **{k: v for k, v in answer.items() if k != "file"}}


def mask_names(paths: list[Path]) -> list[str]:
    """``<stem>.png`` per image; a stem seen before gets ``-2``, ``-3``... so no mask replaces another."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        names.append(f"{path.stem}.png" if seen[path.stem] == 1 else f"{path.stem}-{seen[path.stem]}.png")
    return names


def write_table(out: Path, fmt: str | None, rows: list[dict], flat) -> None:
    """``rows`` as JSON (as they are), or as CSV with ``flat(row)`` as each line's columns."""
    if (fmt or "csv") == "json":
        atomic_write_text(out, json.dumps(rows, indent=1) + "\n")
        return
    import pandas as pd

    atomic_write_text(out, pd.DataFrame([flat(r) for r in rows]).to_csv(index=False, float_format="%.6f"))


def image_files(paths: list[Path]) -> list[Path]:
    """Files as given (one that cannot be read is named when predicting), and the images directly
    inside each folder, sorted; DataError for a folder without any."""
    files = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = scan_folder(path, look_inside=False).images
        if not found:
            raise DataError(f"{path}: no images directly in this folder")
        files += found
    return files
