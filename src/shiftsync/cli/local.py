"""`shiftsync local …`: run the local stand-in of Redshift Serverless."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import typer

from shiftsync.errors import ConfigError, StandInError
from shiftsync.json_types import JsonObject, JsonScalar, JsonValue

app = typer.Typer(
    help="Run the local stand-in of Redshift Serverless (STS, IAM, S3, Redshift Data API).",
    no_args_is_help=True,
)


def require_standin() -> None:
    """StandInError unless the `standin` extra is installed: import shiftsync.local.standin
    only after this (it is imported here first, so that a missing package is named)."""
    try:
        # moto is imported late inside the stand-in: ask for it first, for a clear error.
        import moto  # noqa: F401

        import shiftsync.local.standin  # noqa: F401
    except ImportError as error:
        raise StandInError(
            f"the local stand-in needs the `standin` extra ({error.name} is not installed)",
            fix="pip install 'shiftsync[standin]'",
        ) from error


def _read_policy(path: Path | None, what: str) -> JsonObject | None:
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


def _json_out_error(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"--json-out {path}: {reason}",
        fix="pass a file path in a folder that exists and that you can write to",
    )


def _check_json_out(path: Path) -> None:
    """Fail before the stand-in starts when --json-out cannot possibly be written."""
    if path.is_dir():
        raise _json_out_error(path, "is a folder, not a file")
    if not path.parent.is_dir():
        raise _json_out_error(path, f"{path.parent} is not an existing folder")


def write_private_text(path: Path, text: str) -> None:
    """Write text (it holds access keys) readable by its owner only, from the start.

    The file is created 0600 under a temporary name and renamed into place: no moment exists
    when others can read the keys, and an existing file's wider mode is not kept.
    """
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


def _write_private_json(path: Path, document: Mapping[str, object]) -> None:
    """The --json-out file: the stand-in's names and keys, owner-only (write_private_text)."""
    try:
        write_private_text(path, json.dumps(dict(document), indent=2) + "\n")
    except OSError as error:
        raise _json_out_error(path, f"cannot be written ({error.strerror or error})") from error


@app.command("up")
def up(
    port: int = typer.Option(0, min=0, max=65535, help="Port on 127.0.0.1 (0 picks a free one)."),
    seed: Literal["tickit", "none"] = typer.Option("tickit", help="Sample data."),
    scale: float = typer.Option(
        0.01,
        min=0.0,
        help="TICKIT scale, 0 or more: 1 is the real sample (172,456 sales).",
    ),
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
    case_sensitive_identifiers: bool = typer.Option(
        False,
        help="Keep the case of quoted identifiers (Redshift's enable_case_sensitive_identifier; "
        "off by default, as on Redshift).",
    ),
) -> None:
    """Start the stand-in and keep it up until Ctrl-C or SIGTERM.

    Exit codes: 0 stopped by Ctrl-C or SIGTERM (its PostgreSQL is removed); 2 a bad option,
    policy file or --json-out path; 4 the stand-in could not start (port taken, PostgreSQL
    missing).
    """
    require_standin()
    from shiftsync.local.standin import StandIn, StandInOptions

    if json_out is not None:
        _check_json_out(json_out)
    options = StandInOptions(
        port=port,
        seed=seed,
        scale=scale,
        deny=tuple(deny),
        trust_without_external_id=trust_without_external_id,
        role_policy=_read_policy(role_policy, "role policy"),
        trust_policy=_read_policy(trust_policy, "trust policy"),
        external_id=external_id,
        enable_case_sensitive_identifier=case_sensitive_identifiers,
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
            _write_private_json(json_out, info.as_json())
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


# -- `shiftsync local fault …`: inject faults into a running stand-in -------------------------

fault_app = typer.Typer(
    help="Inject faults into a running stand-in: throttling, 5xx errors, dropped connections, "
    "slow, failing or aborted statements, expired credentials, a paused workgroup, vanishing "
    "S3 objects. Each fault fires `--times` times (default 1), then clears itself.",
    no_args_is_help=True,
)
app.add_typer(fault_app, name="fault")

_ENDPOINT_HELP = (
    "The stand-in's URL, as `shiftsync local up` prints it "
    "(default: $AWS_ENDPOINT_URL_REDSHIFT_DATA)."
)


_NOT_A_STAND_IN_FIX = "pass the endpoint `shiftsync local up` prints"


def _not_a_stand_in(endpoint: str, method: str, what: str) -> StandInError:
    return StandInError(
        f"{endpoint} did not answer like a shiftsync stand-in ({what} to {method} "
        "/_shiftsync/faults)",
        fix=_NOT_A_STAND_IN_FIX,
    )


def _parse_endpoint(endpoint: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of --endpoint; ConfigError when it is not an http(s) URL."""
    from urllib.parse import urlsplit

    bad = ConfigError(
        f"--endpoint {endpoint!r} is not an http:// URL with a host and a port from 1 to 65535",
        fix="pass the stand-in's endpoint, e.g. --endpoint http://127.0.0.1:5000",
    )
    try:
        parts = urlsplit(endpoint)
        port = parts.port  # ValueError for a port that is not a number or out of range
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise bad
    return parts.scheme, parts.hostname, port


def _fault_control(
    endpoint: str, method: str, key: str, payload: JsonObject | None = None
) -> JsonValue:
    """One call to the stand-in's fault control endpoint: the answer's `key`.

    Errors become ShiftsyncErrors: a bad endpoint or a refused fault is a ConfigError; no
    answer, or an answer that is not a stand-in's, a StandInError.
    """
    import http.client

    scheme, host, port = _parse_endpoint(endpoint)
    factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    body = json.dumps(payload).encode() if payload is not None else None
    try:
        connection = factory(host, port, timeout=10)
        try:
            connection.request(
                method,
                "/_shiftsync/faults",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            status, raw = response.status, response.read()
        finally:
            connection.close()
    except OSError as error:
        raise StandInError(
            f"cannot reach the stand-in at {endpoint} ({error})",
            fix="start it with `shiftsync local up` and pass the endpoint it prints",
        ) from error
    except http.client.HTTPException as error:
        # Something answered, but not in HTTP (or cut its answer short).
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise _not_a_stand_in(endpoint, method, f"not an HTTP answer, {what}") from error
    except ValueError as error:  # a host name that cannot be encoded, for one
        raise ConfigError(
            f"--endpoint {endpoint!r} cannot be used ({error})",
            fix="pass the stand-in's endpoint, e.g. --endpoint http://127.0.0.1:5000",
        ) from error
    answer: JsonValue
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if status == 400 and isinstance(answer, dict):
        field = answer.get("field", "?")
        raise ConfigError(
            f"the stand-in refused the fault: {answer.get('error')} (field {field})",
            fix="see `shiftsync local fault add --help` for the kinds and their fields",
        )
    if status != 200:
        raise _not_a_stand_in(endpoint, method, f"status {status}")
    if not isinstance(answer, dict) or key not in answer:
        raise _not_a_stand_in(endpoint, method, f"a 200 answer without {key!r}")
    return answer[key]


@fault_app.command("add")
def fault_add(
    kind: str = typer.Argument(
        ...,
        help="throttle, server_error, drop_connection, active_statements, pause_workgroup, "
        "s3_vanish, delay, fail_statement, abort_statement or expire_credentials.",
    ),
    endpoint: str = typer.Option(..., envvar="AWS_ENDPOINT_URL_REDSHIFT_DATA", help=_ENDPOINT_HELP),
    times: int | None = typer.Option(None, help="Fire this many times, then clear (default 1)."),
    service: str | None = typer.Option(None, help="redshift-data (default), s3 or sts."),
    operation: str | None = typer.Option(None, help="The API operation, e.g. ExecuteStatement."),
    key: str | None = typer.Option(None, help="S3 keys to hit (a regular expression)."),
    sql: str | None = typer.Option(None, help="Statements to hit (a regular expression)."),
    message: str | None = typer.Option(None, help="fail_statement: the statement's error."),
    seconds: float | None = typer.Option(None, help="delay: a fixed extra run time."),
    min_seconds: float | None = typer.Option(None, help="delay: a random run time from this…"),
    max_seconds: float | None = typer.Option(None, help="… to this."),
    after_seconds: float | None = typer.Option(None, help="abort_statement: abort after this."),
    status: int | None = typer.Option(None, help="drop_connection: the HTTP status (503)."),
    cut: str | None = typer.Option(None, help="drop_connection: cut the head (default) or body."),
    after_processing: bool | None = typer.Option(
        None,
        "--after-processing/--before-processing",
        help="drop_connection: let the call take effect, then drop its answer.",
    ),
    delete: bool | None = typer.Option(
        None, "--delete/--no-delete", help="s3_vanish: really delete the object."
    ),
) -> None:
    """Add a fault; prints its id.

    Exit codes: 0 added; 2 a bad --endpoint, or a fault the stand-in refused; 4 no shiftsync
    stand-in answers at the endpoint.
    """
    fields: dict[str, JsonScalar] = {
        "times": times,
        "service": service,
        "operation": operation,
        "key": key,
        "sql": sql,
        "message": message,
        "seconds": seconds,
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
        "after_seconds": after_seconds,
        "status": status,
        "cut": cut,
        "after_processing": after_processing,
        "delete": delete,
    }
    payload: JsonObject = {"kind": kind, **{k: v for k, v in fields.items() if v is not None}}
    typer.echo(_fault_control(endpoint, "POST", "id", payload))


@fault_app.command("list")
def fault_list(
    endpoint: str = typer.Option(..., envvar="AWS_ENDPOINT_URL_REDSHIFT_DATA", help=_ENDPOINT_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the faults as JSON."),
) -> None:
    """List the faults with how often each fired.

    Exit codes: 0 listed; 2 a bad --endpoint; 4 no shiftsync stand-in answers at the endpoint.
    """
    answer = _fault_control(endpoint, "GET", "faults")
    shown = {"id", "kind", "times", "fired", "active"}
    listed = answer if isinstance(answer, list) else []
    faults = [fault for fault in listed if isinstance(fault, dict)]
    if (
        not isinstance(answer, list)
        or len(faults) != len(answer)
        or not all(shown <= fault.keys() for fault in faults)
    ):
        raise _not_a_stand_in(endpoint, "GET", "a list of faults without id, kind, fired …")
    if json_output:
        typer.echo(json.dumps(faults, indent=2))
        return
    if not faults:
        typer.echo("no faults")
    for fault in faults:
        fixed = {"id", "kind", "times", "fired", "remaining", "active"}
        details = " ".join(f"{k}={v}" for k, v in fault.items() if k not in fixed)
        state = "active" if fault["active"] else "spent"
        typer.echo(
            f"{fault['id']}  {fault['kind']}  fired {fault['fired']}/{fault['times']}  "
            f"{state}  {details}".rstrip()
        )


@fault_app.command("clear")
def fault_clear(
    endpoint: str = typer.Option(..., envvar="AWS_ENDPOINT_URL_REDSHIFT_DATA", help=_ENDPOINT_HELP),
) -> None:
    """Remove every fault (spent ones too).

    Exit codes: 0 cleared; 2 a bad --endpoint; 4 no shiftsync stand-in answers at the endpoint.
    """
    cleared = _fault_control(endpoint, "DELETE", "cleared")
    typer.echo(f"cleared {cleared} fault{'s' if cleared != 1 else ''}")
