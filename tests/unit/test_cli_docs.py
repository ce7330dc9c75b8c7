"""docs/cli.md cannot drift from the CLI: every command, option and help text is in it.

Commands are discovered from the Typer app, so a command added later is covered without
touching this file. Each command's section holds its `--help` text (click's plain rendering,
100 columns) between markers; after changing a command, regenerate those blocks with

    .venv/bin/python tests/unit/test_cli_docs.py
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from shiftsync.cli.app import app

DOC: Path = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HELP_WIDTH = 100
OWN_COMMANDS = ("init", "policy", "check")  # this file's first authors' commands
_BLOCK = re.compile(
    r"<!-- help: (?P<path>[^>]+?) -->\n```text\n(?P<text>.*?)```\n<!-- /help -->", re.DOTALL
)


def commands() -> Iterator[tuple[str, Any]]:
    """("shiftsync <path>", command) for the root and every leaf command, in app order."""
    root = typer.main.get_command(app)
    yield "shiftsync", root

    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        children = getattr(command, "commands", None)
        if children is None:
            yield path, command
            return
        for name, child in children.items():
            yield from walk(child, f"{path} {name}")

    yield from walk(root, "shiftsync")


def plain_help(path: str, command: Any) -> str:
    """`<path> --help` as click prints it without rich (stable, diff-friendly)."""
    ctx = command.context_class(
        command, info_name=path, terminal_width=HELP_WIDTH, max_content_width=HELP_WIDTH
    )
    formatter = ctx.make_formatter()
    # Typer's own format_help draws rich panels; click's class under it prints plain text.
    plain: Any = next(
        c for c in type(command).__mro__ if ".core" in c.__module__ and "_click" in c.__module__
    )
    plain.format_help(command, ctx, formatter)
    return str(formatter.getvalue()).rstrip() + "\n"


def sections(text: str) -> dict[str, str]:
    """Level-2 sections titled "## `shiftsync …`", by command path."""
    found: dict[str, str] = {}
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        match = re.fullmatch(r"`(shiftsync[^`]*)`", title.strip())
        if match:
            found[match.group(1)] = body
    return found


def option_names(command: Any) -> list[str]:
    """Every option's long names (and short ones when there is no long one), and arguments."""
    names: list[str] = []
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        if getattr(param, "param_type_name", "") == "argument":
            names.append(param.metavar or param.name.upper())
            continue
        opts = [*param.opts, *param.secondary_opts]
        long = [opt for opt in opts if opt.startswith("--")]
        names += long or opts
    return names


DOC_TEXT = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
COMMANDS = list(commands())


def test_every_command_has_a_section() -> None:
    documented = sections(DOC_TEXT)
    missing = [path for path, _ in COMMANDS if path not in documented]
    assert missing == [], f"add a '## `<command>`' section to docs/cli.md for: {missing}"


def test_no_section_documents_a_command_that_does_not_exist() -> None:
    known = {path for path, _ in COMMANDS}
    assert sorted(set(sections(DOC_TEXT)) - known) == []


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_option_is_in_its_section(path: str, command: Any) -> None:
    body = sections(DOC_TEXT).get(path, "")
    missing = [name for name in option_names(command) if name not in body]
    assert missing == [], f"docs/cli.md, section {path}: document {missing}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_help_block_matches_the_cli(path: str, command: Any) -> None:
    blocks = {m["path"]: m["text"] for m in _BLOCK.finditer(DOC_TEXT)}
    assert path in blocks, f"docs/cli.md has no <!-- help: {path} --> block"
    assert blocks[path] == plain_help(path, command), (
        f"the help of `{path}` changed: run .venv/bin/python tests/unit/test_cli_docs.py"
    )


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_has_help(path: str, command: Any) -> None:
    assert (command.help or "").strip(), f"{path} has no help text"


@pytest.mark.parametrize("name", OWN_COMMANDS)
def test_setup_commands_document_their_exit_codes(name: str) -> None:
    command = dict(COMMANDS)[f"shiftsync {name}"]
    assert "Exit codes: 0" in plain_help(f"shiftsync {name}", command)


def test_plain_help_shows_usage_and_options() -> None:
    command = dict(COMMANDS)["shiftsync check"]
    text = plain_help("shiftsync check", command)
    assert text.startswith("Usage: shiftsync check [OPTIONS] [CONNECTION]\n")
    assert "--json" in text
    assert "╭" not in text  # no rich panels


def regenerate(text: str) -> tuple[str, list[str]]:
    """docs/cli.md with every help block rewritten, and the commands that have no block."""
    helps = {path: plain_help(path, command) for path, command in COMMANDS}

    def block(match: re.Match[str]) -> str:
        path = match["path"]
        body = helps.get(path, match["text"])
        return f"<!-- help: {path} -->\n```text\n{body}```\n<!-- /help -->"

    updated = _BLOCK.sub(block, text)
    present = {m["path"] for m in _BLOCK.finditer(updated)}
    return updated, [path for path in helps if path not in present]


if __name__ == "__main__":
    new_text, without_block = regenerate(DOC_TEXT)
    DOC.write_text(new_text, encoding="utf-8")
    for path in without_block:
        sys.stderr.write(
            f"no block for `{path}`: add '<!-- help: {path} -->' + an empty ```text fence + "
            "'<!-- /help -->' to its section, then run this again\n"
        )
