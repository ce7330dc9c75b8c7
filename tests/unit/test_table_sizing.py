"""An incremental run plans its read method for its window, not for the whole table."""

from __future__ import annotations

from shiftsync.destinations.base import LoadMode
from shiftsync.engine.state import Window
from shiftsync.engine.table_sync import sized_for_window
from shiftsync.redshift.catalog import TableInfo, TableRef
from shiftsync.redshift.plan import choose_method, estimate_row_width
from shiftsync.redshift.types import Column

COLUMNS = (Column("salesid", "int4"), Column("saletime", "timestamp"))
WHOLE = TableInfo(TableRef("public", "sales"), "TABLE", COLUMNS, ("salesid",), 2_000_000, 240 << 20)


def window(rows: int | None) -> Window:
    return Window(LoadMode.MERGE, True, "x", "a", "b", "y", rows_estimate=rows)


def test_without_a_count_the_table_keeps_its_estimates() -> None:
    assert sized_for_window(WHOLE, window(None)) is WHOLE


def test_a_counted_window_scales_rows_and_bytes() -> None:
    sized = sized_for_window(WHOLE, window(5_000))
    assert (sized.estimated_rows, sized.estimated_bytes) == (
        5_000,
        (240 << 20) * 5_000 // 2_000_000,
    )
    assert sized.columns == WHOLE.columns
    assert sized.ref == WHOLE.ref


def test_a_table_without_a_size_estimate_gets_none_for_bytes() -> None:
    unknown = TableInfo(WHOLE.ref, "VIEW", COLUMNS, (), None, None)
    sized = sized_for_window(unknown, window(10))
    assert (sized.estimated_rows, sized.estimated_bytes) == (10, None)


def test_the_planner_picks_the_data_api_for_a_small_window_of_a_big_table() -> None:
    def method(info: TableInfo) -> str:
        return choose_method(
            requested="auto",
            unload_configured=True,
            kind=info.kind,
            estimated_rows=info.estimated_rows,
            estimated_bytes=info.estimated_bytes,
            row_width=estimate_row_width(COLUMNS),
            blocker=None,
            chunkable=True,
        ).method

    assert method(WHOLE) == "unload"
    assert method(sized_for_window(WHOLE, window(5_000))) == "data_api"
