"""The images every pipeline may use, checked (decoded to their last byte; a JPEG at 1/8 scale) before any
model runs.

A training image, or its mask, that cannot be read is skipped and listed: the run goes on without it.
Test images that cannot be read stop the run (or ``kagglekit predict``) before anything is trained or
predicted, all named in one error: each needs a prediction, so none can be skipped.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from kagglekit.competitions.contract import ImageTable
from kagglekit.core.errors import DataError
from kagglekit.data.images import find_unreadable
from kagglekit.data.masks import read_label_map

log = logging.getLogger(__name__)
LOGGED = 20  # unreadable training files named in the log (all of them go into data_report.json)


def usable_train(train: ImageTable, n_labels: int | None = None,
                 void_label: int | None = None) -> tuple[ImageTable, dict[str, str]]:
    """``train`` without the images that (or whose masks) cannot be read, and ``{image: reason}`` of
    those skipped. DataError if none is left. With ``n_labels``, the same read of the label maps counts their
    values and warns where some are no class (``LabelValues``)."""
    bad = find_unreadable(train.paths)
    if train.masks is not None:
        values = LabelValues(n_labels, void_label) if n_labels is not None else None
        bad_masks = find_unreadable(train.masks, read=values.read if values else read_label_map)
        if values:
            values.warn()
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


class LabelValues:
    """The pixels of each value over the label maps ``read`` (from several threads), and the maps holding values
    that are no class (``0..n_labels - 1``) and not the void label: losses and metrics ignore such pixels, so
    objects saved as 255 in maps of classes 0 and 1 would teach background alone, silently (``warn`` says so)."""

    def __init__(self, n_labels: int, void_label: int | None):
        self.n_labels, self.void_label = n_labels, void_label
        self.stray = np.arange(256) >= n_labels  # label maps hold 0..255 (``read_label_map``)
        if void_label is not None and 0 <= void_label < 256:
            self.stray[void_label] = False
        self.counts, self.maps, self.holding, self.example = np.zeros(256, np.int64), 0, 0, None
        self._lock = threading.Lock()

    def read(self, path: Path) -> None:
        found = np.bincount(read_label_map(path).ravel(), minlength=256)
        with self._lock:
            self.counts += found
            self.maps += 1
            if found[self.stray].any():
                self.holding += 1
                self.example = path if self.example is None else min(self.example, path)

    def warn(self) -> None:
        if not self.holding:
            return
        stray = np.flatnonzero(self.counts * self.stray)
        unseen = [str(value) for value in range(self.n_labels) if not self.counts[value]]
        log.warning("%d of %d training label maps read hold values that are no class (0..%d)%s: %s, %.3g%% of their "
                    "pixels (e.g. %s), ignored in training and scoring%s; if they are classes, remap the masks or set "
                    "the competition's classes (or void_label)", self.holding, self.maps, self.n_labels - 1,
                    "" if self.void_label is None else f" and not void ({self.void_label})",
                    ", ".join(map(str, stray[:8])), 100 * self.counts[stray].sum() / self.counts.sum(), self.example,
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
