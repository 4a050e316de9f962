"""Render the literate notebook template (jupytext percent format) into an nbformat notebook.

``template.py`` holds every cell; ``{{name}}`` placeholders are filled per cell after jupytext has
parsed it, so a value may span lines. A code-cell line that is only ``# {{name}}`` is replaced by
the value as a block (how the bootstrap code goes in). A placeholder left unfilled is an error.
"""

from __future__ import annotations

import base64
import re
from importlib import resources

import jupytext
import nbformat

from kagglekit.core.errors import ConfigError

#: ``{{name}}`` anywhere; in code cells also ``# {{name}}`` alone on a line (a block). One pass per
#: cell, so filled-in values are never rescanned.
_PLACEHOLDER = {
    "code": re.compile(r"^# \{\{(\w+)\}\}$|\{\{(\w+)\}\}", re.MULTILINE),
    "markdown": re.compile(r"\{\{(\w+)\}\}()"),
}
_ATTACHMENT = re.compile(r"\(attachment:([^)]+)\)")


def template_text(name: str = "template.py") -> str:
    return resources.files("kagglekit.notebook").joinpath(name).read_text(encoding="utf-8")


def render_notebook(values: dict[str, str], attachments: dict[str, bytes] | None = None,
                    template: str | None = None) -> nbformat.NotebookNode:
    """The template with ``values`` filled in; markdown cells that cite ``attachment:NAME`` carry NAME."""
    attachments = attachments or {}
    notebook = jupytext.reads(template if template is not None else template_text(), fmt="py:percent")

    def fill(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ConfigError(f"notebook template: no value for {{{{{name}}}}}")
        return values[name]

    for cell in notebook.cells:
        cell.source = _PLACEHOLDER[cell.cell_type].sub(fill, cell.source).strip("\n")
        if cell.cell_type == "markdown":
            cited = _ATTACHMENT.findall(cell.source)
            missing = sorted(set(cited) - set(attachments))
            if missing:
                raise ConfigError(f"notebook template: no image for attachment(s) {', '.join(missing)}")
            if cited:
                cell.attachments = {
                    name: {"image/png": base64.b64encode(attachments[name]).decode("ascii")} for name in cited
                }
    notebook.metadata.pop("jupytext", None)  # a generated .ipynb is not paired with the template
    nbformat.validate(notebook)
    return notebook
