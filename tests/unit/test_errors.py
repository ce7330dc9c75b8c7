from __future__ import annotations

from shiftsync.errors import (
    EXIT_ACCESS,
    EXIT_CONFIG,
    AccessError,
    ConfigError,
    ShiftsyncError,
    StatementError,
)


def test_exit_codes_follow_the_tree() -> None:
    assert ConfigError("x").exit_code == EXIT_CONFIG
    assert AccessError("x").exit_code == EXIT_ACCESS
    assert StatementError("x", statement_id="abc").exit_code == ShiftsyncError("x").exit_code


def test_message_carries_the_fix() -> None:
    error = ConfigError(
        "shiftsync.yaml: connections.main.region: 'mars' is not a region",
        fix="use an AWS region such as us-east-1",
    )
    assert str(error).splitlines() == [
        "shiftsync.yaml: connections.main.region: 'mars' is not a region",
        "  fix: use an AWS region such as us-east-1",
    ]
