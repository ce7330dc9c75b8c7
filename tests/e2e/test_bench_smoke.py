"""`python -m bench --quick` end to end: a stand-in of its own, every case once, both reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers import installed
from bench.report import CASES, TIMED_CASES

REPO = Path(__file__).resolve().parents[2]

# awswrangler, dlt and Sling live in a virtualenv of their own (`python -m bench.peers --install`).
HAS_PEERS = installed()
PEER_CASES = frozenset(
    {"awswrangler-pandas", "dlt-connectorx-duckdb", "dlt-pyarrow-duckdb", "sling-postgres"}
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_bench_writes_every_case(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    markdowns = sorted(tmp_path.glob("*-quick.md"))
    documents = sorted(tmp_path.glob("*-quick.json"))
    assert len(markdowns) == 1, done.stderr[-3000:]
    assert len(documents) == 1
    data = json.loads(documents[0].read_text())
    tables = [t["name"] for t in data["tables"]]
    assert len(tables) == 3

    summaries = {(s["table"], s["case"]): s for s in data["summary"]}
    families = {t["name"]: t["family"] for t in data["tables"]}
    for table in tables:
        assert data["auto"][table]["auto_method"] in ("data_api", "unload")
        # What a snapshot costs is measured on the sales tables only.
        cases = [
            c for c in TIMED_CASES if families[table] == "sales" or not c.startswith("snapshot-")
        ]
        for case in cases:
            summary = summaries[(table, case)]
            if case in PEER_CASES and not HAS_PEERS:
                assert summary["failures"], "the peers are missing: their cases must say so"
                continue
            assert summary["failures"] == [], (table, case, summary["failures"])
            assert summary["seconds"]["n"] == 1
            assert summary["seconds"]["median"] > 0
            assert summary["peak_rss_mb"]["median"] > 0
        # Every reader got every row of the table.
        rows = {summaries[(table, c)]["rows"] for c in cases if summaries[(table, c)]["rows"]}
        assert len(rows) == 1, (table, rows)
    assert done.returncode == (0 if HAS_PEERS else 1), done.stderr[-3000:]

    markdown = markdowns[0].read_text()
    assert "## Ratios and targets" in markdown
    for case in TIMED_CASES:
        assert f"| {CASES[case].label} |" in markdown
    assert "UNLOAD end to end ÷ floor" in markdown
    names = {c["name"] for c in data["checks"]}
    assert "Data API CSV end to end ÷ floor" in names
    assert "auto's pick ÷ the faster method" in names
    assert "shiftsync sync (whole process), peak RSS MB" in names


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_deletes_bench_writes_its_report(tmp_path: Path) -> None:
    """`python -m bench.deletes` at a small size: every case runs and finds its deletes."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.deletes", "--rows", "3000", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    documents = sorted(tmp_path.glob("deletes-*.json"))
    assert len(documents) == 1, done.stderr[-3000:]
    data = json.loads(documents[0].read_text())
    cases = {c["case"]: c for c in data["cases"]}
    assert cases["no change"]["statements"] == 1
    assert cases["37 deleted"]["deleted"] == 37
    assert cases["10% deleted (unload)"]["deleted"] == 300
    assert sorted(tmp_path.glob("deletes-*.md"))
