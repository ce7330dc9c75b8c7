"""`shiftsync local …`: run the local stand-in of Redshift Serverless."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Run the local stand-in of Redshift Serverless (STS, IAM, S3, Redshift Data API).",
    no_args_is_help=True,
)
