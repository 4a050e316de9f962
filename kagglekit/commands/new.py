"""``kagglekit new SLUG_OR_DIR``: a YAML adapter for a competition kagglekit does not ship, from its files.

A folder is read as it is; a Kaggle slug is downloaded into the data cache first. The layout is
recognised (``kagglekit.competitions.layout``), the YAML written with what was inferred and assumed as
comments, and the file loaded back (a competition kagglekit could not load is never written). Exit 3
with the missing pieces named when no kind fits the layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kagglekit.commands.options import InputPath
from kagglekit.competitions.class_folder import ClassFolderCompetition
from kagglekit.competitions.discovery import COMPETITION_KINDS
from kagglekit.competitions.layout import infer_layout
from kagglekit.core.errors import ConfigError, DataError
from kagglekit.core.fileio import atomic_write_text
from kagglekit.core.manifest import read_manifest
from kagglekit.core.paths import data_cache_dir
from kagglekit.kaggle.client import KaggleService
from kagglekit.kaggle.download import download_competition

SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


def register(subparsers) -> None:
    parser = subparsers.add_parser("new", help="write a competition YAML from a competition's files")
    parser.add_argument("source", metavar="SLUG_OR_DIR", type=InputPath(
                            "folder", "a competition folder or a Kaggle slug", names=SLUG.fullmatch, returns=str,
                            missing="{path} is neither a folder nor a Kaggle competition slug (like "
                                    "dog-breed-identification)"),
                        help="a competition folder in Kaggle layout, or a Kaggle slug to download")
    parser.add_argument("--name", help="the competition's name (default: the folder's name or the slug)")
    parser.add_argument("--slug", help="its Kaggle slug, for download and submit (default: the name)")
    parser.add_argument("--out", type=Path, help="the YAML file to write (default: ./<name>.yaml)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.set_defaults(func=main)


def main(args) -> int:
    folder, slug = _competition_folder(args.source, args.slug)
    name = args.name or _name(slug or folder.resolve().name)
    out = args.out or Path(f"{name}.yaml")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it or --out to choose another file")
    layout = infer_layout(folder, name, slug)
    print(f"{folder}:")
    for line in layout.inferred:
        print(f"  found: {line}")
    for line in layout.assumed:
        print(f"  assumed: {line}")
    if layout.spec is None:
        raise DataError(f"{folder}: no competition kind fits this layout: " + "; ".join(layout.missing))
    spec = dict(layout.spec)
    competition = COMPETITION_KINDS.get(spec.pop("kind"))(spec).resolve(folder)
    competition.load_train(folder), competition.load_test(folder)  # it works on these files, or says why now
    comments = [f"Written by `kagglekit new` from {folder}.", "Found:", *[f"  {line}" for line in layout.inferred],
                "Assumed (check these):", *[f"  {line}" for line in layout.assumed]]
    text = "".join(f"# {line}\n" for line in comments) + yaml.safe_dump(layout.spec, sort_keys=False,
                                                                         allow_unicode=True)
    atomic_write_text(out, text)
    print(f"wrote {out} ({layout.spec['kind']}: {competition.describe()})")
    print(f"next: kagglekit run {out} --data {folder}")
    return 0


def _competition_folder(source: str, slug: str | None) -> tuple[Path, str | None]:
    """The folder to read and the Kaggle slug if known: a folder as given, a slug downloaded."""
    path = Path(source)
    if path.is_dir():
        return path, slug
    # anything else is a slug: the argument's type refused the rest
    folder = data_cache_dir(source)
    manifest = read_manifest(folder)
    if manifest is None or not manifest.complete:
        # the kind is what is to be found out: a placeholder competition carries the slug to the download
        download_competition(KaggleService(), ClassFolderCompetition(source, source, source), folder)
    return folder, slug or source


def _name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "competition"
