"""``kagglekit predict RUN_DIR``: the run's submission recomputed from its saved models (``--data``), or
the run's predictions for any images (``--images``): a classifier's classes (or a multi-label run's
labels) and probabilities as CSV or JSON; a segmenter's masks as palette PNGs in the ``--out`` folder, with a table of pixel shares (and,
for a multi-label run, each image's labels) beside them."""

from __future__ import annotations

from pathlib import Path

from kagglekit.commands.options import data_folder, image_paths, run_folder, weights_folder
from kagglekit.core.errors import ConfigError
from kagglekit.core.manifest import refuse_overlap
from kagglekit.pipelines.rebuild import predict_run
from kagglekit.usecases.predict import image_files, refuse_existing_file, write_predictions


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
        print(write_predictions(args.run_dir, image_files(args.images), args.out, args.format, args.force,
                                args.weights_dir))
        return 0
    refuse_existing_file(args.out, args.force)
    if args.format:
        raise ConfigError("--format applies to --images predictions; a submission is always CSV")
    path = predict_run(args.run_dir, args.data, args.out, args.weights_dir)
    print(f"submission: {path}")
    return 0
