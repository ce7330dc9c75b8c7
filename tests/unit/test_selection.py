from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import pytest

from shiftsync.config import ColumnSelection, SyncConfig
from shiftsync.engine.selection import (
    TableJob,
    check_table_patterns,
    resolve_table,
    select_tables,
)
from shiftsync.errors import ConfigError
from shiftsync.redshift.types import Column


@dataclass(frozen=True)
class Ref:
    schema: str
    name: str


SOURCE = [
    Ref("public", "sales"),
    Ref("public", "users"),
    Ref("public", "event"),
    Ref("public", "tmp_load"),
    Ref("Odd Schema", "Mixed Case"),
    Ref("other", "sales"),
]


def sync(**values: Any) -> SyncConfig:
    return SyncConfig.model_validate({"source": "w", "destination": "d", **values})


def names(jobs: tuple[TableJob, ...]) -> list[str]:
    return [j.name for j in jobs]


def test_pattern_selects_matching_tables_sorted() -> None:
    selection = select_tables("s", sync(tables=["public.*"]), SOURCE)
    assert names(selection.jobs) == [
        "public.event",
        "public.sales",
        "public.tmp_load",
        "public.users",
    ]
    assert selection.problems == ()


def test_sync_exclude_and_entry_exclude() -> None:
    config = sync(
        tables=[{"include": "public.*", "exclude": ["public.users"]}],
        exclude=["public.tmp_*"],
    )
    assert names(select_tables("s", config, SOURCE).jobs) == ["public.event", "public.sales"]


def test_exact_entry_wins_over_pattern_and_sets_mode() -> None:
    config = sync(
        tables=[
            "public.*",
            {
                "include": "public.sales",
                "mode": "incremental",
                "tracking_field": "saletime",
                "primary_key": ["salesid"],
                "filter": "qtysold > 0",
                "method": "unload",
                "target": "sales_fact",
            },
        ]
    )
    jobs = {j.name: j for j in select_tables("nightly", config, SOURCE).jobs}
    sales = jobs["public.sales"]
    assert sales.mode == "incremental"
    assert sales.tracking_field == "saletime"
    assert sales.primary_key == ("salesid",)
    assert sales.filter == "qtysold > 0"
    assert sales.method == "unload"
    assert sales.target == "sales_fact"
    assert sales.state_key == "nightly:public.sales"
    assert jobs["public.users"].mode == "full_refresh"
    assert jobs["public.users"].primary_key is None


def test_method_falls_back_to_sync_then_connection() -> None:
    config = sync(tables=["public.users", {"include": "public.event", "method": "unload"}])
    jobs = {j.name: j for j in select_tables("s", config, SOURCE, connection_method="auto").jobs}
    assert jobs["public.users"].method == "auto"
    assert jobs["public.event"].method == "unload"
    config = sync(tables=["public.users"], method="data_api")
    (job,) = select_tables("s", config, SOURCE, connection_method="unload").jobs
    assert job.method == "data_api"


def test_default_targets_and_normalized_targets() -> None:
    config = sync(tables=["Odd?Schema.*", "other.*"])
    jobs = {j.name: j.target for j in select_tables("s", config, SOURCE).jobs}
    # A job is named as `tables:` would select it exactly: odd parts double-quoted.
    assert jobs == {
        '"Odd Schema"."Mixed Case"': "Odd Schema_Mixed Case",
        "other.sales": "other_sales",
    }
    config = sync(tables=["Odd?Schema.*"], normalize_names=True)
    (job,) = select_tables("s", config, SOURCE).jobs
    assert job.target == "odd_schema_mixed_case"


def test_unknown_exact_table_is_a_problem_for_that_table_only() -> None:
    config = sync(tables=["public.users", "public.sale"])
    selection = select_tables("s", config, SOURCE)
    assert names(selection.jobs) == ["public.users"]
    (problem,) = selection.problems
    assert problem.table == "public.sale"
    assert "does not exist" in str(problem.error)
    assert "did you mean 'public.sales'" in str(problem.error)


def test_unknown_table_suggests_the_lowercase_name() -> None:
    selection = select_tables("s", sync(tables=["public.USERS"]), SOURCE)
    (problem,) = selection.problems
    assert "'public.users'" in str(problem.error)


def test_excluded_exact_table_is_not_a_problem() -> None:
    config = sync(tables=["public.users", "public.gone"], exclude=["public.gone"])
    assert select_tables("s", config, SOURCE).problems == ()


def test_two_tables_one_target_are_both_problems() -> None:
    config = sync(
        tables=[
            {"include": "public.sales", "target": "sales"},
            {"include": "other.sales", "target": "sales"},
            "public.users",
        ]
    )
    selection = select_tables("s", config, SOURCE)
    assert names(selection.jobs) == ["public.users"]
    assert sorted(p.table for p in selection.problems) == ["other.sales", "public.sales"]
    assert all("'sales'" in str(p.error) for p in selection.problems)


def test_normalized_targets_can_collide() -> None:
    source = [Ref("public", "UserEvents"), Ref("public", "user_events")]
    selection = select_tables("s", sync(tables=["public.*"], normalize_names=True), source)
    assert selection.jobs == ()
    assert len(selection.problems) == 2


def test_reserved_target_is_a_problem() -> None:
    source = [Ref("public", "_shiftsync_state")]
    selection = select_tables("s", sync(tables=["public.*"]), source)
    (problem,) = selection.problems
    assert "_shiftsync" in str(problem.error)


def test_only_narrows_the_run() -> None:
    config = sync(tables=["public.*"])
    selection = select_tables("s", config, SOURCE, only=["public.s*", "users"])
    assert names(selection.jobs) == ["public.sales", "public.users"]


def test_only_pattern_matching_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("--tables 'public.nosuch'")):
        select_tables("s", sync(tables=["public.*"]), SOURCE, only=["public.nosuch"])


def test_targets_that_duckdb_takes_for_one_table_are_refused() -> None:
    source = [Ref("public", "Sales"), Ref("public", "sales"), Ref("public", "users")]
    config = sync(tables=["public.*"])
    duckdb = select_tables("s", config, source, destination_kind="duckdb")
    assert names(duckdb.jobs) == ["public.users"]
    assert sorted(p.table for p in duckdb.problems) == ["public.Sales", "public.sales"]
    assert "'Sales' and 'sales'" in str(duckdb.problems[0].error)
    # PostgreSQL (quoted names) and Parquet folders keep case: two tables.
    for kind in ("postgres", "parquet"):
        selection = select_tables("s", config, source, destination_kind=kind)
        assert names(selection.jobs) == ["public.Sales", "public.sales", "public.users"]


def test_a_target_postgres_would_cut_is_refused() -> None:
    long_name = "marketing_attribution_customer_lifetime_value_by_region_and_segment_q1"
    fits = "x" * 63
    source = [Ref("public", long_name), Ref("public", fits)]
    selection = select_tables("s", sync(tables=["public.*"]), source, destination_kind="postgres")
    assert names(selection.jobs) == [f"public.{fits}"]
    (problem,) = selection.problems
    assert problem.table == f"public.{long_name}"
    assert "70 bytes" in str(problem.error)
    assert "at most 63 bytes" in (problem.error.fix or "")
    duckdb = select_tables("s", sync(tables=["public.*"]), source, destination_kind="duckdb")
    assert len(duckdb.jobs) == 2


def test_selecting_nothing_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="selects no table"):
        select_tables("s", sync(tables=["nothing.*"]), SOURCE)


def test_a_wildcard_pattern_that_matches_nothing_is_a_warning_and_others_are_not() -> None:
    config = sync(
        tables=["public.sal*", "public.slaes*", "public.missing", {"include": "other.*"}],
        exclude=["nope.*"],
    )
    selection = select_tables("nightly", config, SOURCE)
    assert selection.warnings == (
        "warning: sync nightly: tables pattern 'public.slaes*' matches no table of the source; "
        "fix: correct it in shiftsync.yaml (`shiftsync discover` lists the tables the role can "
        "see)",
    )
    # A missing exact name is the table's own problem, not a warning.
    assert [p.table for p in selection.problems] == ["public.missing"]


def test_selecting_nothing_names_the_patterns_that_match_nothing() -> None:
    with pytest.raises(ConfigError) as refused:
        select_tables("s", sync(tables=["nothing.*", "public.x?"]), SOURCE)
    assert refused.value.message == (
        "sync s selects no table of the source: no table matches 'nothing.*', 'public.x?'"
    )


def test_full_refresh_flag_reaches_every_job() -> None:
    jobs = select_tables("s", sync(tables=["public.*"]), SOURCE, full_refresh=True).jobs
    assert all(j.full_refresh for j in jobs)


@pytest.mark.parametrize("pattern", ["a.b.c", "", ".x", "x."])
def test_bad_table_patterns(pattern: str) -> None:
    with pytest.raises(ConfigError):
        check_table_patterns([pattern])


def test_table_pattern_without_schema_means_any_schema() -> None:
    assert check_table_patterns(["sales", "public.x"]) == ("*.sales", "public.x")


# --- resolve_table -------------------------------------------------------------------------

COLUMNS = (
    Column("salesid", "int4", nullable=False),
    Column("buyerid", "int4"),
    Column("email", "varchar", length=100),
    Column("pricepaid", "numeric", precision=8, scale=2),
    Column("saletime", "timestamp"),
    Column("payload", "super"),
    Column("flag", "bool"),
)


def job(**values: Any) -> TableJob:
    entry: dict[str, Any] = {"include": "public.sales", **values}
    config = sync(tables=[entry])
    (found,) = select_tables("s", config, [Ref("public", "sales")]).jobs
    return found


def test_resolve_all_columns_and_catalog_key() -> None:
    plan = resolve_table(job(), COLUMNS, ("salesid",))
    assert [c.name for c in plan.columns] == [c.name for c in COLUMNS]
    assert plan.primary_key == ("salesid",)
    assert plan.tracking is None
    assert plan.hashed == frozenset()
    assert plan.targets["email"] == "email"


def test_resolve_include_exclude_hash() -> None:
    plan = resolve_table(
        job(columns={"exclude": ["payload"], "hash": ["email"]}), COLUMNS, ("salesid",)
    )
    assert "payload" not in [c.name for c in plan.columns]
    assert plan.hashed == frozenset({"email"})
    plan = resolve_table(job(columns={"include": ["salesid", "email"]}), COLUMNS)
    assert [c.name for c in plan.columns] == ["salesid", "email"]


def test_resolve_config_key_overrides_catalog() -> None:
    plan = resolve_table(job(primary_key=["buyerid", "saletime"]), COLUMNS, ("salesid",))
    assert plan.primary_key == ("buyerid", "saletime")


def test_resolve_incremental_tracking_column() -> None:
    plan = resolve_table(job(mode="incremental", tracking_field="saletime"), COLUMNS, ("salesid",))
    assert plan.tracking is not None
    assert plan.tracking.name == "saletime"


@pytest.mark.parametrize(
    ("values", "key", "column"),
    [
        ({"columns": {"include": ["salesid", "nope"]}}, "columns.include", "nope"),
        ({"columns": {"exclude": ["emial"]}}, "columns.exclude", "emial"),
        ({"columns": {"hash": ["mail"]}}, "columns.hash", "mail"),
        ({"primary_key": ["sales_id"]}, "primary_key", "sales_id"),
        ({"mode": "incremental", "tracking_field": "updated"}, "tracking_field", "updated"),
    ],
)
def test_resolve_unknown_columns(values: dict[str, Any], key: str, column: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_table(job(**values), COLUMNS)
    message = str(caught.value)
    assert "public.sales" in message
    assert key in message
    assert repr(column) in message


def test_resolve_suggests_a_close_column() -> None:
    with pytest.raises(ConfigError, match="did you mean 'email'"):
        resolve_table(job(columns={"exclude": ["emial"]}), COLUMNS)


@pytest.mark.parametrize("field", ["payload", "flag"])
def test_resolve_refuses_unorderable_tracking_field(field: str) -> None:
    with pytest.raises(ConfigError, match="no order") as caught:
        resolve_table(job(mode="incremental", tracking_field=field), COLUMNS)
    assert repr(field) in str(caught.value)
    assert caught.value.fix is not None


def test_resolve_incremental_with_excluded_catalog_key_is_refused() -> None:
    entry = job(mode="incremental", tracking_field="saletime", columns={"exclude": ["salesid"]})
    with pytest.raises(ConfigError, match="primary key column 'salesid'"):
        resolve_table(entry, COLUMNS, ("salesid",))


def test_resolve_full_refresh_with_excluded_catalog_key_drops_the_key() -> None:
    plan = resolve_table(job(columns={"exclude": ["salesid"]}), COLUMNS, ("salesid",))
    assert plan.primary_key == ()


def test_resolve_configured_key_that_is_not_copied_is_refused() -> None:
    # The configuration refuses this too; a TableJob built in Python must get the same answer.
    entry = replace(job(primary_key=["buyerid"]), columns=ColumnSelection(exclude=("buyerid",)))
    with pytest.raises(ConfigError, match="primary_key column 'buyerid' is not copied") as caught:
        resolve_table(entry, COLUMNS, ("salesid",))
    assert "public.sales" in str(caught.value)


def test_resolve_normalizes_column_names_and_key() -> None:
    columns = (Column("SalesId", "int4"), Column("buyerID", "int4"))
    plan = resolve_table(job(), columns, ("SalesId",), normalize=True)
    assert plan.targets == {"SalesId": "sales_id", "buyerID": "buyer_id"}
    assert plan.target_key == ("sales_id",)


def test_resolve_normalized_collision_is_refused() -> None:
    columns = (Column("UserId", "int4"), Column("user_id", "int4"))
    with pytest.raises(ConfigError, match="both become 'user_id'"):
        resolve_table(job(), columns, normalize=True)


def test_deletes_default_to_the_sync_and_an_entry_overrides_them() -> None:
    config = sync(
        deletes="soft",
        tables=[
            "public.*",
            {"include": "public.sales", "deletes": "ignore"},
            {"include": "public.event", "mode": "incremental", "tracking_field": "t",
             "lookback": "2h"},
        ],
    )  # fmt: skip
    jobs = {j.name: j for j in select_tables("s", config, SOURCE).jobs}
    assert (jobs["public.users"].deletes, jobs["public.sales"].deletes) == ("soft", "ignore")
    assert (jobs["public.event"].lookback, jobs["public.users"].lookback) == ("2h", None)


def test_null_tracking_carry_needs_a_key_and_an_incremental_mode() -> None:
    carry = {"mode": "incremental", "tracking_field": "saletime", "null_tracking": "carry"}
    assert resolve_table(job(**carry), COLUMNS, ("salesid",)).primary_key == ("salesid",)
    with pytest.raises(ConfigError, match="null_tracking: carry") as caught:
        resolve_table(job(**carry), COLUMNS)
    assert caught.value.fix is not None
    assert "primary_key" in caught.value.fix
    with pytest.raises(ValueError, match="null_tracking"):
        job(null_tracking="carry")


# --- one writer per destination table ----------------------------------------------------------

FINANCE = [Ref("finance", "orders"), Ref("public", "finance_orders"), Ref("public", "users")]


def test_a_table_named_exactly_wins_over_a_pattern_matched_one_with_its_target() -> None:
    """public.finance_orders (any user may create it) must not replace finance.orders' rows."""
    config = sync(tables=["finance.orders", "public.*"])
    selection = select_tables("s", config, FINANCE)
    assert names(selection.jobs) == ["finance.orders", "public.users"]
    (problem,) = selection.problems
    assert problem.table == "public.finance_orders"
    assert "'finance_orders'" in str(problem.error)
    assert "finance.orders" in str(problem.error)
    assert problem.error.fix is not None
    assert "exclude" in problem.error.fix


def test_a_pattern_matched_table_never_takes_another_syncs_exact_target() -> None:
    selection = select_tables(
        "s",
        sync(tables=["public.*"]),
        FINANCE,
        claimed={"finance_orders": "sync nightly (table finance.orders)"},
    )
    assert names(selection.jobs) == ["public.users"]
    (problem,) = selection.problems
    assert "sync nightly (table finance.orders)" in str(problem.error)


def test_two_syncs_naming_one_target_exactly_are_refused() -> None:
    from shiftsync.config import ShiftsyncConfig
    from shiftsync.engine.writers import check_one_writer

    connection = {
        "type": "redshift_serverless",
        "region": "us-east-1",
        "workgroup": "wg-main",
        "database": "dev",
        "role_arn": "arn:aws:iam::123456789012:role/r",
    }
    entry = {"include": "public.sales", "mode": "incremental", "tracking_field": "saletime"}
    config = ShiftsyncConfig.model_validate(
        {
            "connections": {"w": connection},
            "destinations": {
                "d": {"type": "duckdb"},
                "other": {"type": "duckdb", "path": "o.duckdb"},
            },
            "syncs": {
                "hourly": {"source": "w", "destination": "d", "tables": [entry]},
                "nightly": {
                    "source": "w",
                    "destination": "d",
                    "tables": ["public.*", "public.Sales"],
                },
                "elsewhere": {"source": "w", "destination": "other", "tables": ["public.sales"]},
            },
        }
    )
    with pytest.raises(ConfigError, match="sync nightly") as caught:
        check_one_writer(config, "hourly", "duckdb")
    assert "'sales'" in str(caught.value)
    assert caught.value.fix is not None
    assert "target" in caught.value.fix
    # Another destination's sync, or a case DuckDB would not confuse elsewhere, is no writer.
    assert check_one_writer(config, "elsewhere", "duckdb") == {}
    assert set(check_one_writer(config, "hourly", "postgres")) == {"Sales"}


def test_a_column_name_postgres_would_cut_is_refused_there_only() -> None:
    long_name = "a_rather_long_column_name_" + "x" * 60  # 86 bytes: Redshift allows 127
    columns = (*COLUMNS, Column(long_name, "int4"))
    for kind in ("duckdb", "parquet", ""):
        assert long_name in resolve_table(job(), columns, destination_kind=kind).targets
    with pytest.raises(ConfigError, match="86 bytes long") as caught:
        resolve_table(job(), columns, destination_kind="postgres")
    assert repr(long_name) in str(caught.value)
    assert caught.value.fix is not None
    assert "exclude" in caught.value.fix
    excluded = job(columns={"exclude": [long_name]})
    assert long_name not in resolve_table(excluded, columns, destination_kind="postgres").targets
