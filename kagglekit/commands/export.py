"""``kagglekit export RUN_DIR --format FORMAT... --out DIR``: the run as one self-contained model file.

Each export holds the preprocessing, the TTA views and the fold ensemble, and is checked against the
run's own predictor on real images (``--check-images``, default: a few of the run's test images): the
largest difference in any probability is printed and saved in ``DIR/export.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kagglekit.commands.options import integer, number
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json
from kagglekit.core.manifest import refuse_overlap

FORMAT_NAMES = ("keras", "savedmodel", "onnx", "tflite")


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a run's fold ensemble as one model (keras, savedmodel, onnx, tflite)")
    parser.add_argument("run_dir", type=Path, help="a run directory (submissions/<competition>/<run>)")
    parser.add_argument("--format", nargs="+", choices=FORMAT_NAMES, default=["keras"], dest="formats",
                        help="one or more formats (default: keras)")
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder to write the model(s) to")
    parser.add_argument("--check-images", type=Path, nargs="+", metavar="PATH",
                        help="images (files or folders) for the parity check (default: the run's test images)")
    parser.add_argument("--check-count", type=integer(1), default=8, help="how many images the parity check uses")
    # keras and savedmodel run the very same kernels (~1e-7); onnxruntime and LiteRT use their own, and
    # the run's float16 feature rounding turns their last-bit differences into ~1e-4
    parser.add_argument("--tolerance", type=number(0), default=1e-3,
                        help="largest allowed difference from the run's own probabilities (default: 0.001)")
    parser.add_argument("--weights-dir", help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.commands.predict import image_files
    from kagglekit.data.loaders import image_batches
    from kagglekit.serving.export import FORMATS, ensemble_model, export_model, parity
    from kagglekit.serving.predictor import RunPredictor

    refuse_overlap(args.out, {"the run directory": args.run_dir})
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ConfigError(f"--out {args.out} exists and is not an empty folder; pass a new or empty folder")
    predictor = RunPredictor(args.run_dir, args.weights_dir)
    paths = image_files(args.check_images) if args.check_images else run_test_images(predictor)
    batch = next(image_batches(paths[:args.check_count], predictor.image_size, args.check_count))
    model = ensemble_model(predictor)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"run": str(args.run_dir), "classes": predictor.classes,
              "input": {"shape": [None, predictor.image_size, predictor.image_size, 3], "dtype": "float32",
                        "values": "RGB in [0, 255]"},
              "parity_images": [str(p) for p in paths[:args.check_count]], "exports": {}}
    failed = []
    for fmt in args.formats:
        path = export_model(model, fmt, args.out)
        difference = parity(predictor, path, fmt, batch)
        report["exports"][fmt] = {"path": FORMATS[fmt], "max_abs_difference": difference}
        print(f"{fmt}: {path} (max abs difference from the run: {difference:.2e})")
        if difference > args.tolerance:
            failed.append(f"{fmt} ({difference:.2e})")
    atomic_write_json(args.out / "export.json", report)
    if failed:  # the answer is "no" (exit 1), as for an invalid submission
        print(f"kagglekit: exports differ from the run by more than --tolerance {args.tolerance:g}: "
              f"{', '.join(failed)}; do not ship them", file=sys.stderr)
        return 1
    return 0


def run_test_images(predictor) -> list[Path]:
    data = Path(predictor.config.data)
    if not data.is_dir():
        raise ConfigError(f"the run's data folder {data} is gone; pass --check-images with a few images")
    return predictor.competition.resolve(data).load_test(data).paths
