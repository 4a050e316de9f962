"""Write docs/cli.md, the command-line reference, from the parser ``kagglekit.cli.build_parser`` builds:

    .venv/bin/python scripts/cli_reference.py > docs/cli.md

Generated, so that no flag changes without its documentation: tests/commands/test_cli_reference.py fails when
docs/cli.md is not what this prints. It lives outside the package because it reads ``kagglekit.cli``, the top
layer (pyproject.toml's import-linter contract): nothing inside ``kagglekit`` may import it, and a reference
generator is a tool for this repository, not part of what a user installs.
"""

from __future__ import annotations

import argparse
import sys

from kagglekit.cli import build_parser

COMMAND = ".venv/bin/python scripts/cli_reference.py > docs/cli.md"
WIDTH = 100  # usage lines wrap here whatever the terminal, so the file is the same on every machine
HIDDEN = {"help", "debug"}  # on every verb: described once, at the top


def reference(parser: argparse.ArgumentParser) -> str:
    """The whole reference as Markdown: the global options, an index of verbs, then one section per verb."""
    verbs = list(_verbs(parser))
    lines = [
        "# Command-line reference",
        "",
        "<!-- Generated from the parser in kagglekit/cli.py: do not edit by hand. Regenerate with",
        f"     {COMMAND} -->",
        "",
        "`kagglekit VERB --help` prints the same for one verb. Every verb also takes `--debug` (print the traceback",
        "of an internal error instead of writing it to a crash log); `-v`/`--verbose` (debug logging) goes before",
        "the verb. Exit codes are in [troubleshooting.md](troubleshooting.md#exit-codes).",
        "",
        "```",
        _usage(parser),
        "```",
        "",
        "| verb | what it does |",
        "|---|---|",
        *(f"| [`{prog}`](#{anchor(prog)}) | {_cell(summary)} |" for prog, summary, _ in verbs),
    ]
    for prog, summary, verb in verbs:
        lines += ["", f"## {prog}", "", _cell(summary), "", "```", _usage(verb), "```"]
        rows = [action for action in verb._actions
                if action.dest not in HIDDEN and not isinstance(action, argparse._SubParsersAction)]
        if rows:
            lines += ["", "| argument | meaning |", "|---|---|"]
            lines += [f"| `{_signature(action)}` | {_cell(_meaning(action))} |" for action in rows]
    return "\n".join(lines) + "\n"


def _verbs(parser: argparse.ArgumentParser):
    """(prog, one-line help, parser) of every verb, sub-verbs (``cache prune``) after their verb."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, verb in action.choices.items():
                yield verb.prog, summaries.get(name) or "", verb
                yield from _verbs(verb)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _signature(action: argparse.Action) -> str:
    """``-m, --message MESSAGE`` or ``runs RUN_DIR [RUN_DIR ...]``, as the usage line spells the argument."""
    if not action.option_strings:
        return _metavar(action, action.metavar or action.dest)
    name = action.metavar or action.dest.upper()
    return ", ".join(action.option_strings) + ("" if action.nargs == 0 else " " + _metavar(action, name))


def _metavar(action: argparse.Action, name: str) -> str:
    if action.choices is not None and action.metavar is None:
        name = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    if action.nargs == "?":
        return f"[{name}]"
    if action.nargs == "*":
        return f"[{name} ...]"
    if action.nargs == "+":
        return f"{name} [{name} ...]"
    if isinstance(action.nargs, int):
        return " ".join([name] * action.nargs)
    return name


def _meaning(action: argparse.Action) -> str:
    """The help text, with the default where the help does not give it (only plain values: a default that
    depends on the machine, such as the ledger's path, is a ``Path`` and its help says where it comes from)."""
    text = action.help or ""
    default = action.default
    plain = isinstance(default, (str, int, float, list, tuple)) and not isinstance(default, bool)
    if plain and default not in ("", [], ()) and "default" not in text:
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return text


def _cell(text: str) -> str:
    """One line of Markdown that shows the text as written: ``<competition>`` is not an HTML tag, ``|`` no
    column break."""
    text = " ".join(text.split())
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, spaces as dashes, other punctuation but dashes dropped."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


if __name__ == "__main__":
    sys.stdout.write(reference(build_parser()))
