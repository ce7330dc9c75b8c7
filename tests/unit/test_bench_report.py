"""The benchmark report's arithmetic and formatting, and the pure parts of the bench runner."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.__main__ import (
    MODES,
    ONE_STATEMENT_CASES,
    RUN_ORDER,
    cases_for,
    parse_client_output,
    sales_subset_sql,
    wide_table_sql,
)
from bench.client import (
    CASE_FUNCTIONS,
    RESULT_MARKER,
    StandInAccess,
    workspace_yaml,
)
from bench.profiling import parse_collapsed, parse_frame, short_path, summarize_collapsed
from bench.report import (
    CASES,
    RunReport,
    Stat,
    TableSpec,
    auto_check,
    direct_wire_checks,
    floor_checks,
    floors,
    fmt_number,
    fmt_stat,
    memory_checks,
    peer_checks,
    ratio,
    render_markdown,
    result_stem,
    sample_seconds,
    stat,
    summarize,
    write_results,
)
from shiftsync.config import ShiftsyncConfig

REPO = Path(__file__).resolve().parents[2]


def sample(
    case: str,
    wall: float,
    *,
    table: str = "public.sales",
    cpu: float = 1.0,
    rss: float = 200.0,
    rows: int = 1_000_000,
    server: float | None = None,
    size: int = 0,
    error: str | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "case": case,
        "table": table,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": rss,
        "rows": rows,
        "bytes": size,
        "server_seconds": server,
        "server_cpu_s": 0.5,
    }
    if error is not None:
        found = {"case": case, "table": table, "error": error}
    return found


# --- statistics ---------------------------------------------------------------------------


def test_stat_takes_the_median_and_range() -> None:
    assert stat([3.0, 1.0, 2.0]) == Stat(2.0, 1.0, 3.0, 3)


def test_stat_of_an_even_count_averages_the_middle_two() -> None:
    assert stat([4.0, 1.0, 2.0, 10.0]).median == 3.0


def test_stat_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="no values"):
        stat([])


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(10.0, 4.0, 2.5), (None, 4.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_ratio(numerator: float | None, denominator: float | None, expected: float | None) -> None:
    assert ratio(numerator, denominator) == expected


def test_server_timed_cases_count_the_statement_duration() -> None:
    assert sample_seconds(sample("floor-unload", 9.0, server=3.5)) == 3.5
    assert sample_seconds(sample("shiftsync-unload-duckdb", 9.0, server=3.5)) == 9.0


def test_a_server_timed_sample_without_a_duration_falls_back_to_wall() -> None:
    assert sample_seconds(sample("floor-statement-csv", 2.0)) == 2.0


def test_summarize_groups_by_table_and_case() -> None:
    summaries = summarize(
        [
            sample("shiftsync-csv-duckdb", 2.0, cpu=1.0, rss=300),
            sample("shiftsync-csv-duckdb", 4.0, cpu=3.0, rss=320),
            sample("shiftsync-csv-duckdb", 3.0, cpu=2.0, rss=310),
            sample("shiftsync-csv-duckdb", 1.0, table="bench.wide", rows=10),
        ]
    )
    assert [(s.table, s.case) for s in summaries] == [
        ("public.sales", "shiftsync-csv-duckdb"),
        ("bench.wide", "shiftsync-csv-duckdb"),
    ]
    first = summaries[0]
    assert first.seconds == Stat(3.0, 2.0, 4.0, 3)
    assert first.cpu_s.median == 2.0
    assert first.peak_rss_mb.high == 320
    assert first.rows_per_s() == pytest.approx(1_000_000 / 3.0)
    assert first.cpu_us_per_row() == pytest.approx(2.0)


def test_failed_samples_are_notes_not_numbers() -> None:
    summaries = summarize(
        [
            sample("awswrangler-pandas", 5.0),
            sample("awswrangler-pandas", 0.0, error="timed out"),
        ]
    )
    assert summaries[0].seconds.n == 1
    assert summaries[0].failures == ("timed out",)


def test_a_case_that_only_failed_has_no_numbers() -> None:
    (summary,) = summarize([sample("awswrangler-pandas", 0.0, error="boom")])
    assert summary.seconds.n == 0
    assert math.isnan(summary.seconds.median)
    assert report.find([summary], "public.sales", "awswrangler-pandas") is None


def test_mb_per_s_divides_the_table_size_by_the_median() -> None:
    (summary,) = summarize([sample("floor-pg-copy", 2.0)])
    assert summary.mb_per_s(100_000_000) == pytest.approx(50.0)
    assert summary.mb_per_s(None) is None


# --- floors, ratios, targets ---------------------------------------------------------------


def run_samples() -> list[dict[str, Any]]:
    return [
        sample("floor-statement-csv", 9.0, server=2.0),
        sample("floor-unload", 9.0, server=3.0),
        sample("floor-duckdb-parquet", 0.5),
        sample("floor-pg-copy", 1.0, size=75_000_000),
        sample("shiftsync-csv-duckdb", 4.0),
        sample("shiftsync-unload-duckdb", 4.2),
        sample("shiftsync-csv-arrow", 3.0, cpu=0.5),
        sample("awswrangler-pandas", 60.0, cpu=40.0),
    ]


def test_floors_add_the_statement_and_duckdb_ingest() -> None:
    found = floors(summarize(run_samples()), "public.sales")
    assert found.data_api == pytest.approx(2.5)
    assert found.unload == pytest.approx(3.5)
    assert found.pg_copy == pytest.approx(1.0)


def test_floor_checks_compare_end_to_end_with_the_floor() -> None:
    csv, unload = floor_checks(summarize(run_samples()), "public.sales")
    assert csv.value == pytest.approx(4.0 / 2.5)
    assert csv.met is True
    assert unload.value == pytest.approx(4.2 / 3.5)
    assert unload.met is True


def test_floor_checks_fail_past_the_target() -> None:
    samples = [*run_samples(), sample("shiftsync-unload-duckdb", 9.0)]
    # Median of 4.2 and 9.0 is 6.6: 6.6 / 3.5 > 1.3.
    _, unload = floor_checks(summarize(samples), "public.sales")
    assert unload.met is False


def test_the_unload_floor_target_is_stricter_at_ten_million_rows() -> None:
    # 4.3 s against a floor of 3.5 s is 1.23×: within 1.3 at 10^6 rows, past 1.2 at 10^7.
    def run(rows: int) -> list[dict[str, Any]]:
        return [
            sample("floor-unload", 9.0, server=3.0, rows=rows),
            sample("floor-duckdb-parquet", 0.5, rows=rows),
            sample("shiftsync-unload-duckdb", 4.3, rows=rows),
        ]

    _, large = floor_checks(summarize(run(10_002_448)), "public.sales")
    _, small = floor_checks(summarize(run(1_000_245)), "public.sales")
    assert (large.target, large.met) == ("≤ 1.2", False)
    assert (small.target, small.met) == ("≤ 1.3", True)


def test_peer_checks_are_like_for_like() -> None:
    speed, cpu = peer_checks(summarize(run_samples()), "public.sales")
    assert speed.value == pytest.approx(20.0)
    assert speed.met is True
    assert cpu.value == pytest.approx(0.5 / 40.0)
    assert cpu.met is True


def test_peer_checks_without_the_peer_are_not_measured() -> None:
    samples = [s for s in run_samples() if s["case"] != "awswrangler-pandas"]
    speed, cpu = peer_checks(summarize(samples), "public.sales")
    assert (speed.value, speed.met, cpu.met) == (None, None, None)


def test_direct_wire_checks_compare_the_whole_process_with_the_fastest_peer() -> None:
    samples = [
        sample("shiftsync-cli-unload-duckdb", 3.0, rss=240),
        sample("dlt-connectorx-duckdb", 4.0),
        sample("dlt-pyarrow-duckdb", 6.0),
        sample("sling-postgres", 8.0),
    ]
    speed, memory = direct_wire_checks(summarize(samples), "public.sales")
    assert speed.value == pytest.approx(0.75)
    assert speed.met is True
    assert speed.note == CASES["dlt-connectorx-duckdb"].label
    assert (memory.value, memory.met) == (240, True)


def test_direct_wire_checks_fail_when_a_peer_is_faster_or_memory_is_above_250_mb() -> None:
    samples = [
        sample("shiftsync-cli-unload-duckdb", 3.0, rss=286),
        sample("sling-postgres", 2.5),
    ]
    speed, memory = direct_wire_checks(summarize(samples), "public.sales")
    assert speed.value == pytest.approx(1.2)
    assert speed.met is False
    assert memory.met is False


def test_direct_wire_checks_without_the_whole_process_case_are_not_measured() -> None:
    assert direct_wire_checks(summarize([sample("sling-postgres", 2.5)]), "public.sales") == []


def test_memory_check_needs_the_ratio_and_the_ceiling() -> None:
    samples = [
        sample("shiftsync-unload-duckdb", 1.0, table="small", rss=300),
        sample("shiftsync-unload-duckdb", 9.0, table="large", rss=330),
        sample("shiftsync-csv-duckdb", 1.0, table="small", rss=300),
        sample("shiftsync-csv-duckdb", 9.0, table="large", rss=420),
    ]
    unload, csv = memory_checks(summarize(samples), "small", "large", label="1e7 ÷ 1e6")
    assert unload.value == pytest.approx(1.1)
    assert unload.met is True
    assert "330 MB ÷ 300 MB" in unload.note
    assert csv.value == pytest.approx(1.4)
    assert csv.met is False


def test_memory_check_fails_above_500_mb_even_when_flat() -> None:
    samples = [
        sample("shiftsync-unload-duckdb", 1.0, table="small", rss=600),
        sample("shiftsync-unload-duckdb", 9.0, table="large", rss=610),
    ]
    (check,) = memory_checks(summarize(samples), "small", "large", label="x")
    assert check.met is False


@pytest.mark.parametrize(
    ("picked", "expected_met", "expected_value"),
    [("data_api", True, 1.0), ("unload", True, 4.2 / 4.0)],
)
def test_auto_check_compares_the_pick_with_the_faster(
    picked: str, expected_met: bool, expected_value: float
) -> None:
    check = auto_check(summarize(run_samples()), "public.sales", picked)
    assert check.met is expected_met
    assert check.value == pytest.approx(expected_value)
    assert "faster: data_api" in check.note


def test_auto_check_fails_when_the_pick_is_much_slower() -> None:
    samples = [sample("shiftsync-csv-duckdb", 2.0), sample("shiftsync-unload-duckdb", 3.0)]
    check = auto_check(summarize(samples), "public.sales", "unload")
    assert check.met is False


def test_auto_check_without_a_pick_is_not_measured() -> None:
    check = auto_check(summarize(run_samples()), "public.sales", None)
    assert check.met is None
    assert check.note == "not measured"


# --- formatting and files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [(None, 2, "–"), (math.nan, 2, "–"), (1234567.8, 2, "1,234,568"), (3.14159, 3, "3.142")],
)
def test_fmt_number(value: float | None, digits: int, text: str) -> None:
    assert fmt_number(value, digits) == text


def test_fmt_stat_shows_the_spread_only_when_there_is_one() -> None:
    assert fmt_stat(Stat(2.0, 1.0, 3.0, 3)) == "2.00 (1.00–3.00)"
    assert fmt_stat(Stat(2.0, 2.0, 2.0, 1)) == "2.00"
    assert fmt_stat(Stat(math.nan, math.nan, math.nan, 0)) == "–"


def test_result_stem_is_date_and_minute() -> None:
    assert result_stem("2025-01-31T09:05:59") == "2025-01-31-0905"


def test_table_labels_name_the_order_of_magnitude() -> None:
    assert TableSpec("public.sales", "sales", "1e6", 1_000_245).label == (
        "sales ~10^6 (1,000,245 rows)"
    )
    assert TableSpec("bench.wide", "wide", "wide", 200_000).label == "wide (200,000 rows)"


def a_report() -> RunReport:
    return RunReport(
        started_at="2025-01-31T09:05:59",
        mode="default",
        environment={"cpus": 2, "scale": 5.8, "page_bytes": 1048576, "reps": "3"},
        tables=[TableSpec("public.sales", "sales", "1e6", 1_000_000)],
        samples=run_samples(),
        auto={"public.sales": {"auto_method": "unload", "auto_reason": "big"}},
    )


def test_markdown_has_the_ratios_then_every_case() -> None:
    text = render_markdown(a_report())
    assert text.index("## Ratios and targets") < text.index("## Results")
    for name in ("floor-pg-copy", "shiftsync-csv-duckdb", "awswrangler-pandas"):
        assert f"| {CASES[name].label} |" in text
    assert "auto picks **unload** (big)" in text
    assert "75.0 MB as CSV" in text
    assert "| Data API CSV ÷ awswrangler, rows/s | public.sales | 20.000 | ≥ 10 | yes |" in text


def test_markdown_marks_a_failed_case() -> None:
    run = a_report()
    run.samples.append(sample("shiftsync-json-duckdb", 0.0, error="SourceError('x')"))
    assert "| shiftsync Data API JSON → DuckDB | failed: SourceError('x') |" in (
        render_markdown(run)
    )


def test_write_results_writes_markdown_and_json(tmp_path: Path) -> None:
    markdown, document = write_results(a_report(), tmp_path)
    assert markdown.name == "2025-01-31-0905.md"
    data = json.loads(document.read_text())
    assert {s["case"] for s in data["summary"]} == {s["case"] for s in run_samples()}
    assert data["tables"][0]["csv_bytes"] == 75_000_000
    assert data["floors"]["public.sales"]["unload"] == pytest.approx(3.5)
    assert any(c["name"] == "UNLOAD end to end ÷ floor" for c in data["checks"])


def test_quick_results_are_named_apart(tmp_path: Path) -> None:
    run = a_report()
    run.mode = "quick"
    markdown, _ = write_results(run, tmp_path)
    assert markdown.name == "2025-01-31-0905-quick.md"


# --- the runner's pure parts ----------------------------------------------------------------


def test_every_case_has_a_function_and_a_place_in_the_run() -> None:
    assert set(CASE_FUNCTIONS) == set(CASES)
    assert set(RUN_ORDER) | {"probe"} == set(CASES)


def test_big_tables_skip_the_one_statement_cases() -> None:
    big = TableSpec("public.sales", "sales", "1e7", 10_000_000)
    cases = cases_for(big, RUN_ORDER)
    assert not ONE_STATEMENT_CASES & set(cases)
    assert "shiftsync-unload-duckdb" in cases
    assert "shiftsync-csv-duckdb" in cases


def test_the_duckdb_floor_needs_the_unload_floor() -> None:
    table = TableSpec("public.sales", "sales", "1e6", 1_000_000)
    assert cases_for(table, ["floor-duckdb-parquet", "floor-pg-copy"]) == ["floor-pg-copy"]
    assert cases_for(table, ["floor-duckdb-parquet", "floor-unload"]) == [
        "floor-unload",
        "floor-duckdb-parquet",
    ]


def test_reps_follow_the_table_size_unless_overridden() -> None:
    mode = MODES["default"]
    small = TableSpec("bench.sales_100000", "sales", "1e5", 100_000)
    big = TableSpec("public.sales", "sales", "1e6", 1_000_245)
    wide = TableSpec("bench.wide", "wide", "wide", 100_000)
    assert mode.reps_for(small, None) == 5
    assert mode.reps_for(big, None) == 3
    assert mode.reps_for(wide, None) == 3
    assert mode.reps_for(big, 7) == 7


def test_client_output_is_the_last_marked_line() -> None:
    out = f'noise\n{RESULT_MARKER}{{"a": 1}}\nmore\n{RESULT_MARKER}{{"a": 2}}\n'
    assert parse_client_output(out) == {"a": 2}
    assert parse_client_output("nothing here") is None


def test_sales_subset_sql_keys_the_first_rows() -> None:
    name, statements = sales_subset_sql(100_000)
    assert name == "bench.sales_100000"
    assert 'CREATE TABLE "bench"."sales_100000" AS SELECT * FROM public.sales' in statements[1]
    assert "salesid <= 100000" in statements[1]
    assert "PRIMARY KEY (salesid)" in statements[2]


def test_wide_table_sql_has_twenty_typed_columns() -> None:
    name, statements = wide_table_sql(500)
    create = statements[1]
    assert name == "bench.wide"
    assert create.count(", ") >= 20
    for kind in ("numeric(38,10)", "timestamptz", "boolean", "double precision", "date"):
        assert kind in create
    assert "generate_series(1::bigint, 500)" in statements[2]


def access() -> StandInAccess:
    return StandInAccess.from_json(
        {
            "region": "us-east-1",
            "endpoints": {"sts": "http://e", "s3": "http://e", "redshift_data": "http://e"},
            "access_key_id": "AKIA",
            "secret_access_key": "secret",
            "principal_arn": "arn:aws:iam::111111111111:user/u",
            "role_arn": "arn:aws:iam::222222222222:role/shiftsync-reader",
            "external_id": "shiftsync-x",
            "workgroup": "shiftsync-demo",
            "database": "dev",
            "bucket": "shiftsync-staging-222222222222",
            "postgres_dsn": "postgresql://postgres@127.0.0.1:1/dev",
        }
    )


def test_access_points_every_aws_endpoint_at_the_stand_in() -> None:
    env = access().environment()
    assert env["AWS_ENDPOINT_URL_REDSHIFT_DATA"] == "http://e"
    assert env["AWS_ENDPOINT_URL_S3"] == env["AWS_ENDPOINT_URL_STS"] == "http://e"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA"


def test_workspace_yaml_is_a_valid_configuration() -> None:
    import yaml

    text = workspace_yaml(access(), method="unload", result_format="json", include="bench.wide")
    config = ShiftsyncConfig.model_validate(yaml.safe_load(text))
    _, connection = config.connection("standin")
    assert connection.method == "unload"
    assert connection.result_format == "json"
    assert connection.unload is not None
    _, sync = config.sync("bench")
    assert sync.select("bench", "wide") is not None
    assert sync.select("public", "sales") is None


# --- profiles ------------------------------------------------------------------------------


def test_parse_frame_reads_function_and_file() -> None:
    frame = parse_frame("DuckDBLoad.write (shiftsync/destinations/duckdb.py:470)")
    assert (frame.function, frame.file) == ("DuckDBLoad.write", "shiftsync/destinations/duckdb.py")


@pytest.mark.parametrize(
    ("path", "short"),
    [
        ("/v/lib/python3.11/site-packages/botocore/parsers.py", "botocore/parsers.py"),
        ("/usr/lib/python3.11/json/decoder.py", "json/decoder.py"),
        ("/work/main/src/shiftsync/redshift/decode.py", "shiftsync/redshift/decode.py"),
        ("bench/client.py", "bench/client.py"),
    ],
)
def test_short_path(path: str, short: str) -> None:
    assert short_path(path) == short


def test_summary_counts_self_and_total_and_leaves_out_imports() -> None:
    lines = [
        "main (a.py:1);read (b.py:2);parse (c.py:3) 30",
        "main (a.py:1);read (b.py:2) 10",
        "main (a.py:1);write (d.py:4) 60",
        "<module> (a.py:1);_find_and_load (<frozen importlib._bootstrap>:1) 500",
        " 7",
        "garbage line",
    ]
    summary = summarize_collapsed(parse_collapsed(lines))
    assert summary.samples == 107
    assert summary.self_counts[0] == ("write (d.py)", 60)
    totals = dict(summary.total_counts)
    assert totals["main (a.py)"] == 100
    assert totals["read (b.py)"] == 40
    assert totals["(native thread, no Python frame)"] == 7
    assert "56.1%" in summary.text(100)


def test_memory_checks_between_other_sizes_are_information_only() -> None:
    samples = [
        sample("shiftsync-unload-duckdb", 1.0, table="small", rss=300),
        sample("shiftsync-unload-duckdb", 9.0, table="large", rss=600),
    ]
    (check,) = memory_checks(summarize(samples), "small", "large", label="x", judged=False)
    assert check.value == pytest.approx(2.0)
    assert check.met is None


def test_a_report_reads_back_from_its_json(tmp_path: Path) -> None:
    _, document = write_results(a_report(), tmp_path)
    again = RunReport.from_json(json.loads(document.read_text()))
    assert again.tables == a_report().tables
    assert render_markdown(again) == render_markdown(a_report())


def test_the_large_run_judges_memory_at_ten_million_rows() -> None:
    run = a_report()
    run.tables = [
        TableSpec("bench.sales_1000000", "sales", "1e6", 1_000_000),
        TableSpec("public.sales", "sales", "1e7", 10_000_000),
    ]
    run.samples = [
        sample("shiftsync-unload-duckdb", 1.0, table="bench.sales_1000000", rss=400),
        sample("shiftsync-unload-duckdb", 9.0, table="public.sales", rss=680),
    ]
    (check,) = [c for c in run.checks() if c.name.startswith("peak RSS")]
    assert check.name == "peak RSS 1e7 ÷ 1e6, shiftsync UNLOAD → DuckDB"
    assert check.met is False
    assert check.value == pytest.approx(1.7)


def test_snapshot_checks_compare_each_snapshot_with_none() -> None:
    samples = [
        sample("snapshot-none-unload", 10.0),
        sample("snapshot-table-unload", 10.5),
        sample("snapshot-consistent-unload", 11.5),
    ]
    checks = {c.name: c for c in report.snapshot_checks(report.summarize(samples), "public.sales")}
    table = checks["verified sync, unload: snapshot table ÷ none"]
    consistent = checks["verified sync, unload: snapshot consistent ÷ none"]
    assert table.value == pytest.approx(1.05)
    assert table.met is True
    assert consistent.value == pytest.approx(1.15)
    assert consistent.met is False
    assert checks["verified sync, csv: snapshot table ÷ none"].met is None  # not measured


def test_a_side_benchmark_writes_its_report_and_json_and_exits_by_its_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.write_checked(tmp_path, "resume", "# text\n", {"moved": 0.5}, [True]) == 0
    (markdown,) = tmp_path.glob("resume-*.md")
    (document,) = tmp_path.glob("resume-*.json")
    assert markdown.read_text() == "# text\n"
    assert json.loads(document.read_text()) == {"moved": 0.5}
    assert capsys.readouterr().out == "# text\n"
    missed = tmp_path / "missed"
    assert report.write_checked(missed, "deletes", "x\n", {}, [True, False]) == 1
    assert [p.suffix for p in sorted(missed.iterdir())] == [".json", ".md"]
