"""The images every pipeline may use, checked (decoded to their last byte; a JPEG at 1/8 scale) before any
model runs.

A training image, or its mask, that cannot be read is skipped and listed: the run goes on without it.
Test images that cannot be read stop the run (or ``kagglekit predict``) before anything is trained or
predicted, all named in one error: each needs a prediction, so none can be skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kagglekit.competitions.contract import ImageTable
from kagglekit.core.errors import DataError
from kagglekit.data.images import find_unreadable
from kagglekit.data.masks import read_label_map

log = logging.getLogger(__name__)
LOGGED = 20  # unreadable training files named in the log (all of them go into data_report.json)
MASK_SAMPLE = 64  # training label maps whose values are checked, spread evenly over the set


def usable_train(train: ImageTable) -> tuple[ImageTable, dict[str, str]]:
    """``train`` without the images that (or whose masks) cannot be read, and ``{image: reason}`` of
    those skipped. DataError if none is left."""
    bad = find_unreadable(train.paths)
    if train.masks is not None:
        bad_masks = find_unreadable(train.masks, read=read_label_map)
        bad.update({image: bad_masks[mask] for image, mask in zip(train.paths, train.masks)
                    if mask in bad_masks and image not in bad})
    if not bad:
        return train, {}
    reasons = list(bad.values())
    listed = "\n  ".join(reasons[:LOGGED]) + (f"\n  ... and {len(reasons) - LOGGED} more" if len(reasons) > LOGGED else "")
    keep = [i for i, path in enumerate(train.paths) if path not in bad]
    if not keep:
        raise DataError(f"none of the {len(train)} training image(s) can be read:\n  {listed}")
    log.warning("skipping %d unreadable training image(s) or mask(s):\n  %s", len(bad), listed)
    return train.subset(keep), {str(path): reason for path, reason in bad.items()}


def check_label_values(train: ImageTable, n_labels: int, void_label: int | None) -> None:
    """Warn where training label maps hold values that are no class (``0..n_labels - 1``) and not the void label:
    losses and metrics ignore such pixels, so objects saved as 255 in a map of classes 0 and 1 would teach
    background alone, silently. Checked on at most ``MASK_SAMPLE`` maps: seconds, whatever the set's size."""
    if not train.masks:
        return
    sample = np.unique(np.linspace(0, len(train.masks) - 1, min(MASK_SAMPLE, len(train.masks))).round().astype(int))
    counts, holding = np.zeros(256, np.int64), []  # the sample's pixels per value; the maps with stray values
    for i in sample:
        found = np.bincount(read_label_map(train.masks[i]).ravel(), minlength=256)
        counts += found
        if any(found[value] for value in range(n_labels, 256) if value != void_label):
            holding.append(train.masks[i])
    if not holding:
        return
    stray = [value for value in range(n_labels, 256) if counts[value] and value != void_label]
    unseen = [str(value) for value in range(n_labels) if not counts[value]]
    log.warning("%d of %d training label maps read hold values that are no class (0..%d)%s: %s, %.3g%% of their "
                "pixels (e.g. %s), ignored in training and scoring%s; if they are classes, remap the masks or set the "
                "competition's classes (or void_label)", len(holding), len(sample), n_labels - 1,
                "" if void_label is None else f" and not void ({void_label})", ", ".join(map(str, stray[:8])),
                100 * counts[stray].sum() / counts.sum(), holding[0],
                f"; classes in none of them: {', '.join(unseen)}" if unseen else "")


def checked_test(test: ImageTable) -> ImageTable:
    """``test`` itself if every image decodes; else one DataError naming every unreadable one."""
    require_readable(test.paths, "test image(s)")
    return test


def require_readable(paths: list[Path], what: str) -> None:
    """DataError naming every one of ``paths`` that does not decode: each needs a prediction."""
    bad = find_unreadable(paths)
    if bad:
        listed = "\n  ".join(bad.values())
        raise DataError(f"{len(bad)} {what} cannot be read, and each needs a prediction "
                        f"(replace or repair them, then run again):\n  {listed}")
