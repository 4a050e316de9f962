"""Only what pyproject.toml cannot say: the repository's competitions/ folder ships as the package
``kagglekit_competitions`` (a generic top-level name like ``competitions`` would clash in site-packages)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["kagglekit", "kagglekit.*"]) + ["kagglekit_competitions"],
    package_dir={"kagglekit_competitions": "competitions"},
)
