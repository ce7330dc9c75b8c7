"""From a destination's configuration to a Destination: one dict, no registration on import.

A new destination is one module with a class that satisfies `Destination`, one factory here
and one entry in `FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow.fs as pafs

from shiftsync.config import (
    DestinationConfig,
    DuckDBDestinationConfig,
    ParquetDestinationConfig,
    PostgresDestinationConfig,
)
from shiftsync.config.validators import memory_bytes
from shiftsync.destinations.base import Destination
from shiftsync.destinations.duckdb import DuckDBDestination
from shiftsync.destinations.parquet import CredentialsProvider, ParquetDestination
from shiftsync.destinations.postgres import PostgresDestination
from shiftsync.errors import ConfigError


@dataclass(frozen=True)
class DestinationContext:
    """What a destination needs beyond its configuration.

    `folder` resolves relative paths (the workspace folder). For Parquet in S3, `filesystem`
    (built from the assumed role's session) wins over `credentials_provider`, which wins over
    botocore's default credentials.
    """

    folder: Path
    filesystem: pafs.FileSystem | None = None
    credentials_provider: CredentialsProvider | None = None


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
        credentials_provider=context.credentials_provider,
    )


FACTORIES: Final[Mapping[str, DestinationFactory]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
    "parquet": _parquet,
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
