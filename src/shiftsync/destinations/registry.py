"""From a destination's configuration to a Destination: one dict, no registration on import.

A new destination is one module with a class that satisfies `Destination`, one factory here
and one entry in `FACTORIES`. The lake formats (iceberg, delta) are imported by their
factories only, so their libraries (the `lake` extra) load only when configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow.fs as pafs

from shiftsync.config import (
    DeltaDestinationConfig,
    DestinationConfig,
    DuckDBDestinationConfig,
    IcebergDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
)
from shiftsync.config.models import S3Identity
from shiftsync.config.validators import memory_bytes
from shiftsync.destinations.base import Destination
from shiftsync.destinations.duckdb import DuckDBDestination
from shiftsync.destinations.identity import credentials_for, describe_identity
from shiftsync.destinations.parquet import CredentialsProvider, ParquetDestination
from shiftsync.destinations.postgres import PostgresDestination
from shiftsync.errors import ConfigError


@dataclass(frozen=True)
class DestinationContext:
    """What a destination needs beyond its configuration.

    `folder` resolves relative paths (the workspace folder). For Parquet in S3, `filesystem`
    wins over the credentials the destination's `credentials` setting names:
    `connection_credentials` (the sync's source connection's assumed role) for `connection`
    (`credentials_provider` when no connection is at hand), botocore's default chain for
    `default`, a named profile's for `profile`.
    """

    folder: Path
    filesystem: pafs.FileSystem | None = None
    credentials_provider: CredentialsProvider | None = None
    connection_credentials: CredentialsProvider | None = None


DestinationFactory = Callable[[DestinationConfig, DestinationContext], Destination]


def _mismatch(expected: str, config: DestinationConfig) -> ConfigError:
    return ConfigError(
        f"destination factory {expected!r} was given a {config.type!r} configuration",
        fix="this is a bug in shiftsync: report it with your shiftsync.yaml (without secrets)",
    )


def _duckdb(config: DestinationConfig, context: DestinationContext) -> Destination:
    if not isinstance(config, DuckDBDestinationConfig):
        raise _mismatch("duckdb", config)
    limit = None if config.memory_limit is None else memory_bytes(config.memory_limit)
    return DuckDBDestination(
        config.resolve_path(context.folder),
        memory_limit=limit,
        lock_timeout=config.lock_timeout_seconds,
        reader_copy=config.resolve_reader_copy(context.folder),
    )


def _postgres(config: DestinationConfig, context: DestinationContext) -> Destination:
    if not isinstance(config, PostgresDestinationConfig):
        raise _mismatch("postgres", config)
    return PostgresDestination(config.dsn.get_secret_value(), config.db_schema)


def _parquet(config: DestinationConfig, context: DestinationContext) -> Destination:
    if not isinstance(config, ParquetDestinationConfig):
        raise _mismatch("parquet", config)
    root = config.path if config.is_s3 else str(config.resolve_path(context.folder))
    return ParquetDestination(
        root,
        filesystem=context.filesystem if config.is_s3 else None,
        credentials_provider=_identity(config.credentials, context) if config.is_s3 else None,
        identity=describe_identity(config.credentials),
        as_connection=config.is_s3 and config.credentials == "connection",
    )


def _identity(identity: S3Identity, context: DestinationContext) -> CredentialsProvider | None:
    return credentials_for(identity, context.connection_credentials or context.credentials_provider)


def _local_or_s3(path: str, folder: Path) -> str:
    if path.startswith("s3://"):
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else folder / candidate)


def _iceberg(config: DestinationConfig, context: DestinationContext) -> Destination:
    if not isinstance(config, IcebergDestinationConfig):
        raise _mismatch("iceberg", config)
    from shiftsync.destinations.iceberg import IcebergDestination, IcebergSettings

    uri = config.catalog_uri.get_secret_value() if config.catalog_uri else None
    if uri is None and config.catalog == "sql":
        uri = f"sqlite:///{context.folder / 'iceberg_catalog.db'}"
    settings = IcebergSettings(
        catalog=config.catalog,
        warehouse=_local_or_s3(config.warehouse, context.folder),
        namespace=config.namespace,
        uri=uri,
        properties=dict(config.catalog_properties),
        target_file_size_bytes=config.target_file_size_mb * 1024 * 1024,
        identity=describe_identity(config.credentials),
        as_connection=config.is_s3 and config.credentials == "connection",
    )
    provider = _identity(config.credentials, context) if config.is_s3 else None
    return IcebergDestination(settings, credentials_provider=provider)


def _delta(config: DestinationConfig, context: DestinationContext) -> Destination:
    if not isinstance(config, DeltaDestinationConfig):
        raise _mismatch("delta", config)
    from shiftsync.destinations.delta import DeltaDestination, DeltaSettings

    settings = DeltaSettings(
        root=_local_or_s3(config.path, context.folder),
        locking=config.locking,
        dynamodb_table=config.dynamodb_table,
        target_file_size_bytes=config.target_file_size_mb * 1024 * 1024,
        identity=describe_identity(config.credentials),
        as_connection=config.is_s3 and config.credentials == "connection",
    )
    provider = _identity(config.credentials, context) if config.is_s3 else None
    return DeltaDestination(settings, credentials_provider=provider)


FACTORIES: Final[Mapping[str, DestinationFactory]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
    "parquet": _parquet,
    "iceberg": _iceberg,
    "delta": _delta,
}


def create_destination(config: DestinationConfig, context: DestinationContext) -> Destination:
    """The Destination that `config` describes (not yet connected: call `check()`)."""
    factory = FACTORIES.get(config.type)
    if factory is None:
        raise ConfigError(
            f"destination type {config.type!r} is not known",
            fix=f"use one of: {', '.join(sorted(FACTORIES))}",
        )
    return factory(config, context)
