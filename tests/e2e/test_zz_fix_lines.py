"""Every command shiftsync suggests runs as written: it exists and its arguments parse.

The `cli` fixture records each `shiftsync …` command an output quotes (tests.support). This
module runs last among the e2e tests (its name sorts last), so in a full run it sees what every
earlier e2e test provoked; it also provokes a set of mistakes of its own first, so that run
alone it still checks real suggestions. Each command is parsed by the CLI's own click command
tree, as a shell would hand it over, without being run: a usage error (an unknown command or
option, a missing or extra argument, a bad value) fails the test, and so does a placeholder
such as <name> that cannot run as written.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from shiftsync.cli.app import app
from shiftsync.local.standin import StandInInfo
from tests.support import (
    SUGGESTED_COMMANDS,
    Cli,
    standin_connection,
    write_external_id,
)


class UsageProblem(Exception):
    """The CLI refused the command's words (click's UsageError and its kinds)."""


def _is_usage_error(error: BaseException) -> bool:
    # Typer ships its own copy of click: its exceptions are matched by their class names.
    return any(cls.__name__ == "UsageError" for cls in type(error).__mro__)


def _is_exit(error: BaseException) -> bool:
    return any(cls.__name__ == "Exit" for cls in type(error).__mro__)


def parse(command: str) -> None:
    """Parse `command` as the CLI would (UsageProblem when refused), without running it."""
    words = shlex.split(command)
    assert words[0] == "shiftsync"
    root: Any = typer.main.get_command(app)
    try:
        ctx = root.make_context("shiftsync", words[1:])
        current: Any = root
        while hasattr(current, "resolve_command"):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                return
            name, current, args = current.resolve_command(ctx, rest)
            ctx = current.make_context(name, args, parent=ctx)
    except Exception as error:
        if _is_exit(error):
            return  # --help and the like: they parse
        if _is_usage_error(error):
            raise UsageProblem(error.format_message()) from error  # type: ignore[attr-defined]
        raise


def two_sync_workspace(folder: Path, info: StandInInfo) -> None:
    write_external_id(folder, info.external_id)
    config = {
        "connections": {"warehouse": standin_connection(info)},
        "destinations": {"local": {"type": "duckdb", "path": "out.duckdb"}},
        "syncs": {
            "first": {"source": "warehouse", "destination": "local", "tables": ["public.venue"]},
            "second": {
                "source": "warehouse",
                "destination": "local",
                "tables": ["public.no_such_table_h15"],
            },
        },
    }
    (folder / "shiftsync.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_mistakes_provoke_fix_lines(cli: Cli, info: StandInInfo, tmp_path: Path) -> None:
    before = len(SUGGESTED_COMMANDS)
    assert cli("init", str(tmp_path / "fresh")).code == 0
    cli("policy", "-w", str(tmp_path / "fresh"))
    folder = tmp_path / "two"
    folder.mkdir()
    two_sync_workspace(folder, info)
    assert cli("sync", "first", "--tables", "public.nothing", "-w", str(folder)).code == 2
    assert cli("sync", "second", "-w", str(folder)).code != 0
    assert cli("runs", "show", "no-such-run", "-w", str(folder)).code == 2
    cli("check", "-w", str(folder))
    provoked = SUGGESTED_COMMANDS[before:]
    assert provoked, "the mistakes above suggested no command"
    # The fix for a --tables pattern that matches nothing names the sync it is about.
    assert any(command.startswith("shiftsync sync first ") for command, _ in provoked)


def test_every_suggested_command_parses() -> None:
    seen: dict[str, str] = dict(SUGGESTED_COMMANDS)
    assert seen, "no suggested command was recorded: run with test_mistakes_provoke_fix_lines"
    failures = []
    for command, origin in sorted(seen.items()):
        if "<" in command or "…" in command or "..." in command:
            failures.append(f"{command!r} (from {origin}): a placeholder cannot run as written")
            continue
        try:
            parse(command)
        except UsageProblem as error:
            failures.append(f"{command!r} (from {origin}): {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "command",
    ["shiftsync tables", "shiftsync sync --full-refresh --nope", "shiftsync runs show a b"],
)
def test_the_parser_catches_what_a_user_would_hit(command: str) -> None:
    with pytest.raises(UsageProblem):
        parse(command)


@pytest.mark.parametrize(
    "command",
    ["shiftsync sync first --full-refresh --tables 'public.venue'", "shiftsync check --help"],
)
def test_the_parser_takes_good_commands(command: str) -> None:
    parse(command)
