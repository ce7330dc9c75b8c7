"""`shiftsync init`, `shiftsync policy`, `shiftsync check`: a workspace, its role, the proof."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import typer

from shiftsync.aws.destination_policy import s3_destinations_of
from shiftsync.aws.policy import (
    PolicyFormat,
    render_policy_bundle,
    schemas_read_by,
    template_values,
    trust_principal,
)
from shiftsync.aws.principal import discover_principal
from shiftsync.cli import output
from shiftsync.cli.options import ConnectionArgument, WorkspaceOption, find_workspace
from shiftsync.config import CONFIG_FILE_NAME, ConnectionConfig, config_template
from shiftsync.errors import AccessError
from shiftsync.workspace import Workspace

# The checks and the AWS session load boto3; they are imported where a command needs them, so
# that `--help` and `init` start quickly.
if TYPE_CHECKING:
    from shiftsync.preflight import CheckResult

CHECK_HEADERS: Final = ("status", "check", "detail")


def register(app: typer.Typer) -> None:
    """Add init, policy and check to the root command."""
    app.command("init")(init)
    app.command("policy")(policy)
    app.command("check")(check)


# ---------------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------------


def init(
    directory: Path = typer.Argument(
        Path("."),
        metavar="DIR",
        help="The folder to set up, created if missing (default: the current folder).",
        show_default=False,
    ),
    cluster: bool = typer.Option(
        False,
        "--cluster",
        help="Write a connection to a provisioned cluster (cluster_identifier) instead of a "
        "Redshift Serverless workgroup.",
    ),
) -> None:
    """Create shiftsync.yaml (a commented template) and .shiftsync/ with the external ID.

    An existing shiftsync.yaml and external ID are kept: the external ID is generated once,
    because the role's trust policy names it. With --cluster the template's connection is a
    provisioned cluster (type: redshift_provisioned, cluster_identifier).

    Exit codes: 0 done; 2 the folder cannot be written, or holds a damaged external ID.
    """
    planned = Workspace(directory)
    had_config = planned.config_path.exists()
    had_id = planned.external_id_path.exists()
    workspace = Workspace.init(directory, config_text=config_template(cluster=cluster))
    external_id = workspace.external_id
    config_note = (
        "kept as it was" if had_config else "a commented template: edit lines marked CHANGE"
    )
    output.echo(f"{'kept' if had_config else 'created'} {workspace.config_path} ({config_note})")
    output.echo(f"workspace state in {workspace.dot_dir}/ (external ID, sync state, run history)")
    output.echo(f"external ID: {external_id}{'' if had_id else ' (new)'}")
    output.echo(
        "  the role's trust policy must require it (sts:ExternalId). It is not a secret, but "
        "keep it: the trust policy names it."
    )
    if had_config and not had_id:
        output.note(
            f"note: {CONFIG_FILE_NAME} existed but {workspace.external_id_path} did not, so a "
            "new external ID was generated. If a role already trusts an earlier one, write that "
            "ID into the file instead."
        )
    here = workspace.folder == Path.cwd().resolve()
    output.echo("next:")
    if not here:
        output.echo(f"  cd {workspace.folder}")
    target = "cluster_identifier" if cluster else "workgroup"
    output.echo(f"  edit {CONFIG_FILE_NAME}: region, {target}, database, role_arn (unload: too)")
    output.echo("  shiftsync policy --format terraform > shiftsync-role.tf   # the role to create")
    output.echo("  shiftsync check                                            # proves it works")


# ---------------------------------------------------------------------------------------------
# policy
# ---------------------------------------------------------------------------------------------


def policy(
    connection: ConnectionArgument = None,
    fmt: PolicyFormat = typer.Option(
        "json",
        "--format",
        "-f",
        help="json (trust_policy, permission_policy, database_grants, namespace_association, "
        "and unload_role when UNLOAD uses a role of its own), terraform or cloudformation.",
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Print the IAM role a connection needs: trust policy, permission policy, grants.

    The document goes to stdout, so it can be redirected to a file; notes go to stderr. The
    trust policy names principal_arn of the connection, or else the identity shiftsync runs
    as (sts:GetCallerIdentity), and requires this workspace's external ID. With UNLOAD it
    also trusts Redshift (redshift.amazonaws.com, and redshift-serverless.amazonaws.com for a
    workgroup) for the role's database user only, and says how to associate the role with the
    namespace or the cluster. On a provisioned cluster the permission policy holds the action
    of its login (GetClusterCredentialsWithIAM, GetClusterCredentials with db_user, or
    GetSecretValue with secret_arn). The database grants are for the schemas the connection's
    syncs read; values still as in the template (account 123456789012) are warned about.

    Exit codes: 0 printed; 2 configuration error (shiftsync.yaml, connection name, external
    ID); 3 no AWS credentials to find the principal with (set principal_arn to do without).
    """
    found = find_workspace(workspace)
    config = found.config
    name, conn = config.connection(connection)
    external_id = found.external_id
    principal, origin = discover_principal(name, conn)
    schemas, schema_patterns = schemas_read_by(config, name)
    destinations = s3_destinations_of(found.config, name)
    document = render_policy_bundle(conn, principal, external_id, fmt, schemas, destinations)
    output.print_document(document)
    output.note(f"shiftsync policy: connection {name}, role {conn.role_arn}")
    for value in template_values(conn):
        output.note(
            f"warning: {value} is still the template's example: put your own value in "
            f"{found.config_path} (connections.{name}) and run `shiftsync policy` again"
        )
    output.note(f"database grants: schema {', '.join(schemas)} (read by the syncs of {name})")
    if schema_patterns:
        output.note(
            f"  the syncs also read schemas matching {', '.join(schema_patterns)}: run the same "
            "three grants for each such schema (`shiftsync check` lists any still missing)"
        )
    output.note(f"external ID: {external_id} (from {found.external_id_path})")
    for destination, url in destinations:
        output.note(f"destination {destination} ({url}) is written by this role")
    trusted = trust_principal(principal)
    output.note(f"trusted principal: {trusted} (from {origin})")
    if trusted != principal:
        output.note(
            f"  {principal} is a session of that role; if the role has a path, set "
            f"connections.{name}.principal_arn to its full role ARN"
        )
    steps = "create the role from this document, run its database grants as an admin"
    if conn.unload is not None:
        steps += ", associate the role with the " + (
            "cluster" if conn.is_cluster else "workgroup's namespace"
        )
    output.note(f"next: {steps}, then run `shiftsync check`")


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------


def _row(result: CheckResult) -> tuple[str, str, str]:
    detail = result.detail + (f"\nfix: {result.fix}" if result.fix else "")
    return (result.status, result.name, detail)


def _run_plain(found: Workspace, name: str, conn: ConnectionConfig) -> list[CheckResult]:
    """Print each result as it comes (logs show where a slow check is)."""
    from shiftsync.preflight import planned_checks, run_preflight

    widths = output.column_widths([CHECK_HEADERS, *(("skip", n, "") for n in planned_checks(conn))])
    for line in output.plain_row(CHECK_HEADERS, widths):
        output.echo(line)

    def show(result: CheckResult) -> None:
        for line in output.plain_row(_row(result), widths):
            output.echo(line)

    return run_preflight(found, name, progress=show, destinations=True)


def _run_rich(found: Workspace, name: str, conn: ConnectionConfig) -> list[CheckResult]:
    from shiftsync.preflight import planned_checks, run_preflight

    screen = output.console()
    total = len(planned_checks(conn))
    with screen.status(f"checking 1 of {total}…") as status:

        def show(result: CheckResult) -> None:
            status.update(f"checked {result.name} ({result.status}); {total} checks in all…")

        results = run_preflight(found, name, progress=show, destinations=True)
    screen.print(output.rich_table(CHECK_HEADERS, [_row(result) for result in results]))
    return results


def _csv_dialect(found: Workspace, name: str, results: list[CheckResult]) -> dict[str, str] | None:
    """Probe the connection's CSV dialect afresh (csv_probe.py) once every check passed.

    None when the connection reads JSON anyway or a check failed. The verdict is cached for
    syncs; a differing dialect is not a failure: the connection then reads JSON results.
    """
    from shiftsync.preflight import preflight_ok
    from shiftsync.redshift.source import RedshiftSource

    _, conn = found.config.connection(name)
    if conn.result_format != "csv" or not preflight_ok(results):
        return None
    source = RedshiftSource.from_workspace(found, name)
    if source.csv_dialect is None:
        return None
    verdict = source.csv_dialect.verdict(source.api, fresh=True)
    return {"result_format": verdict.result_format, "detail": verdict.detail}


def check(
    connection: ConnectionArgument = None,
    json_output: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON document: external_id, role_arn and checks (name, status, "
        "detail, fix).",
    ),
    workspace: WorkspaceOption = None,
) -> None:
    """Prove that a connection's role works, with the calls a sync makes.

    In order: the caller's identity; sts:AssumeRole with the external ID; AssumeRole without
    it and with a random wrong one, which must both be refused (if not, nothing else runs; the
    same proof is made by every command that assumes the role, once a day); the nine Data API
    actions, each for
    real; SELECT on every table the connection's syncs read; with UNLOAD, a probe object
    through the five S3 actions, the bucket's region and a real UNLOAD, then every probe
    object removed. When UNLOAD uses a role of its own, that role writes the probe files (by
    the real UNLOAD) and shiftsync's role only reads, lists and deletes them. Each check
    prints pass, fail, warn or skip, and its fix. Last, with result_format csv, a probe
    statement read through CSV and JSON tells whether the Data API's CSV reads as shiftsync
    expects; if not, the connection reads JSON results (the `CSV results:` line;
    `csv_dialect` in the JSON).

    Exit codes: 0 every check passed (warnings allowed); 2 configuration error
    (shiftsync.yaml, connection name, external ID); 3 a check failed, including no AWS
    credentials.
    """
    from shiftsync.preflight import preflight_ok, run_preflight

    found = find_workspace(workspace)
    name, conn = found.config.connection(connection)
    external_id = found.external_id
    if json_output:
        results = run_preflight(found, name, destinations=True)
        dialect = _csv_dialect(found, name, results)
        output.print_json(
            {
                "connection": name,
                "role_arn": conn.role_arn,
                "external_id": external_id,
                "ok": preflight_ok(results),
                "checks": [result.as_json() for result in results],
                "csv_dialect": dialect,
            }
        )
    else:
        output.echo(f"shiftsync check: connection {name}, role {conn.role_arn}")
        output.echo(f"external ID: {external_id}")
        terminal = output.is_terminal()
        results = (_run_rich if terminal else _run_plain)(found, name, conn)
        dialect = _csv_dialect(found, name, results)
        if dialect is not None:
            output.echo(f"CSV results: {dialect['result_format']}: {dialect['detail']}")
    failed = [result.name for result in results if result.status in ("fail", "skip")]
    if failed:
        failures = [result.name for result in results if result.status == "fail"]
        raise AccessError(
            f"{len(failures)} of {len(results)} checks failed ({', '.join(failures)}); "
            f"{len(failed) - len(failures)} more were not reached",
            fix="apply each failed check's fix"
            + (" (the fix fields of the JSON)" if json_output else " (above)")
            + ", then run `shiftsync check` again",
        )
    warnings = sum(result.status == "warn" for result in results)
    if not json_output:
        output.echo(
            f"all {len(results)} checks passed"
            + (f" ({warnings} with a warning)" if warnings else "")
        )
