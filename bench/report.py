"""The benchmark report: medians and spreads, floors, ratios against the targets, markdown + JSON.

Pure functions over the samples the clients printed; `write_results` is the only I/O.

Conventions (bench/README.md says the same for readers):
- a case's seconds are its client's wall time, except the floor statements (`floor-statement-
  csv`, `floor-unload`), whose seconds are the statement's Duration from DescribeStatement;
- rows/s = the table's rows ÷ median seconds; MB/s = the table's size as CSV (what `COPY …
  TO STDOUT (FORMAT csv)` produced in floor-pg-copy) ÷ median seconds, so every case of a table
  is divided by the same number of bytes;
- the floor of a method = the stand-in producing the rows for it (median statement Duration)
  + DuckDB's own ingest of the same rows as Parquet (median floor-duckdb-parquet).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

Group = Literal["shiftsync", "peer", "floor", "probe"]
MB: Final = 1_000_000


@dataclass(frozen=True)
class CaseSpec:
    label: str
    group: Group
    # True when the case's seconds are the server's statement Duration, not the client's wall.
    server_timed: bool = False


CASES: Final[Mapping[str, CaseSpec]] = {
    "shiftsync-csv-duckdb": CaseSpec("shiftsync Data API CSV → DuckDB", "shiftsync"),
    "shiftsync-json-duckdb": CaseSpec("shiftsync Data API JSON → DuckDB", "shiftsync"),
    "shiftsync-unload-duckdb": CaseSpec("shiftsync UNLOAD → DuckDB", "shiftsync"),
    "shiftsync-unload-iceberg": CaseSpec("shiftsync UNLOAD → Iceberg (SQLite)", "shiftsync"),
    "shiftsync-cli-unload-duckdb": CaseSpec(
        "shiftsync sync UNLOAD → DuckDB, whole process", "shiftsync"
    ),
    "shiftsync-csv-arrow": CaseSpec("shiftsync Data API CSV → Arrow table", "shiftsync"),
    "awswrangler-pandas": CaseSpec("awswrangler read_sql_query → DataFrame", "peer"),
    "shiftsync-unload-postgres": CaseSpec("shiftsync UNLOAD → PostgreSQL", "shiftsync"),
    "dlt-connectorx-duckdb": CaseSpec("dlt sql_table (connectorx), PostgreSQL → DuckDB", "peer"),
    "dlt-pyarrow-duckdb": CaseSpec("dlt sql_table (pyarrow), PostgreSQL → DuckDB", "peer"),
    "sling-postgres": CaseSpec("Sling, PostgreSQL → PostgreSQL", "peer"),
    "floor-statement-csv": CaseSpec(
        "floor: CSV statement Duration (DescribeStatement)", "floor", server_timed=True
    ),
    "floor-pg-copy": CaseSpec("floor: PostgreSQL COPY (query) TO STDOUT", "floor"),
    "floor-unload": CaseSpec(
        "floor: UNLOAD statement Duration (DescribeStatement)", "floor", server_timed=True
    ),
    "floor-duckdb-parquet": CaseSpec("floor: DuckDB ingest of the same Parquet", "floor"),
    "probe": CaseSpec("what auto picks (not timed)", "probe"),
    **{
        f"snapshot-{snapshot}-{name}": CaseSpec(
            f"shiftsync {label} → DuckDB, verified, snapshot: {snapshot}", "shiftsync"
        )
        for name, label in (("csv", "Data API CSV"), ("unload", "UNLOAD"))
        for snapshot in ("none", "table", "consistent")
    },
}
# The snapshot cases: the same verified sync with `snapshot: none` (each statement on its own),
# `table` and `consistent`; the target is at most 10% more than `none`.
SNAPSHOT_METHODS: Final = ("csv", "unload")
SNAPSHOT_TARGET: Final = 1.10
# Report order; the probe is not a timing and is shown in the table's heading instead.
TIMED_CASES: Final = tuple(name for name, spec in CASES.items() if spec.group != "probe")


# --- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {
            "median": round(self.median, 4),
            "min": round(self.low, 4),
            "max": round(self.high, 4),
            "n": self.n,
        }


def stat(values: Iterable[float]) -> Stat:
    """Median and range of at least one value."""
    data = sorted(values)
    if not data:
        raise ValueError("no values to summarize")
    return Stat(statistics.median(data), data[0], data[-1], len(data))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator ÷ denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


# --- per case -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """A benchmarked table: `family` is sales or wide; `size` labels it (1e5, 1e6, 1e7, wide)."""

    name: str
    family: Literal["sales", "wide"]
    size: str
    rows: int

    @property
    def label(self) -> str:
        if self.family == "wide":
            return f"wide ({self.rows:,} rows)"
        exponent = round(math.log10(self.rows)) if self.rows > 0 else 0
        return f"sales ~10^{exponent} ({self.rows:,} rows)"


@dataclass(frozen=True)
class CaseSummary:
    table: str
    case: str
    seconds: Stat
    cpu_s: Stat
    peak_rss_mb: Stat
    rows: int
    server_cpu_s: Stat | None = None
    bytes: int = 0
    failures: tuple[str, ...] = ()

    def rows_per_s(self) -> float | None:
        return ratio(float(self.rows), self.seconds.median)

    def mb_per_s(self, table_bytes: int | None) -> float | None:
        return ratio(None if table_bytes is None else table_bytes / MB, self.seconds.median)

    def cpu_us_per_row(self) -> float | None:
        value = ratio(self.cpu_s.median, float(self.rows))
        return None if value is None else value * 1e6

    def to_json(self, table_bytes: int | None) -> dict[str, Any]:
        return {
            "table": self.table,
            "case": self.case,
            "label": CASES[self.case].label,
            "seconds": self.seconds.to_json(),
            "cpu_s": self.cpu_s.to_json(),
            "peak_rss_mb": self.peak_rss_mb.to_json(),
            "server_cpu_s": None if self.server_cpu_s is None else self.server_cpu_s.to_json(),
            "rows": self.rows,
            "bytes": self.bytes,
            "rows_per_s": _round(self.rows_per_s(), 1),
            "mb_per_s": _round(self.mb_per_s(table_bytes), 2),
            "cpu_us_per_row": _round(self.cpu_us_per_row(), 3),
            "failures": list(self.failures),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def sample_seconds(sample: Mapping[str, Any]) -> float:
    """The seconds a sample counts: the statement's Duration for server-timed cases."""
    if CASES[str(sample["case"])].server_timed and sample.get("server_seconds") is not None:
        return float(sample["server_seconds"])
    return float(sample["wall_s"])


def summarize(samples: Sequence[Mapping[str, Any]]) -> list[CaseSummary]:
    """One summary per (table, case) in first-seen order; failed samples are kept as notes."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sample in samples:
        groups.setdefault((str(sample["table"]), str(sample["case"])), []).append(sample)
    summaries = []
    for (table, case), group in groups.items():
        good = [s for s in group if not s.get("error")]
        failures = tuple(str(s["error"]) for s in group if s.get("error"))
        if not good:
            nan = Stat(math.nan, math.nan, math.nan, 0)
            summaries.append(CaseSummary(table, case, nan, nan, nan, 0, failures=failures))
            continue
        server = [float(s["server_cpu_s"]) for s in good if s.get("server_cpu_s") is not None]
        summaries.append(
            CaseSummary(
                table=table,
                case=case,
                seconds=stat(sample_seconds(s) for s in good),
                cpu_s=stat(float(s["cpu_s"]) for s in good),
                peak_rss_mb=stat(float(s["peak_rss_mb"]) for s in good),
                rows=int(good[0]["rows"]),
                server_cpu_s=stat(server) if server else None,
                bytes=int(statistics.median(int(s.get("bytes") or 0) for s in good)),
                failures=failures,
            )
        )
    return summaries


def find(summaries: Sequence[CaseSummary], table: str, case: str) -> CaseSummary | None:
    for summary in summaries:
        if summary.table == table and summary.case == case and summary.seconds.n:
            return summary
    return None


def median_seconds(summaries: Sequence[CaseSummary], table: str, case: str) -> float | None:
    found = find(summaries, table, case)
    return None if found is None else found.seconds.median


# --- floors, ratios and targets ------------------------------------------------------------


@dataclass(frozen=True)
class Floors:
    data_api: float | None
    unload: float | None
    pg_copy: float | None


def floors(summaries: Sequence[CaseSummary], table: str) -> Floors:
    def plus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a + b

    ingest = median_seconds(summaries, table, "floor-duckdb-parquet")
    return Floors(
        data_api=plus(median_seconds(summaries, table, "floor-statement-csv"), ingest),
        unload=plus(median_seconds(summaries, table, "floor-unload"), ingest),
        pg_copy=median_seconds(summaries, table, "floor-pg-copy"),
    )


@dataclass(frozen=True)
class Check:
    """One ratio, its target, and whether it is met (None: not measured in this run)."""

    name: str
    table: str
    value: float | None
    target: str
    met: bool | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "value": _round(self.value, 3)}


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def peer_checks(summaries: Sequence[CaseSummary], table: str) -> list[Check]:
    """shiftsync (Data API CSV to Arrow) against awswrangler (to pandas), like for like."""
    ours, peer = (
        find(summaries, table, "shiftsync-csv-arrow"),
        find(summaries, table, "awswrangler-pandas"),
    )
    speed = cpu = None
    if ours is not None and peer is not None:
        speed = ratio(ours.rows_per_s(), peer.rows_per_s())
        cpu = ratio(ours.cpu_us_per_row(), peer.cpu_us_per_row())
    return [
        Check("Data API CSV ÷ awswrangler, rows/s", table, speed, "≥ 10", _at_least(speed, 10)),
        Check(
            "Data API CSV ÷ awswrangler, client CPU per row",
            table,
            cpu,
            "≤ 0.1",
            _at_most(cpu, 0.1),
        ),
    ]


DIRECT_WIRE_PEERS: Final = ("dlt-connectorx-duckdb", "dlt-pyarrow-duckdb", "sling-postgres")
PEAK_RSS_TARGET_MB: Final = 250.0


def direct_wire_checks(summaries: Sequence[CaseSummary], table: str) -> list[Check]:
    """`shiftsync sync` (UNLOAD, a whole process) against the fastest peer reading PostgreSQL
    directly (a whole process each), and its peak RSS against the issue's 250 MB."""
    ours = find(summaries, table, "shiftsync-cli-unload-duckdb")
    if ours is None:
        return []
    peers = [p for p in (find(summaries, table, case) for case in DIRECT_WIRE_PEERS) if p]
    checks = []
    if peers:
        fastest = min(peers, key=lambda p: p.seconds.median)
        value = ratio(ours.seconds.median, fastest.seconds.median)
        checks.append(
            Check(
                "shiftsync sync (whole process) ÷ fastest direct-wire peer, seconds",
                table,
                value,
                "< 1",
                None if value is None else value < 1,
                CASES[fastest.case].label,
            )
        )
    peak = ours.peak_rss_mb.median
    checks.append(
        Check(
            "shiftsync sync (whole process), peak RSS MB",
            table,
            peak,
            f"≤ {PEAK_RSS_TARGET_MB:.0f}",
            _at_most(peak, PEAK_RSS_TARGET_MB),
        )
    )
    return checks


# Issue 12's UNLOAD targets: 1.3× the floor at 10^6 rows, 1.2× at 10^7, where a table's fixed
# costs weigh less; a table of at least LARGE_FLOOR_ROWS rows is held to the second.
UNLOAD_FLOOR_TARGET: Final = 1.3
UNLOAD_FLOOR_TARGET_LARGE: Final = 1.2
LARGE_FLOOR_ROWS: Final = 5_000_000


def unload_floor_target(rows: int) -> float:
    return UNLOAD_FLOOR_TARGET_LARGE if rows >= LARGE_FLOOR_ROWS else UNLOAD_FLOOR_TARGET


def floor_checks(summaries: Sequence[CaseSummary], table: str) -> list[Check]:
    floor = floors(summaries, table)
    csv = ratio(median_seconds(summaries, table, "shiftsync-csv-duckdb"), floor.data_api)
    ours = find(summaries, table, "shiftsync-unload-duckdb")
    unload = None if ours is None else ratio(ours.seconds.median, floor.unload)
    target = unload_floor_target(0 if ours is None else ours.rows)
    return [
        Check("Data API CSV end to end ÷ floor", table, csv, "≤ 2", _at_most(csv, 2.0)),
        Check(
            "UNLOAD end to end ÷ floor", table, unload, f"≤ {target:g}", _at_most(unload, target)
        ),
    ]


def memory_checks(
    summaries: Sequence[CaseSummary], small: str, large: str, *, label: str, judged: bool = True
) -> list[Check]:
    """Peak RSS of the bigger table ÷ the smaller, per end-to-end method. The target is set for
    10^7 ÷ 10^6; other pairs (`judged=False`) are shown for information."""
    checks = []
    for case in ("shiftsync-unload-duckdb", "shiftsync-csv-duckdb"):
        low, high = find(summaries, small, case), find(summaries, large, case)
        if low is None or high is None:
            continue
        value = ratio(high.peak_rss_mb.median, low.peak_rss_mb.median)
        met = None if value is None else value <= 1.2 and high.peak_rss_mb.median < 500
        checks.append(
            Check(
                f"peak RSS {label}, {CASES[case].label}",
                large,
                value,
                "≤ 1.2 and < 500 MB" if judged else "(target is for 10^7 ÷ 10^6)",
                met if judged else None,
                f"{high.peak_rss_mb.median:.0f} MB ÷ {low.peak_rss_mb.median:.0f} MB",
            )
        )
    return checks


def auto_check(summaries: Sequence[CaseSummary], table: str, auto_method: str | None) -> Check:
    """`auto` against the faster of the two end-to-end methods (auto runs the method it picks)."""
    csv = median_seconds(summaries, table, "shiftsync-csv-duckdb")
    unload = median_seconds(summaries, table, "shiftsync-unload-duckdb")
    name = "auto's pick ÷ the faster method"
    if auto_method is None or csv is None or unload is None:
        return Check(name, table, None, "≤ 1.1", None, "not measured")
    picked = csv if auto_method == "data_api" else unload
    faster = "data_api" if csv <= unload else "unload"
    value = ratio(picked, min(csv, unload))
    return Check(
        name, table, value, "≤ 1.1", _at_most(value, 1.1), f"auto: {auto_method}, faster: {faster}"
    )


def snapshot_checks(summaries: Sequence[CaseSummary], table: str) -> list[Check]:
    """What one snapshot per read (and one per run) adds to a verified sync."""
    checks = []
    for method in SNAPSHOT_METHODS:
        base = median_seconds(summaries, table, f"snapshot-none-{method}")
        for snapshot in ("table", "consistent"):
            value = ratio(median_seconds(summaries, table, f"snapshot-{snapshot}-{method}"), base)
            checks.append(
                Check(
                    f"verified sync, {method}: snapshot {snapshot} ÷ none",
                    table,
                    value,
                    f"≤ {SNAPSHOT_TARGET}",
                    _at_most(value, SNAPSHOT_TARGET),
                )
            )
    return checks


@dataclass
class RunReport:
    """Everything one `python -m bench` run measured."""

    started_at: str
    mode: str
    environment: dict[str, Any]
    tables: list[TableSpec]
    samples: list[dict[str, Any]] = field(default_factory=list)
    auto: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)

    def summaries(self) -> list[CaseSummary]:
        return summarize(self.samples)

    def table_bytes(self, table: str) -> int | None:
        """The table's size as CSV (floor-pg-copy's byte count)."""
        found = find(self.summaries(), table, "floor-pg-copy")
        return None if found is None or not found.bytes else found.bytes

    def checks(self) -> list[Check]:
        summaries = self.summaries()
        result: list[Check] = []
        for table in self.tables:
            result += peer_checks(summaries, table.name)
        for table in self.tables:
            result += floor_checks(summaries, table.name)
        for table in self.tables:
            result += direct_wire_checks(summaries, table.name)
        sales = sorted((t for t in self.tables if t.family == "sales"), key=lambda t: t.rows)
        for small, large in itertools.pairwise(sales):
            label = f"{large.size} ÷ {small.size}"
            judged = (small.size, large.size) == ("1e6", "1e7")
            result += memory_checks(summaries, small.name, large.name, label=label, judged=judged)
        for table in self.tables:
            method = self.auto.get(table.name, {}).get("auto_method")
            result.append(auto_check(summaries, table.name, method))
        for table in self.tables:
            result += snapshot_checks(summaries, table.name)
        return [c for c in result if c.value is not None or c.note]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RunReport:
        """The run a results JSON file holds (to render it again)."""
        return cls(
            started_at=str(document["started_at"]),
            mode=str(document["mode"]),
            environment=dict(document["environment"]),
            tables=[
                TableSpec(t["name"], t["family"], t["size"], int(t["rows"]))
                for t in document["tables"]
            ],
            samples=list(document["samples"]),
            auto=dict(document.get("auto") or {}),
            profiles=list(document.get("profiles") or []),
        )

    def to_json(self) -> dict[str, Any]:
        summaries = self.summaries()
        return {
            "started_at": self.started_at,
            "mode": self.mode,
            "environment": self.environment,
            "tables": [
                {**asdict(t), "label": t.label, "csv_bytes": self.table_bytes(t.name)}
                for t in self.tables
            ],
            "auto": self.auto,
            "checks": [c.to_json() for c in self.checks()],
            "summary": [s.to_json(self.table_bytes(s.table)) for s in summaries],
            "floors": {t.name: asdict(floors(summaries, t.name)) for t in self.tables},
            "samples": self.samples,
            "profiles": self.profiles,
        }


# --- markdown -----------------------------------------------------------------------------


def fmt_number(value: float | None, digits: int = 2) -> str:
    """A number for a table cell: thousands separators, `–` when missing."""
    if value is None or math.isnan(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fmt_stat(value: Stat, digits: int = 2) -> str:
    """`median (min–max)`, or just the median when there was one sample."""
    if value.n == 0:
        return "–"
    if value.n == 1 or value.low == value.high:
        return fmt_number(value.median, digits)
    return (
        f"{fmt_number(value.median, digits)} "
        f"({fmt_number(value.low, digits)}–{fmt_number(value.high, digits)})"
    )


def fmt_met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def checks_markdown(checks: Sequence[Check]) -> list[str]:
    lines = ["| ratio | table | value | target | met | note |", "|---|---|---|---|---|---|"]
    for check in checks:
        lines.append(
            f"| {check.name} | {check.table} | {fmt_number(check.value, 3)} | {check.target} "
            f"| {fmt_met(check.met)} | {check.note} |"
        )
    return lines


def table_markdown(report: RunReport, table: TableSpec) -> list[str]:
    summaries = report.summaries()
    table_bytes = report.table_bytes(table.name)
    size = "size as CSV unknown" if table_bytes is None else f"{table_bytes / MB:,.1f} MB as CSV"
    auto = report.auto.get(table.name, {})
    picks = (
        f"auto picks **{auto['auto_method']}** ({auto.get('auto_reason', '')})"
        if auto.get("auto_method")
        else "auto's pick unknown"
    )
    lines = [
        f"### {table.label}: `{table.name}`",
        "",
        f"{size}; {picks}.",
        "",
        "| case | seconds, median (min–max) | rows/s | MB/s | client CPU s | CPU µs/row "
        "| peak RSS MB | stand-in CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in TIMED_CASES:
        found = next((s for s in summaries if s.table == table.name and s.case == case), None)
        if found is None:
            continue
        if found.seconds.n == 0:
            lines.append(f"| {CASES[case].label} | failed: {found.failures[0][:120]} | | | | | | |")
            continue
        server = "–" if found.server_cpu_s is None else fmt_stat(found.server_cpu_s)
        lines.append(
            f"| {CASES[case].label} | {fmt_stat(found.seconds, 3)} "
            f"| {fmt_number(found.rows_per_s(), 0)} | {fmt_number(found.mb_per_s(table_bytes))} "
            f"| {fmt_stat(found.cpu_s)} | {fmt_number(found.cpu_us_per_row(), 1)} "
            f"| {fmt_stat(found.peak_rss_mb, 0)} | {server} |"
        )
    floor = floors(summaries, table.name)
    lines += [
        "",
        f"Floor of the Data API: {fmt_number(floor.data_api, 3)} s (CSV statement + DuckDB "
        f"Parquet ingest); floor of UNLOAD: {fmt_number(floor.unload, 3)} s (UNLOAD statement + "
        f"DuckDB Parquet ingest); PostgreSQL COPY alone: {fmt_number(floor.pg_copy, 3)} s.",
    ]
    return lines


def render_markdown(report: RunReport) -> str:
    env = report.environment
    lines = [
        f"# shiftsync benchmarks, {report.started_at} ({report.mode} run)",
        "",
        f"Machine: {env.get('cpus', '?')} CPUs, {env.get('memory_gb', '?')} GB; Python "
        f"{env.get('python', '?')}; pyarrow {env.get('pyarrow', '?')}, duckdb "
        f"{env.get('duckdb', '?')}; peers (their own virtualenv) {env.get('peers', '?')}. "
        f"Stand-in: TICKIT scale {env.get('scale', '?')} (up in "
        f"{fmt_number(env.get('standin_startup_seconds'), 1)} s), Data API page "
        f"{env.get('page_bytes', '?')} bytes. Repetitions: {env.get('reps', '?')}. Load "
        f"average (1/5/15 min) at start {env.get('load_average_at_start', '?')}, at end "
        f"{env.get('load_average_at_end', '?')}. See bench/README.md for what each case "
        "measures.",
        "",
        "## Ratios and targets",
        "",
        *checks_markdown(report.checks()),
        "",
        "## Results",
        "",
    ]
    for table in report.tables:
        lines += [*table_markdown(report, table), ""]
    if report.profiles:
        lines += ["Profiles: " + ", ".join(f"`{p}`" for p in report.profiles), ""]
    return "\n".join(lines)


def result_stem(started: str) -> str:
    """`YYYY-MM-DD-HHMM` from an ISO timestamp such as 2025-01-31T12:34:56."""
    date, _, time = started.partition("T")
    return f"{date}-{time[:2]}{time[3:5]}"


def write_results(report: RunReport, folder: Path) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` into folder; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = result_stem(report.started_at)
    if report.mode == "quick":
        stem += "-quick"
    markdown, document = folder / f"{stem}.md", folder / f"{stem}.json"
    markdown.write_text(render_markdown(report))
    document.write_text(json.dumps(report.to_json(), indent=1, default=str) + "\n")
    return markdown, document


def write_checked(
    folder: Path, name: str, text: str, document: Mapping[str, Any], checks: Sequence[bool]
) -> int:
    """A side benchmark's results (`python -m bench.deletes`, `bench.resume`): `<name>-<UTC
    YYYY-MM-DD-HHMM>.md` (printed too) and `.json` in folder; 0 if every check holds, else 1."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{name}-{datetime.now(UTC).strftime('%Y-%m-%d-%H%M')}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
    sys.stdout.write(text)
    return 0 if all(checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.report RESULTS.json`: write its markdown again (after a format change)."""
    import argparse

    parser = argparse.ArgumentParser(description="Render a results JSON file as markdown again.")
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args(argv)
    for path in args.results:
        run = RunReport.from_json(json.loads(path.read_text()))
        path.with_suffix(".md").write_text(render_markdown(run))
        print(path.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
