"""CSVRecords framing: the stand-in's framings and the reader's joining (pure)."""

from __future__ import annotations

import pytest

from shiftsync.local.data_api.csv_framing import CsvFraming, frame_page, split_records
from shiftsync.redshift.data_api_results import first_csv_record, join_csv_records

PAGE = 'a,b\n1,"x\ny"\n2,""\n3,\n'
HEADER = "a,b\n"


def test_records_split_outside_quotes_only() -> None:
    assert split_records(PAGE) == ["a,b\n", '1,"x\ny"\n', '2,""\n', "3,\n"]


@pytest.mark.parametrize(
    "framing",
    [
        CsvFraming(),
        CsvFraming(trailing_newline=False),
        CsvFraming(per_record=True),
        CsvFraming(per_record=True, trailing_newline=False),
    ],
    ids=repr,
)
def test_the_reader_joins_every_framing_back_to_the_page(framing: CsvFraming) -> None:
    assert join_csv_records(frame_page(PAGE, HEADER, 0, framing)) == PAGE


def test_a_header_on_every_page_is_added_to_later_pages_only() -> None:
    framing = CsvFraming(header_every_page=True)
    assert frame_page("1,2\n", HEADER, 0, framing) == ["1,2\n"]
    assert frame_page("1,2\n", HEADER, 1, framing) == ["a,b\n1,2\n"]


def test_an_entry_that_ends_inside_a_quoted_field_is_continued() -> None:
    assert join_csv_records(['1,"x\n', 'y"', "2,z"]) == '1,"x\ny"\n2,z\n'


def test_the_first_record_keeps_quoted_newlines() -> None:
    assert first_csv_record('"a\nb",c\n1,2\n') == '"a\nb",c\n'
    assert first_csv_record("a,b") == "a,b"
