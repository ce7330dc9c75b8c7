"""The fixture that runs `shiftsync` in-process, as the console script does."""

from __future__ import annotations

import sys

import pytest

from shiftsync.cli import main
from tests.support import Cli, Ran, record_suggested_commands


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> Cli:
    """Run `shiftsync <args>` in-process (through `main()`), exit code and output captured.

    Every `shiftsync …` command the output suggests is recorded (tests.support), so that
    test_zz_fix_lines.py can check that each one parses as the CLI takes it.
    """

    def run(*args: str) -> Ran:
        monkeypatch.setattr(sys, "argv", ["shiftsync", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        record_suggested_commands(captured.out + captured.err, request.node.nodeid)
        return Ran(code, captured.out, captured.err)

    return run
