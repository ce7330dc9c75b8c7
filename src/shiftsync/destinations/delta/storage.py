"""Where a Delta destination's tables live, and what makes its commits safe on S3.

A Delta commit is the creation of the next `_delta_log/NNN.json`; two writers must never both
create it. Local disks and most object stores make that creation atomic; AWS S3 does so only
through one of two mechanisms, which delta-rs must be told about:

- `locking: conditional_put`: S3's conditional writes (PutObject with If-None-Match, on AWS
  since 2024 and on MinIO/R2); delta-rs option `conditional_put = etag`;
- `locking: dynamodb`: a DynamoDB table as the lock (`AWS_S3_LOCKING_PROVIDER=dynamodb`,
  `DELTA_DYNAMO_TABLE_NAME`), the same table every writer of the lake must use.

Without either, delta-rs would fall back to an unsafe rename, and two writers could overwrite
each other's commit silently; shiftsync refuses such a destination instead (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shiftsync.destinations.lake.s3 import S3Settings, delta_storage_options
from shiftsync.errors import ConfigError, DestinationError

Locking = Literal["conditional_put", "dynamodb"]


@dataclass(frozen=True)
class DeltaSettings:
    """`root` is an absolute local folder or s3://bucket/prefix; one table per folder."""

    root: str
    locking: Locking | None = None
    dynamodb_table: str | None = None
    target_file_size_bytes: int = 4 * 1024 * 1024
    # Who writes the root on S3, for messages (see destinations/identity.py).
    identity: str = ""
    # On S3: written as the source connection's role (`credentials: connection`), which Ray
    # workers assume themselves, so they may write the data files (delta/sink.py).
    as_connection: bool = False

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def describe(self) -> str:
        writer = f" (written as {self.identity})" if self.identity and self.is_s3 else ""
        return f"Delta root {self.root!r}{writer}"

    def table_uri(self, target: str) -> str:
        if target in ("", ".", "..") or "/" in target or "\\" in target:
            raise DestinationError(
                f"{self.describe()}: {target!r} cannot be a Delta table folder name",
                fix="name the target without '/' or '\\', and not '', '.' or '..'",
            )
        if self.is_s3:
            return f"{self.root.rstrip('/')}/{target}"
        return str(Path(self.root) / target)

    def check_locking(self) -> None:
        """Refuse a Delta root on S3 without a safe commit mechanism (see the module doc)."""
        if not self.is_s3:
            return
        if self.locking is None:
            raise ConfigError(
                f"{self.describe()}: Delta tables on S3 need a way to make commits atomic, and "
                "none is configured, so two writers could silently overwrite each other's "
                "commit",
                fix="add `locking: conditional_put` to this destination (AWS S3, MinIO, R2), or "
                "`locking: dynamodb` with `dynamodb_table: delta_log` (a DynamoDB table shared "
                "by every writer)",
            )
        if self.locking == "dynamodb" and not self.dynamodb_table:
            raise ConfigError(
                f"{self.describe()}: `locking: dynamodb` needs the lock table's name",
                fix="add `dynamodb_table: delta_log` (the DynamoDB table every writer uses)",
            )


def storage_options(settings: DeltaSettings, s3: S3Settings | None) -> dict[str, str]:
    """delta-rs storage options: S3 endpoint, identity and locking (nothing for local)."""
    if s3 is None:
        return {}
    settings.check_locking()
    options = delta_storage_options(s3)
    if settings.locking == "conditional_put":
        options["conditional_put"] = "etag"
    elif settings.locking == "dynamodb":
        options["AWS_S3_LOCKING_PROVIDER"] = "dynamodb"
        options["DELTA_DYNAMO_TABLE_NAME"] = str(settings.dynamodb_table)
    return options
