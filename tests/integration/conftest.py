"""Fixtures of the integration tests (the session's stand-in is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from shiftsync.local.postgres import TempPostgres
from shiftsync.local.standin import StandInInfo
from tests.support_sync import Stand


@pytest.fixture
def stand(
    tmp_path: Path,
    info: StandInInfo,
    admin: psycopg.Connection[Any],
    copies: Callable[[str, str], str],
    request: pytest.FixtureRequest,
) -> Stand:
    """What a sync test on the stand-in sets up: see tests/support_sync.py's Stand."""

    def postgres() -> TempPostgres:
        return cast(TempPostgres, request.getfixturevalue("postgres"))

    return Stand(tmp_path, info, admin, copies, postgres)
