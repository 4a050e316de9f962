"""``kagglekit attack RUN_DIR --method fgsm pgd --eps 0 1 2 4 8 --out DIR``: how far a run's models fall
under adversarial perturbations of their held-out images (``inspection.adversarial``): a table and a curve
of the score against eps, and example images (original, perturbed, the difference amplified). A run with
a classifier and a segmenter (PASCAL VOC) gets a report for each, in ``labels/`` and ``masks/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kagglekit.commands.options import integer, number, run_folder, weights_folder
from kagglekit.core.manifest import refuse_used_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser("attack", help="adversarial robustness (FGSM, PGD) of a run's model")
    parser.add_argument("run_dir", type=run_folder,
                        help="a classification (single- or multi-label) or segmentation run")
    parser.add_argument("--method", nargs="+", choices=("fgsm", "pgd"), default=["fgsm"], dest="methods")
    parser.add_argument("--eps", nargs="+", type=number(0, include_low=True), default=[0, 1, 2, 4, 8],
                        help="perturbation sizes on the 0-255 pixel scale (default: 0 1 2 4 8)")
    parser.add_argument("--targeted", action="store_true",
                        help="steer each image (pixel) towards its likeliest wrong class instead "
                             "(multi-label: flip each image's likeliest wrong label)")
    parser.add_argument("--steps", type=integer(1), default=10, help="PGD steps")
    parser.add_argument("--count", type=integer(1), default=64, help="held-out images to attack")
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder for the report")
    parser.add_argument("--weights-dir", type=weights_folder, help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.inspection.adversarial import attack_sets

    refuse_used_folder(args.out)
    sets = attack_sets(args.run_dir, args.count, args.weights_dir)
    eps = sorted(set(args.eps) | {0.0})
    for part, target in sets.items():
        report(args, target, eps, args.out / part if len(sets) > 1 else args.out,
               f"{args.run_dir.name}" + (f" ({part})" if len(sets) > 1 else ""))
    print(f"report: {args.out}")
    return 0


def report(args, target, eps: list[float], out: Path, title: str) -> None:
    """One attacked model's table, curve and examples under ``out``."""
    from kagglekit.core.fileio import atomic_write_text
    from kagglekit.inspection.adversarial import robustness
    from kagglekit.runs import plots

    table, originals, examples = robustness(target, args.methods, eps, args.targeted, args.steps)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "robustness.csv", table.to_csv(index=False, float_format="%.4f"))
    kind = "targeted" if args.targeted else "untargeted"
    what = "pixels" if target.dense else "images"
    plots.robustness_curve(table, target.metric, out / "robustness.png",
                           f"{title}: {kind} attacks on {len(target.ids)} held-out {what}")
    shown, captions = [], []
    for i, original in enumerate(originals):
        for method, perturbed in examples.items():
            difference = perturbed[i] - original
            amplified = 0.5 + difference / (2 * max(float(np.abs(difference).max()), 1e-6))
            shown += [original / 255.0, perturbed[i] / 255.0, amplified.clip(0, 1)]
            captions += [f"{target.ids[i]}\noriginal", f"{method.upper()}, eps {max(eps):g}",
                         "difference, amplified\n(grey = unchanged)"]
    plots.image_grid(shown, captions, out / "examples.png",
                     f"{title}: {kind} perturbations at eps {max(eps):g} (0-255 scale)", columns=3)
    print(f"{title}:")
    print(table.to_markdown(index=False, floatfmt=".4f"))
