"""``kagglekit backbones``: every registered backbone and where its ImageNet weights would come from."""

from __future__ import annotations

from kagglekit.commands.options import weights_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser("backbones", help="list backbones with their weight status")
    parser.add_argument("--weights-dir", type=weights_folder,
                        help="folder with pretrained weight files (offline / Kaggle notebooks)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from kagglekit.models.backbones import BACKBONES  # Keras: imported by this verb alone, not at every start-up

    rows = [(name, spec.source, str(spec.default_size), spec.weights_status(args.weights_dir))
            for name, spec in BACKBONES.items()]
    header = ("backbone", "weights from", "size", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0
