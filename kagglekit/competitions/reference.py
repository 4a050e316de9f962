"""How a competition is named on the command line, in a run config and in the Python API: a registered name,
or the path of a competition YAML file. Kept apart from discovery (which imports every adapter) so the command
line can tell the two apart at parse time."""

from __future__ import annotations

from pathlib import Path

#: What a competition file is called (anything else is a registered name).
SUFFIXES = (".yaml", ".yml")


def is_competition_file(reference: str | Path) -> bool:
    """Whether ``reference`` names a competition YAML file rather than a registered competition."""
    return Path(reference).suffix in SUFFIXES
