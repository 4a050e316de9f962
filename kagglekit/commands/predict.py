"""``kagglekit predict RUN_DIR``: the run's submission recomputed from its saved models (``--data``), or
the run's predictions for any images (``--images``: classes and probabilities as CSV or JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_text
from kagglekit.core.manifest import refuse_overlap
from kagglekit.data.images import scan_folder
from kagglekit.pipelines.rebuild import predict_run


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="rebuild a run's submission, or predict any images, with its saved models")
    parser.add_argument("run_dir", type=Path, help="a run directory (submissions/<competition>/<run>)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="competition folder with the test images (writes the submission)")
    source.add_argument("--images", type=Path, nargs="+", metavar="PATH",
                        help="image files or folders of images to classify (writes classes and probabilities)")
    parser.add_argument("--out", type=Path, required=True,
                        help="where to write the submission CSV, or the --images predictions "
                             "(outside --data and the run directory)")
    parser.add_argument("--format", choices=("csv", "json"), help="--images output format (default: csv)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--weights-dir", help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.set_defaults(func=main)


def main(args) -> int:
    # the data folder and the run directory are inputs: a submission written there could replace the
    # sample submission, the run's own submission.csv or a saved model
    inputs = {"the run directory": args.run_dir}
    if args.data is not None:
        inputs["the data folder"] = args.data
    refuse_overlap(args.out, inputs)
    if args.out.is_dir():
        raise ConfigError(f"--out {args.out} is a folder; pass the path of the file to write")
    if args.out.exists() and not args.force:
        raise ConfigError(f"--out {args.out} already exists; pass --force to overwrite it, or another path")
    if args.images:
        return predict_images(args)
    if args.format:
        raise ConfigError("--format applies to --images predictions; a submission is always CSV")
    path = predict_run(args.run_dir, args.data, args.out, args.weights_dir)
    print(f"submission: {path}")
    return 0


def predict_images(args) -> int:
    from kagglekit.serving.predictor import RunPredictor

    paths = image_files(args.images)
    predictor = RunPredictor(args.run_dir, args.weights_dir)
    proba = predictor.predict_files(paths)
    rows = [{"image": str(path), "class": predictor.classes[int(p.argmax())],
             "probabilities": dict(zip(predictor.classes, map(float, p)))} for path, p in zip(paths, proba)]
    if (args.format or "csv") == "json":
        atomic_write_text(args.out, json.dumps(rows, indent=1) + "\n")
    else:
        import pandas as pd

        frame = pd.DataFrame([{"image": r["image"], "class": r["class"], **r["probabilities"]} for r in rows])
        atomic_write_text(args.out, frame.to_csv(index=False, float_format="%.6f"))
    print(f"predictions for {len(rows)} image(s): {args.out}")
    return 0


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
