"""``kagglekit predict RUN_DIR``: the run's submission recomputed from its saved models (``--data``), or
the run's predictions for any images (``--images``): a classifier's classes (or a multi-label run's
labels) and probabilities as CSV or JSON; a segmenter's masks as palette PNGs in the ``--out`` folder, with a table of pixel shares (and,
for a multi-label run, each image's labels) beside them."""

from __future__ import annotations

import json
from pathlib import Path

from kagglekit.commands.options import data_folder, image_paths, run_folder, weights_folder
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_bytes, atomic_write_text
from kagglekit.core.manifest import refuse_overlap, refuse_used_folder
from kagglekit.data.images import scan_folder
from kagglekit.pipelines.rebuild import predict_run


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="rebuild a run's submission, or predict any images, with its saved models")
    parser.add_argument("run_dir", type=run_folder, help="a run directory (submissions/<competition>/<run>)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=data_folder,
                        help="competition folder with the test images (writes the submission)")
    source.add_argument("--images", type=image_paths, nargs="+", metavar="PATH",
                        help="image files or folders of images to predict (writes classes and probabilities, "
                             "or masks)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write the submission CSV, or the --images predictions: a file for a "
                             "classifier, a new folder for a segmenter's masks (outside --data and the run directory)")
    parser.add_argument("--format", choices=("csv", "json"), help="--images table format (default: csv)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.set_defaults(func=main)


def main(args) -> int:
    # the data folder and the run directory are inputs: a submission written there could replace the
    # sample submission, the run's own submission.csv or a saved model
    inputs = {"the run directory": args.run_dir}
    if args.data is not None:
        inputs["the data folder"] = args.data
    refuse_overlap(args.out, inputs)
    if args.images:
        return predict_images(args)
    refuse_existing_file(args.out, args.force)
    if args.format:
        raise ConfigError("--format applies to --images predictions; a submission is always CSV")
    path = predict_run(args.run_dir, args.data, args.out, args.weights_dir)
    print(f"submission: {path}")
    return 0


def refuse_existing_file(out: Path, force: bool) -> None:
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass the path of the file to write")
    if out.exists() and not force:
        raise ConfigError(f"--out {out} already exists; pass --force to overwrite it, or another path")


def predict_images(args) -> int:
    from kagglekit.pipelines.rebuild import run_competition
    from kagglekit.serving.predictor import load_predictor
    from kagglekit.tasks import TASKS

    paths = image_files(args.images)
    masks = TASKS.get(run_competition(args.run_dir).task).masks
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
