"""A folder as a Kaggle dataset, uploaded once per content: ``publish_dataset``.

The digest of the folder's files (``kagglekit.core.fileio.sha256_tree``) is written into the dataset's
description, which Kaggle keeps as the latest version's: when the latest version already carries the
folder's digest nothing is uploaded. After a failed upload the dataset is read again before anything
is sent a second time, so a retry whose first request landed never makes a second version of the same
content. A file upload cut off midway is resumed by the ``kaggle`` client itself (resumable uploads).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from kagglekit.core.errors import ConfigError, KaggleError
from kagglekit.core.fileio import atomic_write_json, sha256_tree
from kagglekit.kaggle.client import KaggleService

log = logging.getLogger(__name__)
METADATA = "dataset-metadata.json"  # what ``kaggle datasets create`` reads; not part of the content
TAG = re.compile(r"\s*\[kk-content [0-9a-f]{64}\]")


@dataclass(frozen=True)
class PublishedDataset:
    ref: str  # owner/slug
    version: int
    sha256: str  # of the folder's files
    created: bool  # False: the latest version already held these files


def content_tag(sha256: str) -> str:
    return f"[kk-content {sha256}]"


def publish_dataset(service: KaggleService, folder: Path) -> PublishedDataset:
    """Make ``folder`` (with its dataset-metadata.json) the latest version of its dataset: a new dataset,
    a new version, or nothing when the latest version holds these files already."""
    folder = Path(folder)
    try:
        metadata = json.loads((folder / METADATA).read_text(encoding="utf-8"))
        ref = metadata["id"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{folder / METADATA}: no dataset id to publish to ({exc}); write it with "
                          "`kagglekit notebook ... --kernel-metadata --owner USER`") from None
    sha = sha256_tree(folder, exclude=(METADATA,))
    tag = content_tag(sha)
    metadata["description"] = f"{TAG.sub('', metadata.get('description') or '')} {tag}".strip()
    atomic_write_json(folder / METADATA, metadata)

    found = service.dataset(ref)
    if _holds(found, tag):
        log.info("dataset %s: version %d already holds these files (sha256 %s)", ref, found.current_version_number,
                 sha[:12])
        return PublishedDataset(ref, found.current_version_number, sha, created=False)
    delays = service.backoff.delays()
    while True:
        log.info("dataset %s: uploading %s", ref, "a new dataset" if found is None else "a new version")
        try:
            service.upload_dataset(folder, ref, None if found is None else f"kagglekit {tag}")
        except KaggleError as exc:
            found = service.dataset(ref)  # the upload may have landed, only its answer lost
            if _holds(found, tag):
                break
            delay = next(delays, None) if exc.transient else None
            if delay is None:
                raise
            log.warning("dataset upload failed (%s); retrying in %.1f s", exc, delay)
            time.sleep(delay)
            continue
        found = service.dataset(ref)
        if not _holds(found, tag):
            raise KaggleError(f"Kaggle took the upload of {folder}, but the latest version of dataset {ref} does not "
                              f"carry its digest {tag}; look at it on Kaggle, then publish again")
        break
    return PublishedDataset(ref, found.current_version_number, sha, created=True)


def _holds(dataset, tag: str) -> bool:
    return dataset is not None and tag in (dataset.description or "")
