"""Which Iceberg catalog a destination commits through, and how it is opened.

`sql` keeps the catalog in a database through SQLAlchemy: a SQLite file in the workspace by
default (one machine), or PostgreSQL (`postgresql+psycopg://…`) when several machines or
engines share the tables. `rest` is an Iceberg REST catalog (Polaris, Nessie, Lakekeeper,
Tabular, S3 Tables…); `glue` is the AWS Glue Data Catalog, reached with boto3's configuration.
The warehouse (where data and metadata files go) is a local folder or s3://bucket/prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchNamespaceError,
    NoSuchTableError,
    RESTError,
    TableAlreadyExistsError,
    ValidationError,
    ValidationException,
)

from shiftsync.destinations.lake.s3 import S3Settings, pyiceberg_credentials, pyiceberg_properties
from shiftsync.errors import DestinationError

CatalogKind = Literal["sql", "rest", "glue"]
CATALOG_NAME: Final = "shiftsync"


@dataclass(frozen=True)
class IcebergSettings:
    """Where an Iceberg destination's tables live.

    `uri` is the SQLAlchemy URL of a `sql` catalog or the URL of a `rest` catalog (unused by
    `glue`); `warehouse` is an absolute local folder or s3://bucket/prefix.
    """

    catalog: CatalogKind
    warehouse: str
    namespace: str = "shiftsync"
    uri: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    target_file_size_bytes: int = 4 * 1024 * 1024
    # Who writes the warehouse on S3, for messages (see destinations/identity.py).
    identity: str = ""
    # On S3: written as the source connection's role (`credentials: connection`), which Ray
    # workers assume themselves, so they may write the data files (iceberg/sink.py).
    as_connection: bool = False

    @property
    def is_s3(self) -> bool:
        return self.warehouse.startswith("s3://")

    @property
    def warehouse_url(self) -> str:
        if self.is_s3:
            return self.warehouse.rstrip("/")
        return "file://" + self.warehouse.rstrip("/")

    def describe(self) -> str:
        """The catalog for messages: kind and location, never a password."""
        where = ""
        if self.uri is not None:
            where = f" at {redact_uri(self.uri)}"
        writer = f", written as {self.identity}" if self.identity and self.is_s3 else ""
        return f"Iceberg {self.catalog} catalog{where} (warehouse {self.warehouse}{writer})"


def redact_uri(uri: str) -> str:
    """A URI without its password (`user:***@host`)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest:
        return uri
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else uri


def catalog_properties(settings: IcebergSettings, s3: S3Settings | None) -> dict[str, str]:
    """The properties `load_catalog` gets for `settings` (S3 FileIO settings when on S3)."""
    properties: dict[str, str] = {"type": settings.catalog, "warehouse": settings.warehouse_url}
    if settings.uri is not None and settings.catalog != "glue":
        properties["uri"] = settings.uri
    if s3 is not None:
        properties.update(pyiceberg_properties(s3))
        properties["py-io-impl"] = "pyiceberg.io.pyarrow.PyArrowFileIO"
        if settings.catalog == "glue":
            # The catalog is reached as the identity that writes the warehouse; its endpoint
            # is boto3's own (AWS_ENDPOINT_URL_GLUE or the configuration files), as for S3.
            properties.update(glue_properties(s3))
    properties.update(settings.properties)
    return properties


def glue_properties(s3: S3Settings) -> dict[str, str]:
    """pyiceberg's `glue.*` properties: the region and credentials of the warehouse's writer."""
    return {"glue.region": s3.region} | pyiceberg_credentials(s3, "glue")


def open_catalog(settings: IcebergSettings, s3: S3Settings | None) -> Catalog:
    with catalog_errors(settings, "opening the catalog"):
        return load_catalog(CATALOG_NAME, **catalog_properties(settings, s3))


def close_catalog(catalog: Catalog) -> None:
    """Release a SQL catalog's connection pool (other catalogs hold none worth closing)."""
    if isinstance(catalog, SqlCatalog):
        catalog.engine.dispose()


@contextlib.contextmanager
def catalog_errors(
    settings: IcebergSettings, action: str, table: str | None = None
) -> Iterator[None]:
    """Translate pyiceberg, SQLAlchemy, HTTP and file errors into one DestinationError that
    names the catalog, the table and the action."""
    subject = f"{settings.describe()}" + (f", table {table!r}" if table else "")
    try:
        yield
    except DestinationError:
        raise
    except (CommitFailedException, ValidationException, TableAlreadyExistsError) as exc:
        # ValidationException: pyiceberg retried the commit on the newer table and found the
        # other writer's files conflicting with this load's delete. TableAlreadyExistsError:
        # another writer created the table this load was creating.
        raise DestinationError(
            f"{subject}: {action} failed: another writer committed the table since this load "
            f"started ({exc})",
            fix="give each destination table one writer (one sync), then run the sync again",
        ) from exc
    except ValidationError as exc:
        raise DestinationError(
            f"{subject}: {action} failed: Iceberg refused the change: {exc}",
            fix="run this table once with `shiftsync sync --full-refresh` to rewrite it",
        ) from exc
    except (NoSuchNamespaceError, NoSuchTableError) as exc:
        raise DestinationError(
            f"{subject}: {action} failed: {exc}",
            fix="run `shiftsync check` to create the namespace, then run the sync",
        ) from exc
    except (RESTError, OSError, pa.ArrowException, ValueError, RuntimeError) as exc:
        raise DestinationError(
            f"{subject}: {action} failed: {type(exc).__name__}: {exc}",
            fix="check the catalog is reachable at that address and the warehouse is writable "
            "by the identity that writes this destination (shiftsync check tells which)",
        ) from exc
    except Exception as exc:
        refused = refused_glue_action(exc)
        if refused is not None:
            writer = settings.identity or "the identity of this destination"
            raise DestinationError(
                f"{subject}: {action} failed: {writer} was refused {refused}: {_first_line(exc)}",
                fix=f"allow {refused} for {writer} on the catalog, the database "
                f"{settings.namespace!r} and its tables (`shiftsync policy` prints the "
                "statement this destination needs)",
            ) from exc
        # SQLAlchemy's and botocore's errors: both trees are large and only named here.
        if type(exc).__module__.split(".")[0] in ("sqlalchemy", "botocore", "requests"):
            fix = (
                "check that Glue is reachable in that region (AWS_REGION, "
                "AWS_ENDPOINT_URL_GLUE or catalog_properties glue.region) and run "
                "`shiftsync check`"
                if settings.catalog == "glue"
                else "check the catalog's uri (database reachable, credentials right) and run "
                "`shiftsync check`"
            )
            raise DestinationError(
                f"{subject}: {action} failed: {type(exc).__name__}: {_first_line(exc)}",
                fix=fix,
            ) from exc
        raise


def refused_glue_action(exc: BaseException) -> str | None:
    """The glue: action of a Glue AccessDeniedException, else None."""
    response = getattr(exc, "response", None)
    if type(exc).__module__.split(".")[0] != "botocore" or not isinstance(response, dict):
        return None
    if response.get("Error", {}).get("Code") != "AccessDeniedException":
        return None
    operation = str(getattr(exc, "operation_name", "") or "")
    return f"glue:{operation}" if operation else "a glue: action"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
