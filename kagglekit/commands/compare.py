"""``kagglekit compare COMPETITION --backbones a,b --optimizers adam,sgd``: the backbone x optimizer matrix,
every cell an ordinary run, summed up in one table (CSV, Markdown) and a heatmap (``experiments.compare``)."""

from __future__ import annotations

import time
from pathlib import Path

from kagglekit.commands.options import add_config_options, config_options, number
from kagglekit.core.errors import ConfigError
from kagglekit.usecases.config import resolve_run


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="every backbone x optimizer as a run, then one table and heatmap")
    add_config_options(parser)
    parser.add_argument("--backbones", required=True, help="comma-separated backbone names (`kagglekit backbones`)")
    parser.add_argument("--optimizers", default="adamw", help="comma-separated optimizers: adamw, adam, sgd, rmsprop")
    parser.add_argument("--price-per-hour", type=number(0, include_low=True), default=1.0,
                        help="what one device-hour costs, for the cost column (default 1.0: cost = device-hours)")
    parser.add_argument("--out", type=Path,
                        help="the comparison's folder: new or empty, or a comparison to continue "
                             "(default: OUTPUT_DIR/COMPETITION/compare-TIME)")
    parser.set_defaults(func=main)


def names(text: str, option: str) -> list[str]:
    listed = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not listed:
        raise ConfigError(f"{option}: name at least one")
    return listed


def main(args) -> int:
    from kagglekit.experiments.compare import Comparison
    from kagglekit.models.backbones import get_backbone
    from kagglekit.models.optimizers import OPTIMIZERS

    backbones, optimizers = names(args.backbones, "--backbones"), names(args.optimizers, "--optimizers")
    for name in backbones:
        get_backbone(name)  # a typo fails now, not after the first cells have run
    for name in optimizers:
        OPTIMIZERS.get(name)
    competition, config = resolve_run(**config_options(args))
    base = config.to_dict()
    out = args.out or Path(config.output_dir) / competition.name / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    comparison = Comparison(out, base["competition"], competition.name, competition.task, base, backbones, optimizers,
                            args.price_per_hour)
    table = comparison.run(config.data, config.weights_dir)
    print((out / "comparison.md").read_text(encoding="utf-8"))
    print(f"comparison: {out}")
    failed = table[table.status != "done"]
    if len(failed):
        print(f"{len(failed)} of {len(table)} runs failed: {', '.join(failed.backbone + '--' + failed.optimizer)}; "
              f"their logs are in {out / 'cells'}; rerun the same command to retry them")
        return 1
    return 0
