"""`shiftsync demo` as a user runs it: a process of its own (it starts its own stand-in and points
its environment at it), that never touches a workspace it did not write, and that counts a
failed step as failed (exit 1) and goes on with the next."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shiftsync.demo import (
    DEMO_HEADER,
    PLACEHOLDER_BODY,
    check_demo_folder,
    demo_config,
    is_demo_config,
    stamped,
)
from shiftsync.errors import ConfigError
from tests.support import Ran, fake_standin_info

SMALL = ("--scale", "0.01", "--new-rows", "10")


def _environment() -> dict[str, str]:
    """This process's environment without any AWS setting (the session stand-in sets some)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def run_python(cwd: Path, *args: str, code: str | None = None) -> Ran:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "shiftsync"]
    done = subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def shiftsync(cwd: Path, *args: str) -> Ran:
    return run_python(cwd, *args)


# --- the folder: never someone else's workspace ----------------------------------------------


def test_demo_refuses_a_workspace_it_did_not_write(tmp_path: Path) -> None:
    # It used to replace proj/shiftsync.yaml and add its runs to the project's history.
    assert shiftsync(tmp_path, "init", "proj").code == 0
    config = tmp_path / "proj" / "shiftsync.yaml"
    config.write_text(config.read_text() + "# my own notes\n")
    (tmp_path / "proj" / "demo.duckdb").write_bytes(b"mine")
    before = config.read_bytes()
    ran = shiftsync(tmp_path, "demo", "--folder", "proj", *SMALL)
    assert ran.code == 2, ran
    assert "Traceback" not in ran.err
    assert ran.err.startswith("error: --folder proj holds a shiftsync.yaml that `shiftsync demo` ")
    assert "fix: pass --folder an empty (or new) folder" in ran.err
    assert "stand-in" not in ran.out
    assert config.read_bytes() == before
    assert (tmp_path / "proj" / "demo.duckdb").read_bytes() == b"mine"
    assert os.listdir(tmp_path / "proj" / ".shiftsync" / "runs") == []


def test_demo_refuses_its_own_config_once_edited(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    edited = demo_config(fake_standin_info()).replace("region: us-east-1", "region: eu-west-1")
    (folder / "shiftsync.yaml").write_text(edited)
    ran = shiftsync(tmp_path, "demo", *SMALL)
    assert ran.code == 2, ran
    assert "or that was edited since" in ran.err
    assert (folder / "shiftsync.yaml").read_text() == edited


@pytest.mark.parametrize("name", [".shiftsync", "demo.duckdb"])
def test_demo_refuses_a_folder_with_workspace_files_but_no_demo_config(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "mixed"
    (folder / ".shiftsync" if name == ".shiftsync" else folder).mkdir(parents=True)
    if name == "demo.duckdb":
        (folder / name).write_bytes(b"someone's database")
    ran = shiftsync(tmp_path, "demo", "--folder", str(folder), *SMALL)
    assert ran.code == 2, ran
    assert f"holds {name} but no shiftsync.yaml of the demo" in ran.err
    assert not (folder / "shiftsync.yaml").exists()


def test_what_counts_as_the_demos_own_folder(tmp_path: Path) -> None:
    config = tmp_path / "shiftsync.yaml"
    check_demo_folder(tmp_path / "new")  # missing: fine
    check_demo_folder(tmp_path)  # empty: fine
    for text in (demo_config(fake_standin_info()), stamped(PLACEHOLDER_BODY)):
        config.write_text(text)
        assert is_demo_config(config)
        check_demo_folder(tmp_path)
    assert demo_config(fake_standin_info()).startswith(DEMO_HEADER)
    for text in (
        demo_config(fake_standin_info()) + "# one more line\n",
        demo_config(fake_standin_info()).replace("\n", "\r\n"),
        # The header of the demo before it carried a digest: refused, being unverifiable.
        "# Written by `shiftsync demo`. To use a real account, change region\nconnections: {}\n",
        "connections: {}\n",
    ):
        config.write_text(text)
        assert not is_demo_config(config)
        with pytest.raises(ConfigError):
            check_demo_folder(tmp_path)
    config.unlink()
    config.mkdir()
    with pytest.raises(ConfigError, match=r"holds a shiftsync\.yaml"):
        check_demo_folder(tmp_path)


# --- whole runs (a stand-in each: a few seconds) ---------------------------------------------


# Two whole demos, the second with --lake (about 30 s): make test runs one, test_cli_demo_keep.py.
@pytest.mark.slow
def test_demo_runs_in_a_new_folder_and_again_in_its_own(tmp_path: Path) -> None:
    """The second time with --lake: its Iceberg tables in the stand-in's S3 answer the demo's
    query as demo.duckdb does (the demo compares the two answers and fails if they differ)."""
    (tmp_path / "empty").mkdir()
    for attempt, more in ((1, ()), (2, ("--lake",))):
        ran = shiftsync(tmp_path, "demo", "--folder", "empty", *SMALL, *more)
        assert ran.code == 0, f"run {attempt}: {ran}"
        assert "Only the new sales moved" in ran.out
    assert "shiftsync sync tickit_lake: sales and event into Iceberg tables in S3" in ran.out
    assert "The Iceberg tables in S3 give the same answer as demo.duckdb." in ran.out
    config = tmp_path / "empty" / "shiftsync.yaml"
    assert is_demo_config(config)
    assert "s3://shiftsync-lake-222222222222/iceberg" in config.read_text()
    runs = (tmp_path / "empty" / ".shiftsync" / "runs").glob("2*.json")
    assert len(list(runs)) == 5  # two syncs per demo, and the lake sync


FAILING_CHECK = textwrap.dedent(
    """
    import os
    import sys

    import shiftsync.demo as scenario
    from shiftsync.cli import main

    original = scenario.point_environment_at

    def point_with_a_wrong_secret(info):
        original(info)
        os.environ["AWS_SECRET_ACCESS_KEY"] = "not-the-stand-in-secret-0123456789abcdef"

    scenario.point_environment_at = point_with_a_wrong_secret
    sys.argv = ["shiftsync", *sys.argv[1:]]
    main()
    """
)


def test_a_failed_step_exits_1_and_the_demo_goes_on(tmp_path: Path) -> None:
    # With keys AWS refuses, `check` and `sync` raise AccessError. It used to escape the demo:
    # exit 3, and the remaining steps skipped.
    ran = run_python(tmp_path, "demo", "--folder", "demo", *SMALL, code=FAILING_CHECK)
    assert ran.code == 1, ran
    assert "Traceback" not in ran.err
    errors = [line for line in ran.err.splitlines() if line.startswith("error: ")]
    assert len(errors) >= 3, ran.err  # check, the first sync and the second sync
    assert any("AssumeRole" in line or "refused" in line for line in errors)
    assert "== Adding 10 sales in Redshift, then syncing again" in ran.out
    assert "skipped: the sync above failed" in ran.out
    assert "demo finished" in ran.out
    assert "Only the new sales moved" not in ran.out
    assert "not-the-stand-in-secret" not in ran.out + ran.err
