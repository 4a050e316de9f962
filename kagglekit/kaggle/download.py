"""``download``: a competition's data into the data cache, verified, extracted, and only once.

The zip goes to ``<cache>/downloads/<slug>.zip`` (the ``kaggle`` client resumes a partial file
there when the remote object is unchanged); it is checked against Kaggle's file list (every file,
its size, every CRC) and extracted into a temporary folder that is renamed into place last, with a
``.kagglekit-download.json`` marker. A folder with the marker is complete; anything else is redone.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import DataError
from kagglekit.core.fileio import atomic_write_json, sha256_file
from kagglekit.core.paths import data_cache_dir, downloads_dir
from kagglekit.kaggle.client import KaggleService

log = logging.getLogger(__name__)
MARKER = ".kagglekit-download.json"


def cached_competition_data(competition: Competition, service: KaggleService | None = None) -> Path:
    """The data cache's folder for ``competition``; downloaded through the Kaggle API when it is empty.

    A folder is usable when it holds the sample submission: downloaded, or built offline by ``prepare``.
    """
    folder = data_cache_dir(competition.slug)
    if (folder / competition.sample_submission).is_file():
        return folder
    log.info("no data for %s in %s: downloading it through the Kaggle API", competition.name, folder)
    return download_competition(service or KaggleService(), competition, folder)


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def download_competition(service: KaggleService, competition: Competition, dest: Path | None = None,
                         force: bool = False) -> Path:
    """The folder holding the competition's files, downloading what is missing."""
    dest = Path(dest) if dest is not None else data_cache_dir(competition.slug)
    if is_complete(dest) and not force:
        log.info("%s: already downloaded in %s", competition.slug, dest)
        return dest
    if dest.is_dir() and any(dest.iterdir()) and not is_complete(dest):
        raise DataError(f"{dest} already holds files that kagglekit did not download; pass an empty or new "
                        "folder with --dest (nothing there is deleted or overwritten)")
    listed = {f.name: f.total_bytes for f in service.list_files(competition.slug)}
    log.info("%s: %d files listed; downloading the archive", competition.slug, len(listed))
    archive = service.download_all(competition.slug, downloads_dir())
    _verify(archive, listed)
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(staging)
    atomic_write_json(staging / MARKER, {"slug": competition.slug, "zip_sha256": sha256_file(archive),
                                         "files": len(listed), "bytes": sum(listed.values())})
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    archive.unlink()
    log.info("%s: %d files in %s", competition.slug, len(listed), dest)
    return dest


def _verify(archive: Path, listed: dict[str, int]) -> None:
    """The archive holds exactly the listed files, at the listed sizes, with intact CRCs."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            sizes = {i.filename: i.file_size for i in zipped.infolist() if not i.is_dir()}
            bad = zipped.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive}: downloaded archive is corrupt ({exc}); removed it, run the download again") from None
    problems = []
    if bad is not None:
        problems.append(f"CRC mismatch in {bad}")
    problems += [f"{name}: missing" for name in sorted(set(listed) - set(sizes))][:5]
    problems += [f"{name}: {sizes[name]} bytes, Kaggle lists {size}"
                 for name, size in sorted(listed.items()) if name in sizes and size and sizes[name] != size][:5]
    if problems:
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive} does not match Kaggle's file list ({'; '.join(problems)}); removed it, "
                        "run the download again")
