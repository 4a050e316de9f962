"""A wheel of the kagglekit code that is running now, for notebooks that must install it offline.

Kaggle notebooks with the internet off install packages from wheels attached as a dataset (a ``.whl``
is uploaded as is, while Kaggle unpacks zip archives). The wheel is written straight from the
imported packages, not built from a checkout, so it works from any install; its local version label
is a digest of the packaged files (``0.1.0+src.<digest>``), which names the exact code, and it is
byte-for-byte reproducible (sorted entries, fixed timestamps).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import kagglekit
from kagglekit.competitions.discovery import ENTRY_POINT_GROUP
from kagglekit.core.fileio import atomic_open
from kagglekit.runs.provenance import package_files, source_digest

_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SourceWheel:
    path: Path
    version: str
    source_sha256: str


def write_source_wheel(out_dir: Path) -> SourceWheel:
    """Write ``kagglekit-<version>+src.<digest>-py3-none-any.whl`` into ``out_dir``."""
    files = package_files()
    digest = source_digest(files)
    version = f"{kagglekit.__version__}+src.{digest[:12]}"
    dist_info = f"kagglekit-{version}.dist-info"
    entries = {name: path.read_bytes() for name, path in files.items()}
    entries[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: kagglekit\nVersion: {version}\n"
        f"Summary: kagglekit source {digest}\n"
    ).encode()
    entries[f"{dist_info}/entry_points.txt"] = (  # how discovery finds the shipped competitions
        f"[{ENTRY_POINT_GROUP}]\nshipped = kagglekit_competitions\n").encode()
    entries[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: kagglekit.notebook.wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = [f"{name},sha256={_b64_sha256(data)},{len(data)}" for name, data in sorted(entries.items())]
    entries[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()

    path = Path(out_dir) / f"kagglekit-{version}-py3-none-any.whl"
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return SourceWheel(path, version, digest)


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
