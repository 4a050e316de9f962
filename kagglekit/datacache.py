"""Where competition data lives when ``--data`` is not given: ``<cache>/data/<slug>``.

A run without ``--data`` uses that folder when it is complete (downloaded, or built offline by
``kagglekit prepare``), and otherwise downloads the competition through the Kaggle API first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kagglekit.competition import Competition
from kagglekit.cache import cache_root

log = logging.getLogger(__name__)


def data_cache_dir(competition: Competition) -> Path:
    return cache_root() / "data" / competition.slug


def cached_competition_data(competition: Competition) -> Path:
    folder = data_cache_dir(competition)
    if (folder / competition.sample_submission).is_file():
        return folder
    from kagglekit.kaggle.client import KaggleService
    from kagglekit.kaggle.download import download_competition

    log.info("no data for %s in %s: downloading it through the Kaggle API", competition.name, folder)
    return download_competition(KaggleService(), competition, folder)
