"""The one folder kagglekit keeps between runs: ``$KAGGLEKIT_CACHE`` (default ``~/.cache/kagglekit``).

It holds competition data (``data/``), converted pretrained weights (``weights/``), cached features
(``features/``) and partial downloads (``downloads/``): everything expensive to make again.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("KAGGLEKIT_CACHE", Path.home() / ".cache" / "kagglekit"))
