"""The fixture that runs `shiftsync` in-process, as the console script does."""

from __future__ import annotations

import sys

import pytest

from shiftsync.cli import main
from tests.support import Cli, Ran


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `shiftsync <args>` in-process (through `main()`), exit code and output captured."""

    def run(*args: str) -> Ran:
        monkeypatch.setattr(sys, "argv", ["shiftsync", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run
