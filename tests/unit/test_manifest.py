"""The UNLOAD manifest and the staging names: pure functions, no S3."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shiftsync.config import UnloadConfig
from shiftsync.errors import SourceError
from shiftsync.redshift.sql import build_unload_sql
from shiftsync.redshift.unload import (
    Manifest,
    StagingLocation,
    new_run_id,
    parse_manifest,
    path_component,
    staging_location,
)

ROLE = "arn:aws:iam::123456789012:role/redshift-unload"
LOCATION = StagingLocation("stage", "shiftsync/run1/public.venue/abc_")

# The shape of AWS's MANIFEST VERBOSE example (r_UNLOAD_command_examples), in our prefix.
AWS_EXAMPLE: dict[str, Any] = {
    "entries": [
        {
            "url": "s3://stage/shiftsync/run1/public.venue/abc_0000_part_00.parquet",
            "meta": {"content_length": 32295, "record_count": 10},
        },
        {
            "url": "s3://stage/shiftsync/run1/public.venue/abc_0001_part_00.parquet",
            "meta": {"content_length": 32771, "record_count": 20},
        },
    ],
    "schema": {
        "elements": [
            {"name": "venueid", "type": {"base": "integer"}},
            {"name": "venuename", "type": {"base": "character varying", "max_length": 100}},
        ]
    },
    "meta": {"content_length": 65066, "record_count": 30},
    "author": {"name": "Amazon Redshift", "version": "1.0.0"},
}


def manifest(document: Any) -> Manifest:
    return parse_manifest(json.dumps(document), table="public.venue", location=LOCATION)


def bad(document: Any, match: str) -> SourceError:
    with pytest.raises(SourceError, match=match) as raised:
        manifest(document)
    assert "public.venue" in raised.value.message
    assert raised.value.fix is not None
    return raised.value


def with_entries(*entries: Any, **top: Any) -> dict[str, Any]:
    return {"entries": list(entries), **top}


def entry(name: str, length: Any = 10, count: Any = 1) -> dict[str, Any]:
    return {
        "url": f"s3://stage/{LOCATION.name_prefix}{name}",
        "meta": {"content_length": length, "record_count": count},
    }


# ---------------------------------------------------------------- parse_manifest


def test_parse_the_verbose_manifest() -> None:
    parsed = manifest(AWS_EXAMPLE)
    assert [e.key for e in parsed.entries] == [
        "shiftsync/run1/public.venue/abc_0000_part_00.parquet",
        "shiftsync/run1/public.venue/abc_0001_part_00.parquet",
    ]
    assert {e.bucket for e in parsed.entries} == {"stage"}
    assert [(e.content_length, e.record_count) for e in parsed.entries] == [
        (32295, 10),
        (32771, 20),
    ]
    assert parsed.record_count == 30
    assert parsed.content_length == 65066
    assert parsed.column_names == ("venueid", "venuename")


def test_parse_a_plain_manifest_without_counts() -> None:
    parsed = manifest({"entries": [{"url": f"s3://stage/{LOCATION.name_prefix}0000_part_00"}]})
    assert parsed.entries[0].content_length is None
    assert parsed.entries[0].record_count is None
    assert parsed.record_count is None
    assert parsed.column_names == ()


def test_parse_bytes_and_an_empty_entry_list() -> None:
    parsed = parse_manifest(b'{"entries": []}', table="t")
    assert parsed.entries == ()


def test_without_a_location_any_bucket_is_accepted() -> None:
    parsed = parse_manifest(json.dumps({"entries": [{"url": "s3://other/x"}]}), table="t")
    assert parsed.entries[0].bucket == "other"


def test_not_json_is_refused() -> None:
    with pytest.raises(SourceError, match="not JSON"):
        parse_manifest("{entries", table="public.venue")


@pytest.mark.parametrize("document", [[], {"entries": {}}, {"files": []}, "text"])
def test_a_document_without_an_entries_list_is_refused(document: Any) -> None:
    bad(document, "no entries list")


@pytest.mark.parametrize(
    "item",
    [{"url": "https://stage/x"}, {"url": 3}, {}, "s3://stage/x", {"url": "s3://stage/"}],
)
def test_an_entry_without_an_s3_url_is_refused(item: Any) -> None:
    bad(with_entries(item), "no s3:// url")


def test_a_repeated_part_is_refused() -> None:
    bad(with_entries(entry("a"), entry("a")), "repeats")


def test_a_part_outside_the_reads_prefix_is_refused() -> None:
    bad(with_entries({"url": "s3://stage/shiftsync/run1/public.venue/zzz_0000"}), "outside")


def test_a_part_in_another_bucket_is_refused() -> None:
    bad(with_entries({"url": f"s3://elsewhere/{LOCATION.name_prefix}0000"}), "outside")


@pytest.mark.parametrize("value", [-1, "10", 1.5, True])
def test_counts_must_be_whole_non_negative_numbers(value: Any) -> None:
    bad(with_entries(entry("a", length=value)), "content_length")
    bad(with_entries(entry("a", count=value)), "record_count")


def test_totals_that_disagree_with_the_parts_are_refused() -> None:
    document = with_entries(entry("a", count=2), entry("b", count=3), meta={"record_count": 6})
    error = bad(document, "5 rows")
    assert "6" in error.message


def test_totals_are_not_checked_when_a_part_has_no_count() -> None:
    document = with_entries(entry("a", count=None), meta={"record_count": 6})
    assert manifest(document).record_count == 6


def test_a_meta_that_is_not_an_object_is_refused() -> None:
    bad(with_entries({"url": f"s3://stage/{LOCATION.name_prefix}a", "meta": []}), "meta")
    bad(with_entries(meta=[]), "meta")


# ---------------------------------------------------------------- staging names


def test_plain_names_stay_as_they_are() -> None:
    assert path_component("sales") == "sales"
    assert path_component("Sales_2024-x") == "Sales_2024-x"


@pytest.mark.parametrize(
    "name", ["Odd Schema", "Mixed Case", 'quo"te', "ünïcödé", "a.b", "a/b", ""]
)
def test_other_names_become_safe_and_keep_a_hash(name: str) -> None:
    safe = path_component(name)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", safe)
    assert re.search(r"-[0-9a-f]{8}$", safe)


def test_names_that_look_alike_stay_apart() -> None:
    assert path_component("a b") != path_component("a_b")
    assert path_component("a.b") != path_component("a_b")
    assert path_component("a b") == path_component("a b")


def test_a_long_name_is_shortened() -> None:
    assert len(path_component("x " * 200)) <= 60 + 9


def test_staging_location_layout() -> None:
    unload = UnloadConfig(bucket="stage", prefix="shiftsync/")
    location = staging_location(unload, "run-1", "public", "sales", read_id="r1")
    assert location.bucket == "stage"
    assert location.name_prefix == "shiftsync/run-1/public.sales/r1_"
    assert location.uri == "s3://stage/shiftsync/run-1/public.sales/r1_"
    assert location.manifest_key == "shiftsync/run-1/public.sales/r1_manifest"


def test_each_read_gets_its_own_prefix() -> None:
    unload = UnloadConfig(bucket="stage")
    first = staging_location(unload, "run", "public", "sales")
    second = staging_location(unload, "run", "public", "sales")
    assert first.name_prefix != second.name_prefix
    assert first.name_prefix.rsplit("/", 1)[0] == second.name_prefix.rsplit("/", 1)[0]


def test_odd_names_give_a_location_unload_accepts() -> None:
    unload = UnloadConfig(bucket="stage", prefix="x/")
    location = staging_location(unload, new_run_id(), "Odd Schema", 'it\'s "Mixed"')
    sql = build_unload_sql("SELECT 1", location.uri, ROLE)
    assert location.uri in sql


def test_a_run_id_that_cannot_be_a_key_is_refused() -> None:
    with pytest.raises(SourceError, match="run id"):
        staging_location(UnloadConfig(bucket="stage"), "../x", "public", "t")


def test_run_ids_sort_by_time_and_are_unique() -> None:
    moment = datetime(2024, 1, 31, 12, 0, 5, tzinfo=UTC)
    run_id = new_run_id(moment)
    assert run_id.startswith("20240131T120005Z-")
    assert new_run_id(moment) != run_id
    later = new_run_id(moment + timedelta(seconds=1))
    assert later > run_id


def test_run_ids_are_in_utc() -> None:
    moment = datetime(2024, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert new_run_id(moment).startswith("20240131T120000Z-")
