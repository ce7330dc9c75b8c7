"""`shiftsync local …`: run the local stand-in of Redshift Serverless."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer

from shiftsync.errors import ConfigError

app = typer.Typer(
    help="Run the local stand-in of Redshift Serverless (STS, IAM, S3, Redshift Data API).",
    no_args_is_help=True,
)


def _read_policy(path: Path | None, what: str) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the {what} ({error.strerror})",
            fix=f"pass the path of a JSON {what} document",
        ) from error
    except ValueError as error:
        raise ConfigError(
            f"{path}: the {what} is not valid JSON ({error})",
            fix="write it with `shiftsync policy --format json`",
        ) from error
    if isinstance(document, dict) and what in ("role policy", "trust policy"):
        # `shiftsync policy --format json` writes a bundle; accept it as well as a bare policy.
        key = "permission_policy" if what == "role policy" else "trust_policy"
        if key in document:
            document = document[key]
    if not isinstance(document, dict) or "Statement" not in document:
        raise ConfigError(
            f"{path}: the {what} has no Statement",
            fix='pass an IAM policy document ({"Version": …, "Statement": […]})',
        )
    return document


@app.command("up")
def up(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 picks a free one)."),
    seed: str = typer.Option("tickit", help="Sample data: tickit or none."),
    scale: float = typer.Option(0.01, help="TICKIT scale: 1 is the real sample (172,456 sales)."),
    deny: list[str] = typer.Option(
        [], "--deny", help="Leave this action out of the role's policy (repeatable)."
    ),
    trust_without_external_id: bool = typer.Option(
        False, help="Trust the platform account WITHOUT the external ID (deliberately unsafe)."
    ),
    role_policy: Path | None = typer.Option(None, help="The role's permission policy (JSON)."),
    trust_policy: Path | None = typer.Option(None, help="The role's trust policy (JSON)."),
    external_id: str | None = typer.Option(
        None, help="The external ID to require (default: a new random one)."
    ),
    json_out: Path | None = typer.Option(
        None, help="Write region, endpoints, keys, role, workgroup … as one JSON object here."
    ),
) -> None:
    """Start the stand-in and keep it up until Ctrl-C or SIGTERM."""
    from shiftsync.local.standin import StandIn, StandInOptions

    options = StandInOptions(
        port=port,
        seed=seed,
        scale=scale,
        deny=tuple(deny),
        trust_without_external_id=trust_without_external_id,
        role_policy=_read_policy(role_policy, "role policy"),
        trust_policy=_read_policy(trust_policy, "trust policy"),
        external_id=external_id,
    )
    started = time.monotonic()
    stand_in = StandIn(options)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stand_in.start()
    try:
        info = stand_in.info
        if json_out is not None:
            json_out.write_text(json.dumps(info.as_json(), indent=2) + "\n")
            json_out.chmod(0o600)
        typer.echo(
            f"# shiftsync stand-in up on {info.endpoint} in {time.monotonic() - started:.1f} s"
        )
        typer.echo(f"# role {info.role_arn}, external ID {info.external_id}")
        typer.echo(f"# workgroup {info.workgroup}, database {info.database}, bucket {info.bucket}")
        if json_out is not None:
            typer.echo(f"# access keys of {info.principal_arn} are in {json_out}")
        for line in info.export_lines():
            typer.echo(line)
        while not stop.wait(0.5):
            pass
    finally:
        stand_in.stop()
        typer.echo("# stand-in stopped", err=True)
