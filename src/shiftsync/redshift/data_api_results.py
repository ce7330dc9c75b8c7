"""Reading a statement's result: its pages in order, checked, as record batches or rows.

`result_pages` follows NextToken to the end (the next page fetched in the background while
the caller works on the current one) and refuses a token that comes back; `read_select`
decodes a SELECT's pages into batches and checks that the rows received are the rows the
Data API announced; `query_rows` and `execute_statement` serve small statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

import pyarrow as pa

from shiftsync.errors import SourceError
from shiftsync.redshift.decode import csv_page_to_batches, json_records_to_batch
from shiftsync.redshift.types import Column
from shiftsync.threads import ContextThreadPool

if TYPE_CHECKING:
    from mypy_boto3_redshift_data.type_defs import (
        FieldTypeDef,
        GetStatementResultRequestTypeDef,
        GetStatementResultResponseTypeDef,
        GetStatementResultV2ResponseTypeDef,
    )

    from shiftsync.redshift.data_api import DataApi
    from shiftsync.redshift.stats import ReadStats

# A value of a JSON-format result: the member of its Field union (None for isNull).
FieldValue: TypeAlias = bool | int | float | str | bytes | None
Row: TypeAlias = tuple[FieldValue, ...]


@dataclass(frozen=True)
class ResultPage:
    """One page of GetStatementResultV2 (CSV text) or GetStatementResult (JSON records)."""

    index: int
    total_rows: int
    column_count: int
    text: str = ""
    records: Sequence[Sequence[FieldTypeDef]] = ()
    size: int = 0


def result_pages(
    api: DataApi,
    statement_id: str,
    *,
    what: str,
    stats: ReadStats,
    csv: bool,
    prefetch: bool = True,
) -> Iterator[ResultPage]:
    """The result's pages, in order, following NextToken to the end.

    With `prefetch`, the next page is fetched in a background thread while the caller
    works on the current one.
    """

    def fetch(token: str | None, index: int) -> tuple[ResultPage, str | None]:
        """Page `index` (the one `token` leads to) and the token of the next, if any."""
        kwargs: GetStatementResultRequestTypeDef = {"Id": statement_id}
        if token:
            kwargs["NextToken"] = token
        if csv:
            text_answer = api.call(
                "GetStatementResultV2",
                what,
                stats,
                lambda client: client.get_statement_result_v2(**kwargs),
            )
            page = csv_result_page(text_answer, index, what)
            return page, text_answer.get("NextToken") or None
        answer = api.call(
            "GetStatementResult", what, stats, lambda client: client.get_statement_result(**kwargs)
        )
        return json_result_page(answer, index), answer.get("NextToken") or None

    pool = ContextThreadPool(1, thread_name_prefix="shiftsync-page") if prefetch else None
    seen: set[str] = set()
    try:
        pending: Future[tuple[ResultPage, str | None]] | None = None
        page, token = fetch(None, 0)
        while True:
            if token is not None:
                if token in seen:
                    raise SourceError(
                        f"{what}: GetStatementResult returned NextToken {token[:16]}… a "
                        f"second time for statement {statement_id}",
                        fix="run again; shiftsync stops rather than return a result that "
                        "is incomplete or repeated",
                    )
                seen.add(token)
                if pool is not None:
                    pending = pool.submit(fetch, token, page.index + 1)
            yield page
            if token is None:
                return
            page, token = pending.result() if pending is not None else fetch(token, page.index + 1)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def json_result_page(response: GetStatementResultResponseTypeDef, index: int) -> ResultPage:
    """One GetStatementResult response (JSON records) as a ResultPage."""
    records = response.get("Records") or []
    total = int(response.get("TotalNumRows", -1))
    columns = len(response.get("ColumnMetadata") or [])
    return ResultPage(index, total, columns, records=records)


def csv_result_page(
    response: GetStatementResultV2ResponseTypeDef, index: int, what: str
) -> ResultPage:
    """One GetStatementResultV2 response (CSV text) as a ResultPage."""
    records = response.get("Records") or []
    total = int(response.get("TotalNumRows", -1))
    columns = len(response.get("ColumnMetadata") or [])
    texts = []
    for record in records:
        if "CSVRecords" not in record:
            raise SourceError(
                f"{what}: a GetStatementResultV2 page holds {sorted(record)} instead of CSVRecords",
                fix="update shiftsync, or set result_format: json on the connection",
            )
        texts.append(record["CSVRecords"])
    text = join_csv_records(texts)
    return ResultPage(index, total, columns, text=text, size=len(text))


def join_csv_records(texts: Sequence[str]) -> str:
    """The `CSVRecords` entries of one page as one CSV text, whatever their framing.

    AWS does not document how a page is framed: one entry or several, each with or without a
    final newline. An entry that ends a record (its quotes balanced) gets a newline if it has
    none, so records never glue together; one that ends inside a quoted field is continued by
    the next entry as it is.
    """
    parts: list[str] = []
    open_quote = False
    for text in texts:
        if not text:
            continue
        parts.append(text)
        open_quote ^= text.count('"') % 2 == 1
        if not open_quote and not text.endswith("\n"):
            parts.append("\n")
    return "".join(parts)


def first_csv_record(text: str) -> str:
    """The first record of a CSV text with its newline (quoted newlines stay inside)."""
    open_quote = False
    for position, char in enumerate(text):
        if char == '"':
            open_quote = not open_quote
        elif char == "\n" and not open_quote:
            return text[: position + 1]
    return text


def read_select(
    api: DataApi,
    sql: str,
    columns: Sequence[Column],
    *,
    table: str,
    stats: ReadStats,
    result_format: Literal["csv", "json"] = "csv",
    prefetch: bool = True,
    progress: Callable[[int, int], None] | None = None,
    timeout: float | None = None,
) -> Iterator[pa.RecordBatch]:
    """Run a SELECT built for `columns` and yield its rows as batches, page by page.

    Raises SourceError if the rows received differ from TotalNumRows or ResultRows.
    """
    csv = result_format == "csv"
    what = f"table {table}"
    with api.running(
        sql, what=what, stats=stats, result_format="CSV" if csv else "JSON", timeout=timeout
    ) as status:
        received = 0
        announced: int | None = None
        header: str | None = None
        for page in api.pages(status.id, what=what, stats=stats, csv=csv, prefetch=prefetch):
            stats.add(pages=1, bytes_received=page.size)
            if page.column_count and page.column_count != len(columns):
                raise SourceError(
                    f"{what}: statement {status.id} returned {page.column_count} columns, "
                    f"expected {len(columns)}",
                    fix="the table changed after shiftsync described it: run again",
                )
            if announced is None:
                announced = page.total_rows
            if csv:
                # The header leads the first page; AWS may repeat it on every page (its framing
                # is undocumented): a later page that starts with the same record has it too.
                # A data row equal to the header would be dropped, and the row count below
                # would then refuse the result rather than return it short.
                if page.index == 0:
                    header = first_csv_record(page.text)
                repeated = page.index > 0 and bool(header) and page.text.startswith(header or "")
                batches: Iterator[pa.RecordBatch] = csv_page_to_batches(
                    page.text, columns, has_header=page.index == 0 or repeated, table=table
                )
            else:
                batches = iter([json_records_to_batch(page.records, columns, table=table)])
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                received += batch.num_rows
                stats.add(rows=batch.num_rows)
                if progress is not None:
                    progress(batch.num_rows, batch.nbytes)
                yield batch
        expected = [n for n in (announced, status.result_rows) if n is not None and n >= 0]
        if any(n != received for n in expected):
            raise SourceError(
                f"{what}: statement {status.id} announced {expected[0]} rows but {received} "
                "arrived",
                fix="run again; shiftsync refuses a result that is incomplete",
            )


def field_value(field_union: FieldTypeDef, *, what: str) -> FieldValue:
    """A GetStatementResult Field as a Python value (str for numerics, dates and times)."""
    if field_union.get("isNull"):
        return None
    # In the order the Data API's members were always tried: the first one present wins.
    if "longValue" in field_union:
        return field_union["longValue"]
    if "doubleValue" in field_union:
        return field_union["doubleValue"]
    if "booleanValue" in field_union:
        return field_union["booleanValue"]
    if "stringValue" in field_union:
        return field_union["stringValue"]
    if "blobValue" in field_union:
        return field_union["blobValue"]
    raise SourceError(
        f"{what}: a Data API field has no known member: {sorted(field_union)}",
        fix="update shiftsync (the Data API sent a kind of value it does not know)",
    )


def field_int(value: FieldValue) -> int:
    """`int(value)` for a result's field (a count is a longValue; a numeric comes as text);
    a NULL is a TypeError, as `int(None)` is."""
    if value is None:
        raise TypeError("a NULL field where a whole number was expected")
    return int(value)


def query_rows(
    api: DataApi,
    sql: str,
    *,
    what: str,
    stats: ReadStats,
    timeout: float | None = None,
    budgeted: bool = True,
) -> list[Row]:
    """Run a small statement with the JSON result format; every row as a tuple of values."""
    with api.running(sql, what=what, stats=stats, timeout=timeout, budgeted=budgeted) as status:
        if not status.has_result_set:
            return []
        rows: list[Row] = []
        announced = -1
        for page in api.pages(status.id, what=what, stats=stats, csv=False, prefetch=False):
            stats.add(pages=1)
            announced = page.total_rows if page.index == 0 else announced
            rows.extend(
                tuple(field_value(item, what=what) for item in record) for record in page.records
            )
        if announced >= 0 and announced != len(rows):
            raise SourceError(
                f"{what}: statement {status.id} announced {announced} rows but {len(rows)} arrived",
                fix="run again; shiftsync refuses a result that is incomplete",
            )
        return rows


def execute_statement(
    api: DataApi, sql: str, *, what: str, stats: ReadStats, timeout: float | None = None
) -> int:
    """Run a statement without a result set; the rows it affected (ResultRows, 0 if unknown)."""
    with api.running(sql, what=what, stats=stats, timeout=timeout) as status:
        return max(status.result_rows, 0)
