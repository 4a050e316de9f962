"""A run's predictions for any images: a classifier's classes (or labels) and probabilities as a table, a
segmenter's masks as palette PNGs with a table of pixel shares beside them."""

from __future__ import annotations

import json
from pathlib import Path

from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_bytes, atomic_write_text
from kagglekit.core.manifest import refuse_used_folder
from kagglekit.data.images import scan_folder


def refuse_existing_file(out: Path, force: bool) -> None:
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass the path of the file to write")
    if out.exists() and not force:
        raise ConfigError(f"--out {out} already exists; pass --force to overwrite it, or another path")


def predict_images(args) -> int:
    from kagglekit.pipelines.rebuild import run_competition
    from kagglekit.serving.predictor import load_predictor

    paths = image_files(args.images)
    masks = run_competition(args.run_dir).task in ("segmentation", "multilabel-segmentation")
    if masks and not (args.force and args.out.is_dir()):
        refuse_used_folder(args.out, "a segmenter's masks go into a new folder (or pass --force to write into an "
                                     "existing one)")
    elif not masks:
        refuse_existing_file(args.out, args.force)
    predictor = load_predictor(args.run_dir, args.weights_dir)
    if masks:
        return write_masks(predictor, paths, args)
    proba = predictor.predict_files(paths)
    rows = [as_row(predictor.answer(str(path), p)) for path, p in zip(paths, proba)]
    write_table(args.out, args.format, rows, lambda r: {
        "image": r["image"], **({"class": r["class"]} if "class" in r else {"labels": " ".join(r["labels"])}),
        **r["probabilities"]})
    print(f"predictions for {len(rows)} image(s): {args.out}")
    return 0


def write_masks(predictor, paths: list[Path], args) -> int:
    """A segmenter's predictions: ``OUT/masks/<name>.png`` (palette PNG, pixel = index into the mask
    classes, at the image's own size) and ``OUT/predictions.csv|json``."""
    from kagglekit.data.masks import label_png
    from kagglekit.pipelines.inputs import require_readable

    out = args.out
    require_readable(paths, "image(s)")
    predictions = (p for part in predictor.file_chunks(paths) for p in part)  # each mask written as it comes
    rows = []
    for path, name, prediction in zip(paths, mask_names(paths), predictions):
        atomic_write_bytes(out / "masks" / name, label_png(prediction.mask))
        rows.append({**as_row(predictor.describe(str(path), prediction)), "mask": f"masks/{name}"})
    table = out / f"predictions.{args.format or 'csv'}"
    write_table(table, args.format, rows, lambda r: {
        "image": r["image"], "mask": r["mask"], "height": r["height"], "width": r["width"],
        **({"labels": " ".join(r["labels"])} if "labels" in r else {}),
        **{f"share_{c}": v for c, v in r["pixel_share"].items()},
        **{f"p_{c}": v for c, v in r.get("probabilities", {}).items()}})
    atomic_write_text(out / "mask_classes.json", json.dumps(dict(enumerate(predictor.mask_classes)), indent=1) + "\n")
    print(f"masks for {len(rows)} image(s): {out / 'masks'} (pixel value = class index, {out / 'mask_classes.json'}); "
          f"table: {table}")
    return 0


def as_row(answer: dict) -> dict:
    """A predictor's answer for a file, keyed ``image`` (the path given) as this command's tables are."""
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
