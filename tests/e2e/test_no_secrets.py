"""No AWS secret reaches any output, log, run record or destination file of a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shiftsync.local.iam import evaluation as iam
from shiftsync.local.standin import StandInInfo
from tests.integration.test_sync import cli_env, make_workspace


def run_cli(folder: Path, info: StandInInfo, *args: str) -> str:
    ran = subprocess.run(
        [sys.executable, "-m", "shiftsync", *args],
        cwd=folder,
        env=cli_env(info),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout + ran.stderr


def test_no_aws_secret_in_outputs_records_or_files(tmp_path: Path, info: StandInInfo) -> None:
    folder = tmp_path / "ws"
    tables = [
        {"include": "public.listing", "method": "unload"},  # pyarrow's S3 gets the keys too
        {"include": "public.category", "method": "data_api"},
    ]
    make_workspace(folder, info, {"type": "duckdb", "path": "out.duckdb"}, tables)
    issued_before = set(iam._all_assumed_access_key_ids())
    texts = [
        run_cli(folder, info, "sync", "--json"),
        run_cli(folder, info, "sync"),
        run_cli(folder, info, "runs", "--json"),
        run_cli(folder, info, "runs", "show", "latest", "--json"),
    ]
    issued = set(iam._all_assumed_access_key_ids()) - issued_before
    assert issued, "the runs assumed the role"
    secrets = {info.secret_access_key}
    for key_id in issued:
        assumed = iam.find_assumed_role(key_id)
        assert assumed is not None
        secrets |= {assumed.secret_access_key, assumed.session_token}
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files)  # the run records were written
    for secret in secrets:
        assert len(secret) >= 16
        for text in texts:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
