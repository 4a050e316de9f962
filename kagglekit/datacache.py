"""Where competition data lives when ``--data`` is not given: ``<cache>/data/<slug>``."""

from __future__ import annotations

from pathlib import Path

from kagglekit.competition import Competition
from kagglekit.errors import DataError
from kagglekit.features import cache_root


def data_cache_dir(competition: Competition) -> Path:
    return cache_root() / "data" / competition.slug


def cached_competition_data(competition: Competition) -> Path:
    folder = data_cache_dir(competition)
    if (folder / competition.sample_submission).is_file():
        return folder
    raise DataError(
        f"no data for {competition.name} in {folder}; pass --data DIR or download it first "
        f"(`kagglekit download {competition.name}`)"
    )
