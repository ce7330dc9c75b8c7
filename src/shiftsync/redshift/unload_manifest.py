"""Where an UNLOAD stages its files, and the manifest it writes there (pure).

Each read stages under its own prefix, `<unload.prefix><run_id>/<schema>.<table>/<read id>_`,
so that UNLOAD never meets an old file and cleanup never touches another read's files.
`parse_manifest` reads the `MANIFEST VERBOSE` file that lists the parts with their byte length
and row count, and refuses one that is malformed or points outside the read's prefix.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shiftsync.config import UnloadConfig
from shiftsync.errors import SourceError

MANIFEST_NAME: Final = "manifest"
_SAFE_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")
_S3_URL: Final = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")

# ------------------------------------------------------------------ names (pure)


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time and is unique: `20240131T120000Z-1a2b3c4d`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def path_component(name: str) -> str:
    """A schema or table name as a safe S3 key part: letters, digits, `_` and `-`.

    Any other character becomes `_`, and then a short hash of the real name keeps two
    different names apart (`Odd Schema` → `Odd_Schema-1f0e…`).
    """
    safe = _SAFE_CHARS.sub("_", name)
    if safe == name and name:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:60]}-{digest}"


@dataclass(frozen=True)
class StagingLocation:
    """Where one read's UNLOAD writes: `s3://<bucket>/<name_prefix>…`."""

    bucket: str
    name_prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.name_prefix}"

    @property
    def manifest_key(self) -> str:
        # UNLOAD writes the manifest as <name-prefix>manifest.
        return self.name_prefix + MANIFEST_NAME


def staging_location(
    unload: UnloadConfig, run_id: str, schema: str, table: str, read_id: str | None = None
) -> StagingLocation:
    """`<unload.prefix><run_id>/<schema>.<table>/<read id>_` in the staging bucket."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", run_id):
        raise SourceError(
            f"run id {run_id!r} cannot be part of an S3 key",
            fix="use letters, digits, _ and - in a run id",
        )
    read = read_id or uuid.uuid4().hex[:12]
    folder = f"{unload.prefix}{run_id}/{path_component(schema)}.{path_component(table)}/"
    return StagingLocation(unload.bucket, f"{folder}{read}_")


# ------------------------------------------------------------------ manifest (pure)


@dataclass(frozen=True)
class ManifestEntry:
    url: str
    bucket: str
    key: str
    content_length: int | None
    record_count: int | None


@dataclass(frozen=True)
class Manifest:
    entries: tuple[ManifestEntry, ...]
    record_count: int | None
    content_length: int | None
    column_names: tuple[str, ...]


def _bad_manifest(table: str, where: str, problem: str) -> SourceError:
    return SourceError(
        f"table {table}: the UNLOAD manifest {where} is not usable: {problem}",
        fix="run again; if it repeats, the UNLOAD did not write a MANIFEST VERBOSE file",
    )


def _count(value: object, table: str, where: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad_manifest(table, where, f"{what} is {value!r}, not a count")
    return value


def parse_manifest(
    data: bytes | str, *, table: str, location: StagingLocation | None = None
) -> Manifest:
    """The manifest UNLOAD wrote (`MANIFEST VERBOSE`); SourceError if it is malformed.

    With `location`, every part must lie under that read's prefix: shiftsync never reads
    (or deletes) an object it did not stage.
    """
    where = location.uri + MANIFEST_NAME if location else "file"
    try:
        document = json.loads(data)
    except ValueError as error:
        raise _bad_manifest(table, where, f"not JSON ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise _bad_manifest(table, where, "no entries list")
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for number, item in enumerate(document["entries"]):
        url = item.get("url") if isinstance(item, dict) else None
        match = _S3_URL.match(url) if isinstance(url, str) else None
        if match is None:
            raise _bad_manifest(table, where, f"entry {number} has no s3:// url")
        if url in seen:
            raise _bad_manifest(table, where, f"entry {number} repeats {url}")
        seen.add(str(url))
        bucket, key = match.group("bucket"), match.group("key")
        if location is not None and (
            bucket != location.bucket or not key.startswith(location.name_prefix)
        ):
            raise _bad_manifest(table, where, f"entry {url} lies outside {location.uri}")
        meta = item.get("meta")
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise _bad_manifest(table, where, f"entry {number} has a meta that is not an object")
        entries.append(
            ManifestEntry(
                url=str(url),
                bucket=bucket,
                key=key,
                content_length=_count(meta.get("content_length"), table, where, "content_length"),
                record_count=_count(meta.get("record_count"), table, where, "record_count"),
            )
        )
    total = document.get("meta")
    total = {} if total is None else total
    if not isinstance(total, dict):
        raise _bad_manifest(table, where, "meta is not an object")
    record_count = _count(total.get("record_count"), table, where, "record_count")
    counts = [entry.record_count for entry in entries if entry.record_count is not None]
    every_part_counted = len(counts) == len(entries)
    if record_count is not None and every_part_counted and sum(counts) != record_count:
        raise _bad_manifest(
            table,
            where,
            f"its parts hold {sum(counts)} rows but its total says {record_count}",
        )
    elements = (document.get("schema") or {}).get("elements") or []
    names = tuple(
        str(element["name"])
        for element in elements
        if isinstance(element, dict) and "name" in element
    )
    return Manifest(
        entries=tuple(entries),
        record_count=record_count,
        content_length=_count(total.get("content_length"), table, where, "content_length"),
        column_names=names,
    )


def announced_rows(manifest: Manifest) -> int | None:
    """The manifest's row total, or the sum of its parts' counts, or None if it has neither."""
    if manifest.record_count is not None:
        return manifest.record_count
    counts = [entry.record_count for entry in manifest.entries]
    if any(count is None for count in counts):
        return None
    return sum(count for count in counts if count is not None)
