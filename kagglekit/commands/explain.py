"""``kagglekit explain RUN_DIR (--images PATH... | --worst N)``: Grad-CAM (or Grad-CAM++) overlays from a
fine-tuned run's saved networks: where each network looks for the predicted class (and, for the run's
worst out-of-fold mistakes, for the true class too), averaged over the run's fold networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.commands.options import integer
from kagglekit.core.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser("explain", help="Grad-CAM overlays from a fine-tuned run's networks")
    parser.add_argument("run_dir", type=Path, help="a run directory (train.learner: finetune)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, nargs="+", metavar="PATH", help="image files or folders")
    source.add_argument("--worst", type=integer(1), metavar="N",
                        help="the run's N worst out-of-fold mistakes (mistakes.csv): predicted and true class")
    parser.add_argument("--class", dest="target", metavar="NAME", help="explain this class (default: the predicted one)")
    parser.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--weights-dir", help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    import pandas as pd

    from kagglekit.commands.predict import image_files
    from kagglekit.data.streams import decode_images
    from kagglekit.inspection.gradcam import class_activation_maps
    from kagglekit.models.backbones import cam_layer
    from kagglekit.pipelines import finetuning
    from kagglekit.pipelines.rebuild import load_run_config, run_competition
    from kagglekit.runs import plots
    from kagglekit.serving.predictor import read_json

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: pass a .png file to write")
    config = load_run_config(args.run_dir, weights_dir=args.weights_dir)
    finetuning.require_networks(args.run_dir, config, run_competition(args.run_dir).task,
                                "explain reads the gradients of a fine-tuned network")
    classes: list[str] = read_json(args.run_dir / "classes.json", "classes")
    if args.target is not None and args.target not in classes:
        raise ConfigError(f"--class {args.target!r} is not one of the run's classes: {', '.join(classes)}")
    if args.worst:
        mistakes = pd.read_csv(args.run_dir / "mistakes.csv", dtype=str).head(args.worst) \
            if (args.run_dir / "mistakes.csv").is_file() else None
        if mistakes is None:
            raise ConfigError(f"{args.run_dir}: no mistakes.csv (a run from before error analysis); pass --images")
        paths, truths = [Path(p) for p in mistakes["image"]], [classes.index(t) for t in mistakes["true"]]
    else:
        paths, truths = image_files(args.images), None
    networks = finetuning.predictors(config, args.run_dir, len(classes))
    layer = cam_layer(config.backbones[0], networks[0].model)
    pixels = decode_images(paths, config.image_size, "explain").astype(np.float32)
    proba = np.mean([n.model.predict(pixels, verbose=0) for n in networks], axis=0)
    predicted = proba.argmax(1)
    targets = [("predicted", np.full(len(paths), classes.index(args.target)) if args.target else predicted)]
    if truths is not None:
        targets.append(("true", np.array(truths)))
    plus = args.method == "gradcam++"
    shown, captions = [], []
    maps = {name: np.mean([class_activation_maps(n.model, layer, pixels, which, plus) for n in networks], axis=0)
            for name, which in targets}
    for i, path in enumerate(paths):
        shown.append(pixels[i].astype(np.uint8))
        captions.append(f"{path.name}\npredicted: {classes[predicted[i]]} ({proba[i, predicted[i]]:.2f})")
        for name, which in targets:
            shown.append(plots.heatmap_overlay(pixels[i], maps[name][i]))
            captions.append(f"{args.method} for {name}:\n{classes[which[i]]} ({proba[i, which[i]]:.2f})")
    columns = 1 + len(targets)
    plots.image_grid(shown, captions, args.out, f"{args.run_dir.name}: {args.method} at {layer} "
                     f"(red: evidence for the class; {len(networks)} network(s) averaged)", columns=columns)
    print(f"{args.method} for {len(paths)} image(s): {args.out}")
    return 0
