"""The report half of a notebook: markdown that explains a run, from the files its run directory holds.

Everything is read at generation time (the notebook on Kaggle sees only its inputs, not the score
ledger), and rendered generically: a section shows whatever the run wrote, so any pipeline's run
directory (classification, segmentation, ...) reads well.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from kagglekit.competitions.contract import Competition
from kagglekit.runs.layout import RUN_FILES
from kagglekit.submission.writer import read_csv_strings

KAGGLE_COMPETITION_URL = "https://www.kaggle.com/competitions/{slug}"
#: Ledger columns shown in the history table, in this order (others are left out for width).
LEDGER_COLUMNS = ("run_id", "backbones", "cv_mean", "cv_std", "submitted_at", "status", "public_score",
                  "private_score", "message")
MAX_ROWS = 30
MAX_VALUE = 60  # characters of a submission value shown in the format example


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a markdown table, floats to 4 decimals; every cell stays one literal line of text."""
    def cell(value) -> str:
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    # disable_numparse: tabulate would otherwise turn number-like text (ids such as "007") into numbers
    return frame.map(cell).to_markdown(index=False, disable_numparse=True)


def competition_section(competition: Competition, run_dir: Path) -> str:
    submission = read_csv_strings(run_dir / RUN_FILES.submission)
    shown = submission.head(3).map(lambda v: v if len(v) <= MAX_VALUE else v[:MAX_VALUE] + "...")  # e.g. long RLE masks
    head = shown.to_csv(index=False, lineterminator="\n")
    url = KAGGLE_COMPETITION_URL.format(slug=competition.slug)
    return (
        f"## The competition\n\n"
        f"**[{competition.title}]({url})** (`{competition.slug}`, kagglekit adapter `{competition.name}`): "
        f"a `{competition.task}` task scored by **{competition.metric}**.\n\n"
        f"A submission is a CSV with one row per test image ({len(submission)} here), keyed by "
        f"`{competition.id_column}` in the order of `{competition.sample_submission}`, with columns "
        f"{', '.join(f'`{c}`' for c in submission.columns)}:\n\n```\n{head}...\n```"
    )


def data_section(run_dir: Path) -> str:
    report = _read_json(run_dir / RUN_FILES.data_report)
    bullets, tables = [], []
    for key, value in report.items():
        label = key.replace("_", " ")
        if isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()):
            column = "count" if "count" in key else "value"
            tables.append(f"**{label}**\n\n" + markdown_table(pd.DataFrame(value.items(), columns=["", column])))
        elif isinstance(value, (dict, list)):
            listed = ", ".join(f"`{v}`" for v in list(value)[:5]) + (" ..." if len(value) > 5 else "")
            bullets.append(f"- {label}: {len(value)}" + (f" ({listed})" if value else ""))
        else:
            bullets.append(f"- {label}: {value}")
    return "## The data\n\nWhat the run read (`data_report.json`):\n\n" + "\n".join(bullets) + "\n\n" + "\n\n".join(tables)


def design_section(run_dir: Path) -> str:
    text = (run_dir / RUN_FILES.config).read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    learner = (config.get("train") or {}).get("learner")
    specific = [
        ("finetune.epochs", "fine-tuning epochs (a fixed budget: nothing chosen on the scored fold)"),
        ("finetune.head_epochs", "of which the new head alone"),
        ("finetune.top_epochs", "then the blocks above the cut point (the rest: everything above the stem)"),
        ("finetune.optimizer", "optimizer (a fresh one per stage)"),
        ("finetune.lr", "peak learning rate (warm-up and cosine per stage)"),
        ("finetune.scored_folds", "folds trained and scored"),
        ("finetune.refit", "a final network trained on every labelled image"),
    ] if learner == "finetune" else [
        ("train.multiscale", "multi-scale features (several stages of each backbone, pooled)"),
        ("train.views", "training views"),
        ("train.head_epochs", "head epochs (at most; early stopping on an inner split of the training fold)"),
        ("train.top_blocks", "fine-tune the top blocks of the first backbone"),
    ]
    choices = [
        ("backbones", "pretrained ImageNet backbone(s)"),
        ("image_size", "input size (pixels)"),
        ("train.learner", "learner (finetune: the whole network on images; head: on cached features)"),
        *specific,
        ("folds", "cross-validation folds"),
        ("tta", "test-time augmentation views"),
        ("seed", "random seed"),
    ]
    bullets = []
    for key, label in choices:
        value = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            bullets.append(f"- {label}: {_format(value)}")
    return (
        f"## Design choices\n\nThe run's configuration (`{RUN_FILES.config}`, a kagglekit `RunConfig`); "
        "the notebook predicts with exactly this.\n\n" + "\n".join(bullets)
        + f"\n\n<details><summary>full {RUN_FILES.config}</summary>\n\n```yaml\n{text}```\n\n</details>"
    )


def cv_section(run_dir: Path) -> str:
    metrics = _read_json(run_dir / RUN_FILES.metrics)
    metric = metrics["metric"]
    folds = markdown_table(pd.DataFrame({"fold": range(len(metrics["fold_scores"])),
                                         metric: [float(s) for s in metrics["fold_scores"]]}))
    shown = {"metric", "cv_mean", "cv_std", "fold_scores", "seconds", "timing", "stages", "baseline"}
    extra = [f"- {k.replace('_', ' ')}: {_format(v)}" for k, v in metrics.items() if k not in shown]
    return (
        f"## Cross-validation\n\n**CV {metric}: {metrics['cv_mean']:.4f} ± {metrics['cv_std']:.4f}** "
        f"over {len(metrics['fold_scores'])} folds (`{RUN_FILES.metrics}`).\n\n{_baseline(metrics)}{folds}\n\n"
        + "\n".join(extra) + _time_table(metrics)
    )


def _baseline(metrics: dict) -> str:
    """The best constant answer's CV on the same rows and folds, and whether the run beats it (and each kind
    of row's, where the rows are scored apart); nothing for a run made before runs recorded it."""
    constant = metrics.get("baseline")
    if not constant:
        return ""

    def line(c: dict, what: str) -> str:
        verdict = "beaten" if c["beaten"] else "**not beaten: the run is no better than a constant answer**"
        return f"- {what}: {c['score']:.4f} ({c['name']}), {verdict}"

    parts = [line(c, f"on its {part}") for part, c in constant.get("parts", {}).items()]
    return ("The best constant submission, scored the same way (`metrics.json`'s `baseline`):\n\n"
            + "\n".join([line(constant, f"CV {metrics['metric']}"), *parts]) + "\n\n")


def _time_table(metrics: dict) -> str:
    """What the run took: its device, speeds and peak memory (``timing``), and its stages' seconds."""
    rows = [("wall time", f"{metrics['seconds']:.0f} s")] if "seconds" in metrics else []
    rows += [(key.replace("_", " "), _format(value)) for key, value in metrics.get("timing", {}).items()]
    rows += [(f"stage: {name}", f"{seconds:.0f} s") for name, seconds in metrics.get("stages", {}).items()]
    if not rows:
        return ""
    return "\n\n### Time and resources\n\n" + markdown_table(pd.DataFrame(rows, columns=["", "value"]))


def plots_section(run_dir: Path) -> tuple[str, dict[str, bytes]]:
    """Markdown showing every plot of the run as a cell attachment, and the attachments."""
    plots = sorted((run_dir / RUN_FILES.plots).glob("*.png"))
    if not plots:
        return "## Plots\n\nThe run saved no plots.", {}
    images = "\n\n".join(f"**{p.stem.replace('_', ' ')}**\n\n![{p.stem}](attachment:{p.name})" for p in plots)
    return "## Learning curves and confusion matrix\n\n" + images, {p.name: p.read_bytes() for p in plots}


def ledger_section(competition: Competition, run_dir: Path, ledger_path: Path | None) -> str:
    """The competition's history from the score ledger, or a note that nothing is recorded yet."""
    title = "## Submission history\n\n"
    if ledger_path is None or not Path(ledger_path).is_file():
        return title + f"No submissions recorded yet for {competition.name} (no score ledger)."
    from kagglekit.runs.ledger import Ledger

    history = Ledger(ledger_path).history(competition.name, include_unlinked=True)
    if history.empty:
        return title + f"No submissions recorded yet for {competition.name}."
    shown = history[[c for c in LEDGER_COLUMNS if c in history.columns]].tail(MAX_ROWS).map(_cell)
    shown["run_id"] = shown["run_id"].where(shown["run_id"] != run_dir.name, f"**{run_dir.name}** (this run)")
    return title + f"Runs and submissions of {competition.name} in the score ledger, newest first:\n\n" + markdown_table(shown)


def _cell(value):
    if value is None or value != value:  # None or NaN
        return ""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`" if isinstance(value, dict) else str(value)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
