"""The one place identifiers are quoted for SQL, per dialect.

Redshift, DuckDB and PostgreSQL all follow the SQL standard: an identifier in double quotes,
an inner double quote doubled, so every name (mixed case, spaces, dots, quotes) means itself.
What differs is what each accepts: Redshift names are 1-127 bytes (AWS's "Names and
identifiers"). The PostgreSQL destination composes its SQL with psycopg's `sql.Identifier`,
which applies the same rule.

This module sits below every other layer, so `aws/` (policies' GRANT lines), `redshift/`
(statements) and `destinations/` (DuckDB SQL) share it.
"""

from __future__ import annotations

from typing import Final

from shiftsync.errors import ConfigError

REDSHIFT_MAX_IDENTIFIER_BYTES: Final = 127


def quote_standard(name: str) -> str:
    """Double-quote an identifier, doubling inner double quotes; empty or NUL is refused."""
    if not name:
        raise ConfigError("an empty identifier cannot be put into SQL", fix="name the object")
    if "\x00" in name:
        raise ConfigError(
            f"identifier {name!r} contains a NUL character, which SQL cannot hold",
            fix="rename the object or exclude it",
        )
    return '"' + name.replace('"', '""') + '"'


def quote_redshift(name: str) -> str:
    """A Redshift identifier: the standard quoting, at most 127 bytes of UTF-8."""
    if len(name.encode("utf-8")) > REDSHIFT_MAX_IDENTIFIER_BYTES:
        raise ConfigError(
            f"{name!r} cannot be a Redshift identifier: it is "
            f"{len(name.encode('utf-8'))} bytes long",
            fix=f"use a name of at most {REDSHIFT_MAX_IDENTIFIER_BYTES} bytes",
        )
    return quote_standard(name)


def quote_duckdb(name: str) -> str:
    """A DuckDB identifier: the standard quoting."""
    return quote_standard(name)


__all__ = ["REDSHIFT_MAX_IDENTIFIER_BYTES", "quote_duckdb", "quote_redshift", "quote_standard"]
