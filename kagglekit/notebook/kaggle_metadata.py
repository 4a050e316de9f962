"""The metadata files ``kaggle kernels push`` and ``kaggle datasets create`` read.

Field names and limits follow the kaggle package (kaggle/api/kaggle_api_extended.py:
``kernels_initialize``, ``kernels_push``, ``dataset_create_new``). Titles are chosen so that they
slugify to the ids (the kaggle client warns otherwise), and fit Kaggle's 50-character limit.
"""

from __future__ import annotations

from slugify import slugify

MAX_LENGTH = 50  # Kaggle's limit on dataset titles and slugs


def kaggle_title(competition: str, run: str, suffix: str = "") -> str:
    """``<competition> <run> [suffix]``, the competition name shortened to fit MAX_LENGTH."""
    tail = f" {run}" + (f" {suffix}" if suffix else "")
    return competition[: max(1, MAX_LENGTH - len(tail))] + tail


def dataset_metadata(owner: str, title: str) -> dict:
    return {"title": title, "id": f"{owner}/{slugify(title)}", "licenses": [{"name": "CC0-1.0"}]}


def kernel_metadata(owner: str, title: str, code_file: str, dataset_ids: list[str],
                    competition_slug: str, enable_gpu: bool = False) -> dict:
    """A private notebook kernel with the internet off, reading the bundle dataset and the competition."""
    return {
        "id": f"{owner}/{slugify(title)}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": enable_gpu,
        "enable_tpu": False,
        "enable_internet": False,
        "machine_shape": "",  # as kaggle's own template: the default machine
        "dataset_sources": list(dataset_ids),
        "competition_sources": [competition_slug],
        "kernel_sources": [],
        "model_sources": [],
    }
