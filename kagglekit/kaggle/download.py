"""``download``: a competition's data into the data cache, verified, extracted, and only once.

The zip goes to ``<cache>/downloads/<slug>.zip`` (the ``kaggle`` client resumes a partial file
there when the remote object is unchanged); it is checked against Kaggle's file list (every file,
its size, every CRC) before anything in the destination changes, then extracted into it. The
destination is claimed through ``kagglekit.core.manifest``: it must be new, empty or kagglekit's, its
manifest marks a complete download, and ``--force`` replaces only the files an earlier download (or
``prepare``) wrote there: files the user added are kept.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path, PurePosixPath

from kagglekit.competitions.contract import Competition
from kagglekit.core.errors import DataError
from kagglekit.core.manifest import MANIFEST, OwnedFolder, read_manifest
from kagglekit.core.paths import data_cache_dir, downloads_dir
from kagglekit.kaggle.client import KaggleService

log = logging.getLogger(__name__)


def cached_competition_data(competition: Competition, service: KaggleService | None = None) -> Path:
    """The data cache's folder for ``competition``; downloaded through the Kaggle API when it is empty.

    A folder is usable when it holds the sample submission: downloaded, built offline by ``prepare``,
    or put there by hand; not a download or build that was interrupted.
    """
    folder = data_cache_dir(competition.slug)
    manifest = read_manifest(folder)
    if (folder / competition.sample_submission).is_file() and (manifest is None or manifest.complete):
        return folder
    log.info("no data for %s in %s: downloading it through the Kaggle API", competition.name, folder)
    return download_competition(service or KaggleService(), competition, folder)


def download_competition(service: KaggleService, competition: Competition, dest: Path | None = None,
                         force: bool = False) -> Path:
    """The folder holding the competition's files, downloading what is missing."""
    dest = Path(dest) if dest is not None else data_cache_dir(competition.slug)
    owned = OwnedFolder(dest, "download")
    options = {"slug": competition.slug}
    if owned.reusable(options, force):
        log.info("%s: already downloaded in %s", competition.slug, dest)
        return dest
    listed = {f.name: f.total_bytes for f in service.list_files(competition.slug)}
    log.info("%s: %d files listed; downloading the archive", competition.slug, len(listed))
    archive = service.download_all(competition.slug, downloads_dir())
    _verify(archive, listed)
    with zipfile.ZipFile(archive) as zipped:
        members = [info for info in zipped.infolist() if not info.is_dir() and info.filename != MANIFEST]
        owned.replace([info.filename for info in members], options)
        for info in members:
            zipped.extract(info, dest)
    owned.finish()
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
    problems = [f"{name}: a path outside the folder" for name in sizes
                if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts][:5]
    if bad is not None:
        problems.append(f"CRC mismatch in {bad}")
    problems += [f"{name}: missing" for name in sorted(set(listed) - set(sizes))][:5]
    problems += [f"{name}: {sizes[name]} bytes, Kaggle lists {size}"
                 for name, size in sorted(listed.items()) if name in sizes and size and sizes[name] != size][:5]
    if problems:
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive} does not match Kaggle's file list ({'; '.join(problems)}); removed it, "
                        "run the download again")
