"""The REST API of `shiftsync serve` on the stand-in, every endpoint, through Starlette's
TestClient (the app in-process, real AWS calls over HTTP to the stand-in, a real DuckDB).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from shiftsync.engine.sync import PAUSE_ENV, RESUME_FILE_ENV
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandInInfo
from shiftsync.serve.app import create_app
from tests.serve_support import (
    HOOK_SECRET,
    PG_PASSWORD,
    TOKEN,
    assert_error_shape,
    pg_dsn,
    poll,
    serve_workspace,
)

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def folder(tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())
    serve_workspace(tmp_path / "ws", info)
    return tmp_path / "ws"


@pytest.fixture
def client(folder: Path) -> Iterator[TestClient]:
    from shiftsync.workspace import Workspace

    app = create_app(Workspace(folder), scheduler=False)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def _finished(client: TestClient, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = poll(
        lambda: client.get(f"/api/v1/runs/{run_id}").json(),
        lambda body: body["status"] not in ("running",),
    )
    return run


def _no_secret(text: str, info: StandInInfo) -> None:
    assert PG_PASSWORD not in text
    assert info.secret_access_key not in text


# --- connections, policies, checks ------------------------------------------------------------


def test_connections_list_and_show(client: TestClient, info: StandInInfo) -> None:
    listed = client.get("/api/v1/connections")
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()] == ["wh"]
    shown = client.get("/api/v1/connections/wh").json()
    assert shown["external_id"] == info.external_id
    assert shown["role_arn"] == info.role_arn
    assert shown["workgroup"] == info.workgroup
    assert shown["unload"] is None
    missing = client.get("/api/v1/connections/nope")
    assert missing.status_code == 404
    assert "wh" in assert_error_shape(missing.json(), "not_found")["fix"]


def test_create_connection_keeps_comments_and_validates(
    client: TestClient, folder: Path, info: StandInInfo
) -> None:
    body = {
        "name": "console",
        "region": info.region,
        "workgroup": info.workgroup,
        "database": info.database,
        "role_arn": info.role_arn,
        "unload": {"bucket": info.bucket, "region": info.region},
    }
    created = client.post("/api/v1/connections", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/connections/console"
    assert created.json()["external_id"] == info.external_id
    assert created.json()["unload"]["bucket"] == info.bucket
    text = (folder / "shiftsync.yaml").read_text()
    assert text.startswith("# a comment that must survive edits from the console\n")
    assert "${SERVE_TEST_PG_DSN}" in text  # not replaced by its value
    again = client.post("/api/v1/connections", json=body)
    assert again.status_code == 409
    assert_error_shape(again.json(), "conflict")
    bad = client.post("/api/v1/connections", json={**body, "name": "other", "region": "moon-1"})
    assert bad.status_code == 422
    assert "region" in assert_error_shape(bad.json(), "invalid_request")["message"]
    assert "other:" not in (folder / "shiftsync.yaml").read_text()


def test_policies_in_every_format(client: TestClient, info: StandInInfo) -> None:
    answer = client.get("/api/v1/connections/wh/policies")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["formats"]) == {"json", "terraform", "cloudformation"}
    trust = json.loads(body["formats"]["json"])["trust_policy"]
    assert info.external_id in json.dumps(trust)
    assert body["principal_arn"] == info.principal_arn
    assert info.external_id in body["formats"]["terraform"]
    assert info.external_id in body["formats"]["cloudformation"]


def test_check_runs_and_reports_each_result(client: TestClient) -> None:
    started = client.post("/api/v1/connections/wh/checks")
    assert started.status_code == 202
    check_id = started.json()["check_id"]
    assert started.headers["location"] == f"/api/v1/checks/{check_id}"
    assert started.json()["planned"][0] == "sts:GetCallerIdentity"
    done = poll(
        lambda: client.get(f"/api/v1/checks/{check_id}").json(),
        lambda body: body["status"] != "running",
    )
    assert done["status"] == "passed", done
    names = [r["name"] for r in done["results"]]
    assert names == done["planned"]
    assert all(r["status"] in ("pass", "warn") for r in done["results"])
    missing = client.get("/api/v1/checks/0000")
    assert missing.status_code == 404
    assert_error_shape(missing.json(), "not_found")


# --- destinations, syncs, runs ----------------------------------------------------------------


def test_destinations_show_no_secret(client: TestClient, info: StandInInfo) -> None:
    answer = client.get("/api/v1/destinations")
    assert answer.status_code == 200
    assert answer.json() == [
        {"name": "local", "type": "duckdb", "path": "out.duckdb"},
        {"name": "pg", "type": "postgres", "schema": "public"},
    ]
    _no_secret(answer.text, info)


def test_create_sync(client: TestClient, folder: Path) -> None:
    created = client.post(
        "/api/v1/syncs",
        json={
            "name": "hourly",
            "source": "wh",
            "destination": "local",
            "tables": ["public.users"],
            "schedule": "0 * * * *",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["schedule"] == "0 * * * *"
    assert created.json()["next_run_at"].endswith(":00:00Z")
    unknown_source = client.post(
        "/api/v1/syncs",
        json={"name": "x", "source": "nope", "destination": "local", "tables": ["public.a"]},
    )
    assert unknown_source.status_code == 422
    assert "nope" in assert_error_shape(unknown_source.json(), "invalid_request")["message"]


def test_run_a_sync_then_read_it_back(client: TestClient, folder: Path, info: StandInInfo) -> None:
    assert client.get("/api/v1/syncs/nightly").json()["last_run"] is None
    started = client.post("/api/v1/syncs/nightly/runs", json={"verify": True})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    assert started.headers["location"] == f"/api/v1/runs/{run_id}"
    run = _finished(client, run_id)
    assert run["status"] == "ok", run
    tables = client.get(f"/api/v1/runs/{run_id}/tables").json()
    assert {t["table"] for t in tables} == {"public.category", "public.venue"}
    for table in tables:
        assert table["status"] == "ok"
        assert table["rows"] > 0
        assert table["method"] == "data_api"
        assert table["verification"]["status"] == "ok"
        assert table["statements"] > 0
    category = next(t for t in tables if t["table"] == "public.category")
    target = category["target"]
    with duckdb.connect(str(folder / "out.duckdb"), read_only=True) as db:
        copied = db.execute(f"select count(*) from {target}").fetchone()
    assert copied is not None
    assert copied[0] == category["rows"]
    listed = client.get("/api/v1/runs", params={"sync": "nightly"}).json()
    assert [r["run_id"] for r in listed] == [run_id]
    assert "pid" not in listed[0]
    assert client.get("/api/v1/syncs/nightly").json()["last_run"]["run_id"] == run_id
    assert client.get("/api/v1/runs/latest").json()["run_id"] == run_id
    history = client.get("/api/v1/syncs/nightly/tables/public.venue/history").json()
    assert [p["run_id"] for p in history] == [run_id]
    assert history[0]["rows"] > 0
    # POST /api/v1/runs starts the same way.
    again = client.post("/api/v1/runs", json={"sync": "nightly", "tables": ["public.venue"]})
    assert again.status_code == 202
    second = _finished(client, again.json()["run_id"])
    assert [t["table"] for t in second["tables"]] == ["public.venue"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'shiftsync_runs_total{status="ok",sync="nightly"} 2.0' in text
    assert 'shiftsync_table_rows_total{sync="nightly",table="public.venue"}' in text
    assert 'shiftsync_data_api_statements_total{sync="nightly",table="public.venue"}' in text
    assert "shiftsync_verification_failures_total" in text
    assert "shiftsync_retries_total" in text
    _no_secret(text, info)


def test_a_sync_started_twice_is_refused_while_it_runs(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resume = tmp_path / "resume"
    monkeypatch.setenv(PAUSE_ENV, "before_commit:public.category")
    monkeypatch.setenv(RESUME_FILE_ENV, str(resume))
    first = client.post("/api/v1/syncs/nightly/runs")
    assert first.status_code == 202
    run_id = first.json()["run_id"]
    try:
        second = client.post("/api/v1/syncs/nightly/runs")
        assert second.status_code == 409
        error = assert_error_shape(second.json(), "sync_running")
        assert run_id in error["message"]
        assert client.post("/api/v1/runs", json={"sync": "nightly"}).status_code == 409
        assert client.get("/api/v1/syncs/nightly").json()["running_run_id"] == run_id
    finally:
        resume.touch()
    assert _finished(client, run_id)["status"] == "ok"
    third = client.post("/api/v1/syncs/nightly/runs")
    assert third.status_code == 202
    _finished(client, third.json()["run_id"])


def test_unknown_things_and_malformed_bodies(client: TestClient) -> None:
    assert_error_shape(client.get("/api/v1/syncs/nope").json(), "not_found")
    assert_error_shape(client.post("/api/v1/syncs/nope/runs").json(), "not_found")
    assert_error_shape(client.get("/api/v1/runs/20000101T000000Z-abcdef").json(), "not_found")
    assert_error_shape(client.get("/api/v1/runs", params={"sync": "nope"}).json(), "not_found")
    assert_error_shape(client.get("/api/v1/no/such/route").json(), "not_found")
    for body, where in (
        (b"{not json", "not valid JSON"),
        (b'{"sync": 3}', "sync"),
        (b'{"sync": "nightly", "surprise": true}', "surprise"),
        (b"[]", "body"),
    ):
        answer = client.post(
            "/api/v1/runs", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert where in assert_error_shape(answer.json(), "invalid_request")["message"]
    limit = client.get("/api/v1/runs", params={"limit": "0"})
    assert limit.status_code == 422
    assert_error_shape(limit.json(), "invalid_request")
    wrong_method = client.delete("/api/v1/syncs")
    assert wrong_method.status_code == 405
    assert_error_shape(wrong_method.json(), "method_not_allowed")


def test_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    paths = set(document["paths"])
    assert paths == {
        "/api/v1/connections",
        "/api/v1/connections/{name}",
        "/api/v1/connections/{name}/policies",
        "/api/v1/connections/{name}/checks",
        "/api/v1/checks/{check_id}",
        "/api/v1/destinations",
        "/api/v1/syncs",
        "/api/v1/syncs/{name}",
        "/api/v1/syncs/{name}/runs",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/tables",
        "/api/v1/syncs/{name}/tables/{table}/history",
    }
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "fix"}
    runs = document["paths"]["/api/v1/syncs/{name}/runs"]["post"]["responses"]
    assert {"202", "401", "404", "409", "422"} <= set(runs)
    assert client.get("/api/v1/docs").status_code == 404  # no Swagger UI: it needs a CDN


# --- tokens, hosts, origins ---------------------------------------------------------------------


def test_token_is_required_when_set(folder: Path, info: StandInInfo) -> None:
    from shiftsync.workspace import Workspace

    app = create_app(Workspace(folder), token=TOKEN, host="0.0.0.0", scheduler=False)  # noqa: S104
    with TestClient(app, base_url="http://192.0.2.10:8765") as client:
        none = client.get("/api/v1/syncs")
        assert none.status_code == 401
        assert none.headers["www-authenticate"] == "Bearer"
        assert_error_shape(none.json(), "unauthorized")
        wrong = client.get("/api/v1/syncs", headers={"Authorization": "Bearer wrong-token"})
        assert wrong.status_code == 401
        assert "wrong" in assert_error_shape(wrong.json(), "unauthorized")["message"]
        assert client.get("/metrics").status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/v1/syncs", headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200
        # The console asks for the token once, and never sends it back.
        page = client.get("/syncs", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
        form = client.get("/login")
        assert TOKEN not in form.text
        csrf = client.cookies["shiftsync_csrf"]
        refused = client.post("/login", data={"token": "nope", "csrf_token": csrf})
        assert refused.status_code == 401
        logged = client.post(
            "/login", data={"token": TOKEN, "csrf_token": csrf}, follow_redirects=False
        )
        assert logged.status_code == 303
        assert TOKEN not in logged.headers.get("set-cookie", "")
        assert client.get("/syncs").status_code == 200
        _no_secret(client.get("/syncs").text, info)


def test_foreign_host_and_origin_are_refused(client: TestClient) -> None:
    rebinding = client.get("/api/v1/syncs", headers={"Host": "evil.example:8765"})
    assert rebinding.status_code == 403
    assert_error_shape(rebinding.json(), "forbidden")
    cross_site = client.post(
        "/api/v1/syncs/nightly/runs", headers={"Origin": "http://evil.example"}
    )
    assert cross_site.status_code == 403
    assert_error_shape(cross_site.json(), "forbidden")


def test_console_forms_need_the_csrf_token(client: TestClient) -> None:
    client.get("/connections")  # sets the CSRF cookie
    missing = client.post("/syncs/nightly/runs")
    assert missing.status_code == 403
    wrong = client.post("/syncs/nightly/runs", headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    assert "CSRF" in wrong.text


def test_a_failing_check_says_which_check_and_the_fix(
    client: TestClient, info: StandInInfo
) -> None:
    account = info.role_arn.split(":")[4]
    created = client.post(
        "/api/v1/connections",
        json={
            "name": "norole",
            "region": info.region,
            "workgroup": info.workgroup,
            "database": info.database,
            "role_arn": f"arn:aws:iam::{account}:role/no-such-role",
        },
    )
    assert created.status_code == 201
    check_id = client.post("/api/v1/connections/norole/checks").json()["check_id"]
    done = poll(
        lambda: client.get(f"/api/v1/checks/{check_id}").json(),
        lambda body: body["status"] != "running",
    )
    assert done["status"] == "failed"
    by_name = {r["name"]: r for r in done["results"]}
    assert by_name["sts:GetCallerIdentity"]["status"] == "pass"
    assume = by_name["sts:AssumeRole"]
    assert assume["status"] == "fail"
    assert assume["fix"]
    assert {r["status"] for r in done["results"][3:]} == {"skip"}
    _no_secret(json.dumps(done), info)


# --- the console's forms (the browser test walks the happy path) -------------------------------


def _form(client: TestClient, **fields: str) -> Any:
    client.get("/connections")
    csrf = client.cookies["shiftsync_csrf"]
    return client.post("/connections", data={"csrf_token": csrf, **fields}, follow_redirects=False)


def test_console_connection_form(client: TestClient, folder: Path, info: StandInInfo) -> None:
    fields = {
        "name": "staged",
        "region": info.region,
        "workgroup": info.workgroup,
        "database": info.database,
        "role_arn": info.role_arn,
    }
    checked_but_empty = _form(client, **fields, unload="on")
    assert checked_but_empty.status_code == 422
    assert "the bucket is empty" in checked_but_empty.text
    assert 'value="staged"' in checked_but_empty.text  # what was typed is kept
    # A bucket typed but the box unchecked: no UNLOAD.
    plain = _form(client, **fields, bucket=info.bucket)
    assert plain.status_code == 303
    assert plain.headers["location"] == "/connections/staged"
    assert client.get("/api/v1/connections/staged").json()["unload"] is None
    staged = _form(
        client,
        **{**fields, "name": "staged2"},
        unload="on",
        bucket=info.bucket,
        bucket_region=info.region,
    )
    assert staged.status_code == 303
    unload = client.get("/api/v1/connections/staged2").json()["unload"]
    assert unload["bucket"] == info.bucket
    assert unload["region"] == info.region
    page = client.get("/connections/staged2")
    assert info.external_id in page.text
    assert f"s3://{info.bucket}/" in page.text
    policies = client.get("/connections/staged2/policies")
    assert f"arn:aws:s3:::{info.bucket}" in policies.text
    assert "redshift.amazonaws.com" in policies.text
    assert _form(client, **fields).status_code == 422  # the name is taken
    missing = client.get("/connections/nope")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "no connection named" in missing.text


def test_no_page_or_answer_shows_a_secret(
    tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every GET of the API and the console, after a run, on a workspace holding secrets."""
    from shiftsync.workspace import Workspace

    hook_token = "hook-path-token-never-shown"
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())
    # Nothing listens there: the alert cannot be delivered.
    monkeypatch.setenv("HOOK_URL", f"http://127.0.0.1:{free_port()}/{hook_token}")
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    folder = tmp_path / "ws"
    alerts = (
        "alerts:\n  webhooks:\n    - url: ${HOOK_URL}\n      secret: ${HOOK_SECRET}\n"
        "      attempts: 1\n"
    )
    serve_workspace(folder, info, tables=("public.category", "public.no_such"), alerts=alerts)
    app = create_app(Workspace(folder), scheduler=False)
    with TestClient(app, base_url=BASE) as client:
        run_id = client.post("/api/v1/syncs/nightly/runs").json()["run_id"]
        run = _finished(client, run_id)
        assert run["status"] == "partial"
        # The undelivered alert is in the run record, its URL named by host only.
        assert any("not delivered to webhook 1 (127.0.0.1)" in n for n in run["notes"])
        check_id = client.post("/api/v1/connections/wh/checks").json()["check_id"]
        poll(
            lambda: client.get(f"/api/v1/checks/{check_id}").json(),
            lambda body: body["status"] != "running",
        )
        paths = [
            "/api/v1/connections",
            "/api/v1/connections/wh",
            "/api/v1/connections/wh/policies",
            f"/api/v1/checks/{check_id}",
            "/api/v1/destinations",
            "/api/v1/syncs",
            "/api/v1/syncs/nightly",
            "/api/v1/runs",
            f"/api/v1/runs/{run_id}",
            f"/api/v1/runs/{run_id}/tables",
            "/api/v1/syncs/nightly/tables/public.category/history",
            "/api/v1/openapi.json",
            "/metrics",
            "/connections",
            "/connections/wh",
            "/connections/wh/policies",
            f"/checks/{check_id}",
            "/syncs",
            "/runs",
            f"/runs/{run_id}",
            f"/runs/{run_id}/tables",
            "/syncs/nightly/tables/public.category",
        ]
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            for secret in (PG_PASSWORD, HOOK_SECRET, hook_token, info.secret_access_key):
                assert secret not in answer.text, (path, secret)
