"""The web console in a real browser: Debian's chromium, headless, driven by Playwright.

A user's path through the console against the stand-in: add a connection with the guide's
form, read its external ID and policy, test it, add a sync, run it and watch the run page
update until it finishes, run it again, and open the table's chart. A screenshot of each page
is saved in tests/artifacts/console/ (ignored by git) for people to look at.

Needs /usr/bin/chromium (scripts/bootstrap.sh installs the Debian package when missing);
Playwright's own browsers are never downloaded.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg import sql

from shiftsync.engine.sync import PAUSE_ENV, RESUME_FILE_ENV
from shiftsync.local.postgres import free_port
from shiftsync.local.standin import StandInInfo
from shiftsync.serve.app import create_app
from shiftsync.workspace import Workspace
from tests.serve_support import pg_dsn, serve_workspace
from tests.support import wait_until

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def console_url(
    tmp_path: Path, info: StandInInfo, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """`shiftsync serve`'s app under a real uvicorn on 127.0.0.1, in a thread of this test."""
    monkeypatch.setenv("SERVE_TEST_PG_DSN", pg_dsn())
    folder = tmp_path / "ws"
    # The console's sync copies public.category into `local`: one writer per destination
    # table, so the workspace's own sync copies another table.
    serve_workspace(folder, info, tables=("public.event",))
    port = free_port()
    app = create_app(Workspace(folder), scheduler=False)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn starting", seconds=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed")
def test_console_end_to_end(
    console_url: str,
    info: StandInInfo,
    tmp_path: Path,
    copies: Callable[[str, str], str],
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue = copies("venue", "console")
    resume = tmp_path / "resume"
    # The first run stops before committing the venue copy, so the page shows it going.
    monkeypatch.setenv(PAUSE_ENV, f"before_commit:public.{venue}")
    monkeypatch.setenv(RESUME_FILE_ENV, str(resume))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    print(f"\nscreenshots: {ARTIFACTS}")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # CSP violations and failed loads show as console errors, not page errors.
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )

            def shot(name: str) -> None:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

            # 1. The guide's form: a wrong region first, then the real values.
            page.goto(f"{console_url}/connections")
            assert page.locator("#external-id-new").inner_text() == info.external_id
            page.fill("input[name=name]", "console")
            page.fill("input[name=region]", "nowhere")
            page.fill("input[name=workgroup]", info.workgroup)
            page.fill("input[name=database]", info.database)
            page.fill("input[name=role_arn]", info.role_arn)
            page.click("#connection-form button[type=submit]")
            assert "region" in page.locator("#form-error").inner_text()
            shot("01-connection-form-error")
            page.fill("input[name=region]", info.region)
            page.click("#connection-form button[type=submit]")
            page.wait_for_url(f"{console_url}/connections/console")

            # 2. Its external ID (with a copy button) and the policies to paste.
            assert page.locator("#external-id").inner_text() == info.external_id
            policy = page.locator("#policy-json").inner_text()
            assert info.external_id in policy
            assert '"sts:ExternalId"' in policy
            assert page.locator("[data-copy=external-id]").is_visible()
            shot("02-connection")

            # 3. Test connection: each check appears as it passes, with its fix if not.
            page.click("#test-button")
            page.wait_for_selector("#check-result[data-status=passed]")
            statuses = page.locator("#check-result tbody tr td:nth-child(2)").all_inner_texts()
            assert statuses
            assert set(statuses) <= {"pass", "warn"}
            shot("03-connection-tested")

            # 4. A sync from the new connection, then run it and watch the run page.
            page.goto(f"{console_url}/syncs")
            page.fill("#sync-form input[name=name]", "console-sync")
            page.select_option("#sync-form select[name=source]", "console")
            page.select_option("#sync-form select[name=destination]", "local")
            page.fill("#sync-form textarea[name=tables]", f"public.{venue}, public.category")
            page.fill("#sync-form input[name=schedule]", "0 3 * * *")
            page.click("#sync-form button[type=submit]")
            page.wait_for_url(f"{console_url}/syncs")
            assert page.locator("text=0 3 * * *").count() == 1
            shot("04-syncs")
            page.click("#run-console-sync")
            page.wait_for_url(re.compile(r".*/runs/\d{8}T\d{6}Z-[0-9a-f]{6}$"))
            first_run = page.url
            page.wait_for_selector(f"table.tables tr.status-running:has-text('{venue}')")
            page.wait_for_selector("table.tables tr.status-ok:has-text('public.category')")
            assert page.locator("#run-state[data-status=running]").count() == 1
            shot("05-run-going")
            resume.touch()
            page.wait_for_selector("#run-state[data-status=ok]")
            monkeypatch.delenv(PAUSE_ENV)
            shot("06-run-finished")
            text = page.locator("table.tables").inner_text()
            assert page.locator("table.tables tbody tr").count() == 2
            assert text.count("verified") == 2
            assert "data_api" in text

            # New rows in the source; the second run copies them, the chart shows the growth.
            table = sql.Identifier("public", venue)
            admin.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT venueid + 10000, venuename, venuecity, venuestate, "
                    "venueseats FROM {}"
                ).format(table, table)
            )
            page.goto(f"{console_url}/syncs")
            page.click("#run-console-sync")
            page.wait_for_url(re.compile(r".*/runs/\d{8}T\d{6}Z-[0-9a-f]{6}$"))
            assert page.url != first_run
            page.wait_for_selector("#run-state[data-status=ok]")

            # 5. The table's chart: one point per run.
            page.click(f"table.tables tbody tr:has-text('{venue}') a:has-text('chart')")
            page.wait_for_url(re.compile(rf".*/syncs/console-sync/tables/public\.{venue}$"))
            points = page.locator("#rows-chart svg circle title").evaluate_all(
                "titles => titles.map(t => t.textContent)"
            )
            assert [p.rsplit(": ", 1)[1] for p in points] == ["202", "404"]
            assert page.locator("#rows-chart svg circle").count() == 2
            assert page.locator("#time-chart svg circle").count() == 2
            assert page.locator("#rows-chart svg polyline").count() == 1
            shot("07-table-chart")
            page.goto(f"{console_url}/runs")
            statuses = page.locator("table tbody tr td:nth-child(5)").all_inner_texts()
            assert statuses == ["ok", "ok"]
            shot("08-runs")
            # The one 422 is the form sent with a wrong region, on purpose.
            refused = [e for e in errors if "status of 422" in e]
            assert len(refused) == 1, errors
            assert [e for e in errors if e not in refused] == [], "\n".join(errors)
        finally:
            context.close()
    names = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(names) == 8, names
