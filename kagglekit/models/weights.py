"""The one place that decides where a pretrained weights file is looked for, in order.

1. ``--weights-dir`` (a Kaggle dataset in an internet-off notebook), 2. ``$KAGGLEKIT_WEIGHTS_DIR``,
3. kagglekit's converted-weights cache, 4. Keras's own download cache (``$KERAS_HOME/models``).
"""

from __future__ import annotations

import os
from pathlib import Path

from kagglekit.core.paths import weights_cache_dir


def weight_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = [weights_dir, os.environ.get("KAGGLEKIT_WEIGHTS_DIR")]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return [Path(d) for d in dirs if d] + [weights_cache_dir(), keras_home]


def find_weights_file(name: str, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder's ``name`` that exists, or None."""
    for folder in weight_dirs(weights_dir):
        if (folder / name).is_file():
            return folder / name
    return None


def where_weights_go(weights_dir: str | os.PathLike | None = None) -> str:
    """The folders searched, for error messages that tell the user where to put a file."""
    return ", ".join(str(d) for d in weight_dirs(weights_dir))
