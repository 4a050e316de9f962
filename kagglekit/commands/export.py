"""``kagglekit export RUN_DIR --format FORMAT... --out DIR``: the run as self-contained model files.

Each export holds the preprocessing, the TTA views and the fold ensemble (``serving.export``: one
model for a classifier or a segmenter, ``labels/`` and ``masks/`` for a multi-label + segmentation
run), and is checked against the run's own predictor on real images (``--check-images``, default: a
few of the run's test images): the largest difference in any probability is printed and saved in
``DIR/export.json``, with the input each model expects.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kagglekit.commands.options import image_paths, integer, number, run_folder, weights_folder
from kagglekit.core.errors import ConfigError
from kagglekit.core.fileio import atomic_write_json
from kagglekit.core.manifest import refuse_overlap, refuse_used_folder

FORMAT_NAMES = ("keras", "savedmodel", "onnx", "tflite")


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a run's fold ensemble as one model (keras, savedmodel, onnx, tflite)")
    parser.add_argument("run_dir", type=run_folder, help="a run directory (submissions/<competition>/<run>)")
    parser.add_argument("--format", nargs="+", choices=FORMAT_NAMES, default=["keras"], dest="formats",
                        help="one or more formats (default: keras)")
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder to write the model(s) to")
    parser.add_argument("--check-images", type=image_paths, nargs="+", metavar="PATH",
                        help="images (files or folders) for the parity check (default: the run's test images)")
    parser.add_argument("--check-count", type=integer(1), default=8, help="how many images the parity check uses")
    # keras and savedmodel run the very same kernels (~1e-7); onnxruntime and LiteRT use their own, and
    # the run's float16 feature rounding turns their last-bit differences into ~1e-4
    parser.add_argument("--tolerance", type=number(0), default=1e-3,
                        help="largest allowed difference from the run's own probabilities (default: 0.001)")
    parser.add_argument("--weights-dir", type=weights_folder, help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.usecases.predict import image_files
    from kagglekit.serving.export import export_model, exportables, litert_interpreter, parity
    from kagglekit.serving.predictor import load_predictor

    refuse_overlap(args.out, {"the run directory": args.run_dir})
    refuse_used_folder(args.out)
    if "tflite" in args.formats:
        litert_interpreter()  # without LiteRT, refused before anything is written
    predictor = load_predictor(args.run_dir, args.weights_dir)
    paths = (image_files(args.check_images) if args.check_images else run_test_images(predictor))[:args.check_count]
    parts = exportables(predictor)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"run": str(args.run_dir), "task": predictor.competition.task, "classes": predictor.classes,
              "parity_images": [str(p) for p in paths], "models": {}}
    if predictor.postprocess is not None:  # what turns a multi-label run's probabilities into labels
        report["postprocess"] = predictor.postprocess
    if hasattr(predictor, "mask_classes"):
        report["mask_classes"] = predictor.mask_classes
    failed = []
    for part in parts:
        folder = args.out / part.name if len(parts) > 1 else args.out
        folder.mkdir(exist_ok=True)
        batch = part.batch(paths)
        entry = report["models"][part.name] = {
            "input": {"shape": [None, *part.input_shape, 3], "dtype": "float32", "values": "RGB in [0, 255]"},
            "exports": {}}
        for fmt in args.formats:
            path = export_model(part.model, fmt, folder)
            difference = parity(part, path, fmt, batch)
            entry["exports"][fmt] = {"path": str(path.relative_to(args.out)), "max_abs_difference": difference}
            print(f"{part.name} {fmt}: {path} (max abs difference from the run: {difference:.2e})")
            if difference > args.tolerance:
                failed.append(f"{part.name} {fmt} ({difference:.2e})")
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
