"""Plots saved as PNG files people can open: learning curves, confusion matrices, the worst mistakes,
reliability (calibration), masks over images, CV against the leaderboard, a comparison's heatmap."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def learning_curves(histories: list[dict[str, list[float]]], path: Path, title: str) -> Path:
    """Train/valid loss and accuracy per epoch, one line per fold."""
    metrics = [m for m in ("loss", "accuracy") if any(m in h for h in histories)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for fold, history in enumerate(histories):
            color = f"C{fold}"
            if metric in history:
                ax.plot(history[metric], color=color, alpha=0.5, label=f"fold {fold} train")
            if f"val_{metric}" in history:
                ax.plot(history[f"val_{metric}"], color=color, label=f"fold {fold} valid")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], path: Path, title: str) -> Path:
    """Confusion matrix of out-of-fold predictions, each row as shares of its true class (empty cells
    left blank), with each class's image count beside its name."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(classes)
    size = max(5.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    shown = ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=range(n), display_labels=classes, normalize="true", values_format=".0%",
        cmap="Blues", colorbar=False, xticks_rotation=60, ax=ax, im_kw={"vmin": 0, "vmax": 1},
        text_kw={"fontsize": 7})
    for text, share in zip(shown.text_.ravel(), shown.confusion_matrix.ravel()):
        text.set_visible(share > 0)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor", fontsize=8)
    support = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=n)
    ax.set_yticks(range(n), [f"{name} ({count})" for name, count in zip(classes, support)], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (images)")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(images: list[np.ndarray], captions: list[str], path: Path, title: str, columns: int = 4) -> Path:
    """Images in a grid, each with a caption of a few lines under it (e.g. truth, prediction, confidence)."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.6 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, image, caption in zip(axes.ravel(), images, captions):
        ax.imshow(image)
        ax.set_title(caption, fontsize=8, loc="left")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def heatmap_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An (H, W, 3) uint8 image with an (H, W) map in [0, 1] laid over it in the jet colours (red = high)."""
    colours = plt.get_cmap("jet")(np.clip(heat, 0, 1))[..., :3]
    return ((1 - alpha) * image.astype(np.float32) / 255.0 + alpha * colours).clip(0, 1)


def robustness_curve(table, metric: str, path: Path, title: str) -> Path:
    """A score against the attack's eps, one line per method (``table``: method, eps, <metric>)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, part in table.groupby("method", sort=False):
        ax.plot(part["eps"], part[metric], "o-", label=method.upper())
    ax.set_xlabel("eps (largest change of any pixel, on the 0-255 scale)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def reliability(correct: np.ndarray, confidence: np.ndarray, path: Path, title: str, bins: int = 10) -> Path:
    """Calibration: accuracy against confidence (the top class's probability) in equal-width bins, beside
    the perfectly calibrated diagonal, over a histogram of how many predictions each bin holds."""
    from sklearn.calibration import calibration_curve

    accuracy, mean_confidence = calibration_curve(correct.astype(int), confidence, n_bins=bins, strategy="uniform")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.plot(mean_confidence, accuracy, "o-", color="C0", label="this model (out of fold)")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.legend(loc="upper left")
    top.set_title(title)
    bottom.hist(confidence, bins=np.linspace(0, 1, bins + 1), color="C0")
    bottom.set_xlabel("confidence (probability of the predicted class)")
    bottom.set_ylabel("images")
    return _save(fig, path)


def mask_overlays(images: list[np.ndarray], truths: list[np.ndarray | None], predictions: list[np.ndarray],
                  n_classes: int, path: Path, title: str, background: int | None = None,
                  row_labels: list[str] | None = None) -> Path:
    """One row per image: the image, the true mask over it, the predicted mask over it (``row_labels``
    written under each row's image).

    Classes get fixed colours (tab20); ``background`` and void / out-of-range values stay transparent.
    """
    colours = plt.get_cmap("tab20", 20)(np.arange(20))[:, :3]

    def overlay(image, labels):
        shown = image.astype(np.float32) / 255.0
        if labels is None:
            return shown
        painted = (labels < n_classes) & (labels != (-1 if background is None else background))
        rgb = colours[labels.astype(np.int64) % 20]
        shown[painted] = 0.45 * shown[painted] + 0.55 * rgb[painted]
        return shown

    columns = ["image", "truth", "prediction"]
    fig, axes = plt.subplots(len(images), 3, figsize=(10, 2.8 * len(images)), squeeze=False)
    for row, (image, truth, predicted) in enumerate(zip(images, truths, predictions)):
        for col, shown in enumerate((image / 255.0, overlay(image, truth), overlay(image, predicted))):
            axes[row][col].imshow(shown)
            axes[row][col].set_axis_off()
            if row == 0:
                axes[row][col].set_title(columns[col])
        if row_labels:
            axes[row][0].annotate(row_labels[row], (0, -0.02), xycoords="axes fraction", va="top", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def cv_vs_leaderboard(history, path: Path, title: str) -> Path:
    """Public LB score against CV (± std) per submission, with the y = x line and each CV->LB gap."""
    scored = history.dropna(subset=["cv_mean", "public_score"])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if len(scored):
        cv, lb = scored["cv_mean"].to_numpy(float), scored["public_score"].to_numpy(float)
        ax.errorbar(cv, lb, xerr=scored["cv_std"].fillna(0).to_numpy(float), fmt="o", capsize=3)
        for x, y, run in zip(cv, lb, scored["run_id"]):
            ax.annotate(f"{str(run)[-12:]}  gap {y - x:+.4f}", (x, y), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        low, high = min(cv.min(), lb.min()), max(cv.max(), lb.max())
        pad = max(0.01, 0.1 * (high - low))
        ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=0.8, label="LB = CV")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no run has both a CV and a public score yet", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("CV score (mean ± std over folds)")
    ax.set_ylabel("public leaderboard score")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _save(fig, path)


def cv_text(mean: float, std: float, folds) -> str:
    """``mean ± std`` over the scored folds; ``mean (1 fold)`` where one fold was scored (no spread to show)."""
    return f"{mean:.4f} (1 fold)" if folds == 1 else f"{mean:.4f} ± {std:.4f}"


def score_heatmap(table, path: Path, title: str) -> Path:
    """CV mean by backbone (rows) and optimizer (columns), each cell annotated with mean ± std and s/epoch
    (``table``: backbone, optimizer, cv_mean, cv_std, folds, seconds_per_epoch); missing cells left blank."""
    scores = table.pivot(index="backbone", columns="optimizer", values="cv_mean").reindex(
        index=list(dict.fromkeys(table.backbone)), columns=list(dict.fromkeys(table.optimizer)))  # as asked
    rows, columns = list(scores.index), list(scores.columns)
    fig, ax = plt.subplots(figsize=(2.2 * len(columns) + 2.5, 1.1 * len(rows) + 1.6))
    values = scores.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label="CV mean")
    low, high = np.nanmin(values), np.nanmax(values)
    for _, cell in table.iterrows():
        i, j = rows.index(cell.backbone), columns.index(cell.optimizer)
        speed = "" if cell.seconds_per_epoch is None or cell.seconds_per_epoch != cell.seconds_per_epoch \
            else f"\n{cell.seconds_per_epoch:.1f} s/epoch"
        bright = high > low and (cell.cv_mean - low) / (high - low) > 0.6
        ax.text(j, i, cv_text(cell.cv_mean, cell.cv_std, cell.get("folds")) + speed, ha="center", va="center", fontsize=9,
                color="black" if bright else "white")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("optimizer")
    ax.set_ylabel("backbone")
    ax.set_title(title)
    return _save(fig, path)
