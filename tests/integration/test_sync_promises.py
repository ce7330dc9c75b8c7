"""Promises of `shiftsync sync` that only a real second process or a real signal can show."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shiftsync.engine.pause import PAUSE_ENV, PAUSE_MARKER, RESUME_FILE_ENV
from shiftsync.engine.runs import RunStore
from shiftsync.engine.sync import run_sync
from shiftsync.local.standin import (
    StandIn,
    StandInInfo,
    guide_permission_policy,
    guide_trust_policy,
)
from tests.support import (
    lines_until,
    standin_connection,
    start_shiftsync,
    write_external_id,
    write_sync_config,
)
from tests.support_sync import (
    cli_env,
    make_workspace,
    opened,
    run_cli,
    staged_keys,
    start_paused,
)


def test_a_second_run_of_a_sync_is_refused_while_the_first_runs(
    tmp_path: Path, info: StandInInfo
) -> None:
    folder = tmp_path / "ws"
    make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, ["public.venue"])
    env = cli_env(info)
    first = start_paused(folder, env, "before_commit", "public.venue")
    try:
        second = run_cli(folder, env)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "another run of sync main is in progress" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.communicate(timeout=30)
    # The lock went with the killed process: the next run goes ahead.
    again = run_cli(folder, env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_ctrl_c_during_a_sync_stops_it_cleanly(
    tmp_path: Path, info: StandInInfo, s3: Any, admin: psycopg.Connection[Any]
) -> None:
    folder = tmp_path / "ws"
    tables = [{"include": "public.listing", "method": "unload"}]
    workspace = make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    assert run_sync(workspace, "main").status == "ok"
    with opened(workspace) as destination:
        before = destination.read_table("listing")
    admin.execute("UPDATE public.listing SET numtickets = numtickets WHERE false")

    env = cli_env(info)
    process = start_paused(
        folder, env, "after_first_batch_read", "public.listing", "--full-refresh", "--json"
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    # Nothing half-done: the destination holds the old table, nothing is left staged.
    with opened(workspace) as destination:
        assert destination.read_table("listing").equals(before)
    assert staged_keys(s3, info.bucket) == []
    latest = RunStore(workspace.runs_dir).list()[0]
    assert latest["status"] in {"failed", "interrupted"}, json.dumps(latest)


def test_ctrl_c_cancels_the_statement_a_table_waits_on(
    tmp_path: Path, info: StandInInfo, standin: StandIn
) -> None:
    folder = tmp_path / "ws"
    marker = "ctrl-c-sync-marker"
    tables = [{"include": "public.category", "method": "data_api", "filter": f"'{marker}' <> ''"}]
    make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    delay = standin.faults.add("delay", sql=marker, seconds=60)
    try:
        process = start_shiftsync(folder, cli_env(info), "sync")
        assert standin.faults.wait_fired(delay, 60), "the table's statement never ran"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        standin.faults.clear()
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert standin.engine is not None
    [statement] = [s for s in standin.engine.statements.values() if marker in s.query_string]
    assert statement.done.wait(30)
    # Cancelled, not waited out: without the cancel it would have FINISHED after its delay.
    assert statement.status == "ABORTED"


def test_a_permission_lost_in_the_middle_of_a_sync_exits_3(
    tmp_path: Path, info: StandInInfo, standin: StandIn, admin: psycopg.Connection[Any]
) -> None:
    name = f"loses-{uuid.uuid4().hex[:10]}"
    external_id = f"shiftsync-{uuid.uuid4()}"
    trust = guide_trust_policy(info.principal_arn, external_id)
    role_arn = standin.create_role(name, guide_permission_policy(info.bucket), trust)
    db_user = sql.Identifier(f"IAMR:{name}")
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(db_user))
    admin.execute(sql.SQL("GRANT SELECT ON public.category, public.venue TO {}").format(db_user))
    folder = tmp_path / "ws"
    folder.mkdir()
    write_external_id(folder, external_id)
    write_sync_config(
        folder,
        {**standin_connection(info), "role_arn": role_arn},
        {"dest": {"type": "duckdb", "path": "out.duckdb"}},
        {"destination": "dest", "concurrency": 1, "tables": ["public.category", "public.venue"]},
    )
    resume = tmp_path / "resume"
    env = {
        **cli_env(info),
        PAUSE_ENV: "before_commit:public.category",
        RESUME_FILE_ENV: str(resume),
    }
    process = start_shiftsync(folder, env, "sync", "--json")
    try:
        paused = f"{PAUSE_MARKER} before_commit public.category"
        lines_until(process.stderr, lambda line: line.startswith(paused))
        # An administrator takes ExecuteStatement away while the run is under way.
        standin.set_role_policy(
            name, guide_permission_policy(info.bucket, deny=["redshift-data:ExecuteStatement"])
        )
        resume.touch()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        admin.execute(
            sql.SQL("REVOKE SELECT ON public.category, public.venue FROM {}").format(db_user)
        )
    assert process.returncode == 3, out + err
    document = json.loads(out)
    assert document["exit_code"] == 3
    refused = [t for t in document["tables"] if t["status"] == "failed"]
    assert refused, out
    assert all(t["error_type"] == "AccessError" for t in refused), out
    assert any("redshift-data:ExecuteStatement" in (t["error"] or "") for t in refused), out
