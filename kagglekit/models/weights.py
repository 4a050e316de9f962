"""The one place that decides where a pretrained weights file is looked for, in order.

1. ``--weights-dir`` (a Kaggle dataset in an internet-off notebook), 2. ``$KAGGLEKIT_WEIGHTS_DIR``,
3. kagglekit's converted-weights cache, 4. Keras's own download cache (``$KERAS_HOME/models``).
"""

from __future__ import annotations

import os
from pathlib import Path

from kagglekit.core.errors import ConfigError
from kagglekit.core.paths import weights_cache_dir


def weight_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order. A folder the user named (``weights_dir``, ``$KAGGLEKIT_WEIGHTS_DIR``)
    that is not there is a ConfigError: otherwise a typo lets the weights come from a cache unnoticed."""
    given = [(weights_dir, "weights folder {path} (--weights-dir, or the config's weights_dir)"),
             (os.environ.get("KAGGLEKIT_WEIGHTS_DIR"), "$KAGGLEKIT_WEIGHTS_DIR={path}")]
    dirs = [_existing_folder(Path(folder), what) for folder, what in given if folder]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return dirs + [weights_cache_dir(), keras_home]


def _existing_folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"{what.format(path=path)} {problem}; check the path (a weights folder that is named "
                          "is never skipped)")
    return path


def find_weights_file(name: str, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder's ``name`` that exists, or None."""
    for folder in weight_dirs(weights_dir):
        if (folder / name).is_file():
            return folder / name
    return None


def where_weights_go(weights_dir: str | os.PathLike | None = None) -> str:
    """The folders searched, for error messages that tell the user where to put a file."""
    return ", ".join(str(d) for d in weight_dirs(weights_dir))
