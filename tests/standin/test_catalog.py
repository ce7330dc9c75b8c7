"""ListDatabases, ListSchemas, ListTables and DescribeTable: patterns, MaxResults, NextToken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shiftsync.local.standin import StandInInfo
from tests.support import TYPES_TABLE_TYPE_NAMES


def _follow(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[list[Any]]:
    """Every page of a listing, following NextToken to the end."""
    answer = call(**kwargs)
    pages = [answer[key]]
    tokens: set[str] = set()
    while answer.get("NextToken"):
        assert answer["NextToken"] not in tokens, "a NextToken came back twice"
        tokens.add(answer["NextToken"])
        answer = call(**kwargs, NextToken=answer["NextToken"])
        pages.append(answer[key])
    return pages


def test_list_databases_shows_the_workgroup_database(redshift_data: Any, info: StandInInfo) -> None:
    databases = redshift_data.list_databases(WorkgroupName=info.workgroup, Database=info.database)[
        "Databases"
    ]
    assert info.database in databases
    assert not {"postgres", "template0", "template1"} & set(databases)


def test_list_schemas_hides_the_stand_in_own(redshift_data: Any, info: StandInInfo) -> None:
    schemas = redshift_data.list_schemas(WorkgroupName=info.workgroup, Database=info.database)[
        "Schemas"
    ]
    assert {"public", "odd schema", "information_schema", "pg_catalog"} <= set(schemas)
    assert "rs_catalog" not in schemas
    assert "pg_toast" not in schemas


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("pub%", ["public"]), ("p_blic", ["public"]), ("%dd sch%", ["odd schema"]), ("zz%", [])],
)
def test_list_schemas_pattern_is_like(
    redshift_data: Any, info: StandInInfo, pattern: str, expected: list[str]
) -> None:
    schemas = redshift_data.list_schemas(
        WorkgroupName=info.workgroup, Database=info.database, SchemaPattern=pattern
    )["Schemas"]
    assert schemas == expected


def test_list_schemas_pages_with_max_results(redshift_data: Any, info: StandInInfo) -> None:
    everything = redshift_data.list_schemas(WorkgroupName=info.workgroup, Database=info.database)[
        "Schemas"
    ]
    pages = _follow(
        redshift_data.list_schemas,
        "Schemas",
        WorkgroupName=info.workgroup,
        Database=info.database,
        MaxResults=1,
    )
    assert all(len(page) == 1 for page in pages)
    assert [schema for page in pages for schema in page] == everything


def test_list_tables_with_patterns_tells_tables_from_views(
    redshift_data: Any, info: StandInInfo
) -> None:
    tables = redshift_data.list_tables(
        WorkgroupName=info.workgroup,
        Database=info.database,
        SchemaPattern="public",
        TablePattern="sal%",
    )["Tables"]
    assert tables == [
        {"name": "sales", "schema": "public", "type": "TABLE"},
        {"name": "sales_summary", "schema": "public", "type": "VIEW"},
    ]


def test_list_tables_pages_to_the_end(redshift_data: Any, info: StandInInfo) -> None:
    everything = redshift_data.list_tables(
        WorkgroupName=info.workgroup, Database=info.database, SchemaPattern="public"
    )["Tables"]
    assert {"users", "venue", "category", "date", "event", "listing", "sales", "types"} <= {
        t["name"] for t in everything
    }
    pages = _follow(
        redshift_data.list_tables,
        "Tables",
        WorkgroupName=info.workgroup,
        Database=info.database,
        SchemaPattern="public",
        MaxResults=3,
    )
    assert len(pages) == -(-len(everything) // 3)
    assert all(len(page) <= 3 for page in pages)
    assert [table for page in pages for table in page] == everything


def test_list_tables_paginator_uses_max_results(redshift_data: Any, info: StandInInfo) -> None:
    paginator = redshift_data.get_paginator("list_tables")
    pages = list(
        paginator.paginate(
            WorkgroupName=info.workgroup,
            Database=info.database,
            SchemaPattern="public",
            PaginationConfig={"PageSize": 2},
        )
    )
    assert len(pages) > 2
    assert all(len(page["Tables"]) <= 2 for page in pages)


def test_list_tables_shows_system_tables(redshift_data: Any, info: StandInInfo) -> None:
    tables = redshift_data.list_tables(
        WorkgroupName=info.workgroup,
        Database=info.database,
        SchemaPattern="pg_catalog",
        TablePattern="pg_class",
    )["Tables"]
    assert tables == [{"name": "pg_class", "schema": "pg_catalog", "type": "SYSTEM TABLE"}]


def test_describe_table_lists_columns_with_redshift_metadata(
    redshift_data: Any, info: StandInInfo
) -> None:
    answer = redshift_data.describe_table(
        WorkgroupName=info.workgroup, Database=info.database, Schema="public", Table="category"
    )
    assert answer["TableName"] == "public.category"
    columns = answer["ColumnList"]
    assert [c["name"] for c in columns] == ["catid", "catgroup", "catname", "catdesc"]
    assert [c["typeName"] for c in columns] == ["int2", "varchar", "varchar", "varchar"]
    assert columns[0]["nullable"] == 0
    # AWS puts a character type's size in precision and 0 in length.
    assert (columns[1]["precision"], columns[1]["length"]) == (10, 0)
    assert all(c["schemaName"] == "public" and c["tableName"] == "category" for c in columns)


def test_describe_table_of_the_types_table_names_redshift_types(
    redshift_data: Any, info: StandInInfo
) -> None:
    pages = _follow(
        redshift_data.describe_table,
        "ColumnList",
        WorkgroupName=info.workgroup,
        Database=info.database,
        Schema="public",
        Table="types",
        MaxResults=5,
    )
    assert len(pages) == 5  # 22 columns, 5 a page
    type_names = {c["name"]: c["typeName"] for page in pages for c in page}
    assert type_names == TYPES_TABLE_TYPE_NAMES


def test_describe_table_handles_identifiers_that_need_quotes(
    redshift_data: Any, info: StandInInfo
) -> None:
    answer = redshift_data.describe_table(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Schema="odd schema",
        Table="mixed case",
    )
    assert answer["TableName"] == "odd schema.mixed case"
    assert len(answer["ColumnList"]) > 1
    assert any(" " in c["name"] or '"' in c["name"] for c in answer["ColumnList"])


def test_describe_table_of_a_view(redshift_data: Any, info: StandInInfo) -> None:
    answer = redshift_data.describe_table(
        WorkgroupName=info.workgroup,
        Database=info.database,
        Schema="public",
        Table="sales_summary",
    )
    assert answer["ColumnList"]


def test_describe_table_of_an_unknown_table_is_not_found(
    redshift_data: Any, info: StandInInfo
) -> None:
    with pytest.raises(ClientError) as missing:
        redshift_data.describe_table(
            WorkgroupName=info.workgroup, Database=info.database, Schema="public", Table="nope"
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_connected_database_is_where_the_catalog_is_read(
    redshift_data: Any, info: StandInInfo
) -> None:
    schemas = redshift_data.list_schemas(
        WorkgroupName=info.workgroup,
        Database=info.database,
        ConnectedDatabase=info.database,
        SchemaPattern="public",
    )["Schemas"]
    assert schemas == ["public"]
    with pytest.raises(ClientError) as unreachable:
        redshift_data.list_schemas(
            WorkgroupName=info.workgroup, Database=info.database, ConnectedDatabase="nope"
        )
    assert unreachable.value.response["Error"]["Code"] == "DatabaseConnectionException"
