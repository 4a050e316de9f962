"""``kagglekit explain RUN_DIR (--images PATH... | --worst N)``: Grad-CAM (or Grad-CAM++) overlays from a
run's classifier (fine-tuned networks, or frozen backbones under fitted heads; single- or multi-label):
where it looks for the predicted class (and, for the run's worst out-of-fold mistakes, for the true
class too), averaged over the models that predict. A multi-label run is explained per class: each
predicted label, or the one ``--class``. ``PAGE`` images to a picture: ``OUT.png``, then ``OUT-2.png``..."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from kagglekit.commands.options import image_paths, integer, run_folder, weights_folder
from kagglekit.core.errors import ConfigError
from kagglekit.runs.layout import RUN_FILES

#: Images per picture: more are drawn on further pages (``page_path``), so memory never grows with their number
PAGE = 16


def register(subparsers) -> None:
    parser = subparsers.add_parser("explain", help="Grad-CAM overlays from a run's classifier")
    parser.add_argument("run_dir", type=run_folder,
                        help="a classification run (single- or multi-label, or PASCAL VOC's labels)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=image_paths, nargs="+", metavar="PATH", help="image files or folders")
    source.add_argument("--worst", type=integer(1), metavar="N",
                        help="a single-label run's N worst out-of-fold mistakes (mistakes.csv): predicted and true class")
    parser.add_argument("--class", dest="target", metavar="NAME",
                        help="explain this class (default: the predicted one; multi-label: each predicted label)")
    parser.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--weights-dir", type=weights_folder, help="folder with pretrained weight files (offline)")
    parser.set_defaults(func=main)


def main(args) -> int:
    import pandas as pd

    from kagglekit.usecases.predict import image_files
    from kagglekit.pipelines.differentiable import load_classifier

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: pass a .png file to write")
    classifier = load_classifier(args.run_dir, args.weights_dir)
    classes = classifier.classes
    if args.target is not None and args.target not in classes:
        raise ConfigError(f"--class {args.target!r} is not one of the run's classes: {', '.join(classes)}")
    truths = None
    if args.worst:
        mistakes = args.run_dir / RUN_FILES.mistakes
        if classifier.multilabel or not mistakes.is_file():
            raise ConfigError(f"{args.run_dir}: no {RUN_FILES.mistakes} (written by single-label runs since error "
                              "analysis); pass --images")
        table = pd.read_csv(mistakes, dtype=str).head(args.worst)
        paths, truths = [Path(p) for p in table["image"]], [classes.index(t) for t in table["true"]]
    else:
        paths = image_files(args.images)
    parts = classifier.cam_parts()
    pages = [page_path(args.out, k) for k in range(-(-len(paths) // PAGE))]
    for k, page in enumerate(pages):
        part = slice(k * PAGE, (k + 1) * PAGE)
        draw_page(args, classifier, parts, paths[part], None if truths is None else truths[part], page)
    more = f" (and {len(pages) - 1} more page(s): {pages[1].name} ...)" if len(pages) > 1 else ""
    print(f"{args.method} for {len(paths)} image(s): {args.out}{more}")
    return 0


def page_path(out: Path, k: int) -> Path:
    """The ``k``-th picture: ``--out`` itself, then ``<stem>-2.png``, ``<stem>-3.png``..."""
    return out if k == 0 else out.with_name(f"{out.stem}-{k + 1}{out.suffix}")


def draw_page(args, classifier, parts, paths: list[Path], truths: list[int] | None, out: Path) -> None:
    """One picture, a row per image of ``paths``: a page's pixels and maps are all this command holds."""
    from kagglekit.inspection.gradcam import averaged_maps
    from kagglekit.runs import plots

    classes = classifier.classes
    pixels = classifier.pixels(paths)
    proba = np.asarray(classifier.model().predict(pixels, verbose=0))
    predicted = classifier.labels(proba)
    # per image, the (what, class) pairs to explain
    if args.target is not None:
        wanted = [[("class", classes.index(args.target))] for _ in paths]
    elif classifier.multilabel:
        wanted = [[("label", int(c)) for c in np.flatnonzero(row)] for row in predicted]
    else:
        wanted = [[("predicted", int(c))] for c in predicted]
    if truths is not None:
        wanted = [pairs + [("true", t)] for pairs, t in zip(wanted, truths)]
    rows = [i for i, pairs in enumerate(wanted) for _ in pairs]
    which = np.array([c for pairs in wanted for _, c in pairs], dtype=np.int64)
    maps = averaged_maps(parts, pixels[rows], which, args.method == "gradcam++") if rows else None

    columns = 1 + max(len(pairs) for pairs in wanted)
    blank = np.ones_like(pixels[0]) * 255
    shown, captions, k = [], [], 0
    for i, path in enumerate(paths):
        names = [classes[c] for c in np.flatnonzero(predicted[i])] if classifier.multilabel else [classes[predicted[i]]]
        shown.append(pixels[i].astype(np.uint8))
        captions.append(f"{path.name}\n" + textwrap.fill(f"predicted: {', '.join(names) or 'nothing'}", 40))
        for what, c in wanted[i]:
            shown.append(plots.heatmap_overlay(pixels[i], maps[k]))
            captions.append(f"{args.method} for {what}:\n{classes[c]} ({proba[i, c]:.2f})")
            k += 1
        shown += [blank.astype(np.uint8)] * (columns - 1 - len(wanted[i]))
        captions += [""] * (columns - 1 - len(wanted[i]))
    models = sum(len(classifier.members[n]) for n in classifier.predicting)
    plots.image_grid(shown, captions, out, f"{args.run_dir.name}: {args.method} at {classifier.layer} "
                     f"(red: evidence for the class; {models} model(s) averaged)", columns=columns)
