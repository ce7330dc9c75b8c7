"""Decode what Redshift returns into Arrow batches with the type contract's exact schema.

Three inputs, one output (`arrow_schema(columns)`):
- Data API CSV pages (GetStatementResultV2): parsed in C by pyarrow's CSV reader;
- Data API JSON records (GetStatementResult): Python objects already, gathered per column;
- UNLOAD Parquet batches: cast, or decoded from the text the UNLOAD select produced.

Values that travel as text (all JSON strings; CSV and Parquet columns the select turned into
text) go through one set of vectorised decoders (`decode_text`), so every path agrees.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from shiftsync.errors import SourceError
from shiftsync.redshift.types import Column, arrow_schema, rule_for

TRUE_TEXTS: Final = ("t", "true")
FALSE_TEXTS: Final = ("f", "false")
# Decoders the CSV reader performs itself while parsing; the others read text first.
_CSV_NATIVE: Final = frozenset({"cast", "bool", "string"})
_US_PER_SECOND: Final = 1_000_000
_US_PER_DAY: Final = 86_400 * _US_PER_SECOND
_AD_SUFFIX: Final = r" AD$"
_HEX_PREFIX: Final = r"^\\x"
_HEX_TEXT: Final = r"^(?:[0-9a-fA-F]{2})*$"
_TIMETZ_SHORT_OFFSET: Final = r"([+-]\d{2})$"
_TIMETZ_TEXT: Final = r"^\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?[+-]\d{2}:\d{2}(?::\d{2})?$"
# PostgreSQL-style interval text, as Redshift and PostgreSQL print it:
# "1 day 02:03:04.5", "-1 days +02:00:00", "00:00:00", "3 days".
_INTERVAL_TEXT: Final = (
    r"^(?:(?P<years>[+-]?\d+) (?:years?|yrs?) ?)?"
    r"(?:(?P<months>[+-]?\d+) (?:mons?|months?) ?)?"
    r"(?:(?P<days>[+-]?\d+) days? ?)?"
    r"(?:(?P<sign>[+-])?(?P<hours>\d+):(?P<minutes>\d{2}):(?P<seconds>\d{2})"
    r"(?:\.(?P<fraction>\d{1,6}))?)?$"
)
_CSV_COLUMN_INDEX: Final = re.compile(r"CSV column #(\d+)")
_JSON_MEMBERS: Final = ("longValue", "doubleValue", "booleanValue", "stringValue", "blobValue")
# JSON has no NaN or infinities: the AWS JSON 1.1 protocol sends such doubles as these strings,
# and botocore (like our records parser) leaves them as strings.
_NON_FINITE_DOUBLES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _error(column: Column, what: str, detail: str, table: str | None) -> SourceError:
    where = f"column {column.name!r}" + (f" of table {table}" if table else "")
    return SourceError(
        f"{where} ({column.type_name}): {what}: {detail}",
        fix="check the column's values on Redshift; cast it in a view or exclude the column "
        "if its values cannot be represented (see docs/types.md)",
    )


# ---------------------------------------------------------------- text → contract type


def decode_text(values: pa.Array, column: Column, *, table: str | None = None) -> pa.Array:
    """Decode a string array holding this column's canonical text into its contract type."""
    rule = rule_for(column, table=table)
    target = rule.arrow_type(column)
    if isinstance(values, pa.ChunkedArray):
        chunks = [decode_text(chunk, column, table=table) for chunk in values.chunks]
        return pa.chunked_array(chunks, type=target)
    strings = pc.cast(values, pa.string())
    try:
        if rule.text_decoder == "cast":
            return pc.cast(strings, target)
        if rule.text_decoder == "bool":
            return _decode_bool(strings, column, table)
        if rule.text_decoder == "string":
            return strings
        if rule.text_decoder == "timestamptz":
            # Our select prints "... AD" for UTC; other texts carry their own offset.
            utc = pc.replace_substring_regex(strings, pattern=_AD_SUFFIX, replacement="+00:00")
            return pc.cast(utc, target)
        if rule.text_decoder == "time":
            # Arrow has no string→time cast; a time of day is a timestamp on 1970-01-01.
            stamped = pc.binary_join_element_wise("1970-01-01 ", strings, "")
            return pc.cast(pc.cast(stamped, pa.timestamp("us")), target)
        if rule.text_decoder == "timetz":
            return _decode_timetz(strings, column, table)
        if rule.text_decoder == "json":
            return pa.ExtensionArray.from_storage(target, strings)
        if rule.text_decoder == "hex":
            return _decode_hex(strings, column, table)
        return _decode_interval(strings, column, table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _error(column, "a value could not be decoded", str(exc), table) from exc


def _invalid_count(values: pa.Array, ok: pa.Array) -> int:
    """Rows holding a value (not null) for which `ok` is not true."""
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(ok, False)))
    return int(pc.sum(pc.cast(bad, pa.int64())).as_py() or 0)


def _first_invalid(values: pa.Array, ok: pa.Array) -> str:
    bad = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(ok, False)))
    index = pc.index(bad, True).as_py()
    return repr(values[index].as_py())


def _decode_bool(strings: pa.Array, column: Column, table: str | None) -> pa.Array:
    lowered = pc.utf8_lower(strings)
    truthy = pc.is_in(lowered, value_set=pa.array(TRUE_TEXTS))
    falsy = pc.is_in(lowered, value_set=pa.array(FALSE_TEXTS))
    if _invalid_count(strings, pc.or_(truthy, falsy)):
        detail = f"{_first_invalid(strings, pc.or_(truthy, falsy))} is not t/f/true/false"
        raise _error(column, "a boolean could not be decoded", detail, table)
    return pc.if_else(pc.is_valid(strings), truthy, pa.scalar(None, pa.bool_()))


def _decode_timetz(strings: pa.Array, column: Column, table: str | None) -> pa.Array:
    # PostgreSQL and Redshift print whole-hour offsets as "+05": make them "+05:00".
    normalized = pc.replace_substring_regex(
        strings, pattern=_TIMETZ_SHORT_OFFSET, replacement=r"\1:00"
    )
    ok = pc.match_substring_regex(normalized, pattern=_TIMETZ_TEXT)
    if _invalid_count(normalized, ok):
        detail = f"{_first_invalid(strings, ok)} is not HH:MM:SS[.ffffff]+HH[:MM]"
        raise _error(column, "a time with time zone could not be decoded", detail, table)
    return normalized


def _decode_hex(strings: pa.Array, column: Column, table: str | None) -> pa.Array:
    """Hex text (optionally `\\x`-prefixed) to binary, without a per-value Python loop.

    Arrow has no hex kernel, but a string array's values sit back to back in one buffer:
    decode that whole buffer in one call and halve the offsets.
    """
    digits = pc.replace_substring_regex(strings, pattern=_HEX_PREFIX, replacement="")
    ok = pc.match_substring_regex(digits, pattern=_HEX_TEXT)
    if _invalid_count(digits, ok):
        detail = f"{_first_invalid(strings, ok)} is not an even number of hex digits"
        raise _error(column, "binary text could not be decoded", detail, table)
    # concat_arrays copies into fresh buffers whose offsets start at 0.
    dense = pa.concat_arrays([pc.fill_null(digits, "")])
    count = len(dense)
    offsets = pa.Array.from_buffers(pa.int32(), count + 1, [None, dense.buffers()[1]])
    end = offsets[count].as_py()
    raw = binascii.unhexlify(dense.buffers()[2].to_pybytes()[:end]) if end else b""
    # Stay int32: a binary array's offsets are int32, and divide() by a Python int widens.
    halved = pc.divide(offsets, pa.scalar(2, pa.int32()))
    decoded = pa.Array.from_buffers(
        pa.binary(), count, [None, halved.buffers()[1], pa.py_buffer(raw)]
    )
    decoded.validate(full=True)
    return pc.if_else(pc.is_valid(strings), decoded, pa.scalar(None, pa.binary()))


def _decode_interval(strings: pa.Array, column: Column, table: str | None) -> pa.Array:
    parts = pc.extract_regex(strings, pattern=_INTERVAL_TEXT)
    ok = pc.and_(pc.is_valid(parts), pc.greater(pc.utf8_length(strings), 0))
    if _invalid_count(strings, ok):
        detail = f"{_first_invalid(strings, ok)} is not an interval such as '1 day 02:03:04.5'"
        raise _error(column, "an interval could not be decoded", detail, table)

    def number(name: str) -> pa.Array:
        field = pc.struct_field(parts, name)
        return pc.cast(pc.if_else(pc.equal(field, ""), "0", field), pa.int64())

    months = pc.add_checked(pc.multiply_checked(number("years"), 12), number("months"))
    if _invalid_count(strings, pc.equal(months, 0)):
        detail = f"{_first_invalid(strings, pc.equal(months, 0))} has months or years"
        raise _error(column, "an interval with months has no exact duration", detail, table)
    fraction = pc.utf8_rpad(pc.struct_field(parts, "fraction"), width=6, padding="0")
    clock = pc.add_checked(
        pc.add_checked(
            pc.multiply_checked(number("hours"), 3600 * _US_PER_SECOND),
            pc.multiply_checked(number("minutes"), 60 * _US_PER_SECOND),
        ),
        pc.add_checked(
            pc.multiply_checked(number("seconds"), _US_PER_SECOND),
            pc.cast(fraction, pa.int64()),
        ),
    )
    signed = pc.if_else(pc.equal(pc.struct_field(parts, "sign"), "-"), pc.negate(clock), clock)
    total = pc.add_checked(pc.multiply_checked(number("days"), _US_PER_DAY), signed)
    return pc.cast(total, pa.duration("us"))


# ---------------------------------------------------------------- Data API CSV pages


def _csv_options(
    columns: Sequence[Column], has_header: bool
) -> tuple[pcsv.ReadOptions, pcsv.ParseOptions, pcsv.ConvertOptions]:
    names = [column.name for column in columns]
    column_types = {}
    for column in columns:
        rule = rule_for(column)
        native = rule.text_decoder in _CSV_NATIVE
        column_types[column.name] = rule.arrow_type(column) if native else pa.string()
    # skip_rows_after_names skips parsed rows, so a header with a quoted newline is skipped
    # whole (skip_rows counts raw lines).
    read = pcsv.ReadOptions(column_names=names, skip_rows_after_names=1 if has_header else 0)
    parse = pcsv.ParseOptions(
        delimiter=",",
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
    )
    convert = pcsv.ConvertOptions(
        column_types=column_types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=list(TRUE_TEXTS),
        false_values=list(FALSE_TEXTS),
        check_utf8=True,
    )
    return read, parse, convert


def csv_page_to_table(
    text: str | bytes,
    columns: Sequence[Column],
    *,
    has_header: bool,
    table: str | None = None,
) -> pa.Table:
    """One page of `CSVRecords` to a table with the contract's schema.

    The dialect is PostgreSQL's `COPY ... CSV` (what the stand-in emits; AWS does not specify
    it): RFC 4180, NULL is an empty unquoted field, the empty string is `""`.
    """
    schema = arrow_schema(columns)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not data.strip(b"\r\n"):
        return schema.empty_table()
    read, parse, convert = _csv_options(columns, has_header)
    try:
        parsed = pcsv.read_csv(
            pa.py_buffer(data), read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(exc, columns, table) from exc
    arrays = []
    for column, values in zip(columns, parsed.columns, strict=True):
        if rule_for(column).text_decoder in _CSV_NATIVE:
            arrays.append(values)
        else:
            arrays.append(decode_text(values, column, table=table))
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_error(exc: pa.ArrowInvalid, columns: Sequence[Column], table: str | None) -> SourceError:
    # pyarrow names a failing column only by its index in the message.
    match = _CSV_COLUMN_INDEX.search(str(exc))
    if match and int(match.group(1)) < len(columns):
        return _error(columns[int(match.group(1))], "a value could not be decoded", str(exc), table)
    where = f" of table {table}" if table else ""
    return SourceError(
        f"the Data API CSV result{where} could not be parsed: {exc}",
        fix="check that the statement was run with the select shiftsync built for these "
        f"{len(columns)} columns",
    )


def csv_page_to_batches(
    text: str | bytes,
    columns: Sequence[Column],
    *,
    has_header: bool,
    table: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """`csv_page_to_table`, as record batches."""
    yield from csv_page_to_table(text, columns, has_header=has_header, table=table).to_batches()


# ---------------------------------------------------------------- Data API JSON records


def json_records_to_batch(
    records: Sequence[Sequence[Mapping[str, object]]],
    columns: Sequence[Column],
    *,
    table: str | None = None,
) -> pa.RecordBatch:
    """`GetStatementResult` records (lists of Field unions) to a batch; same values as CSV."""
    schema = arrow_schema(columns)
    for number, record in enumerate(records):
        if len(record) != len(columns):
            raise SourceError(
                f"Data API record {number}{' of table ' + table if table else ''} has "
                f"{len(record)} fields, expected {len(columns)}",
                fix="check that the statement was run with the select shiftsync built",
            )
    arrays = [
        _json_column([record[index] for record in records], column, table)
        for index, column in enumerate(columns)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _json_column(fields: list[Mapping[str, object]], column: Column, table: str | None) -> pa.Array:
    # Records come from `json.loads` (records_parser.py), not from botocore's model: a
    # doubleValue may be the text "NaN", so a field is read as plain JSON.
    values: list[object] = []
    members: set[str] = set()
    for field in fields:
        if field.get("isNull"):
            values.append(None)
            continue
        member = next((name for name in _JSON_MEMBERS if name in field), None)
        if member is None:
            raise _error(column, "a Data API field has no known member", repr(field), table)
        members.add(member)
        value = field[member]
        if member == "doubleValue" and isinstance(value, str):
            value = _non_finite_double(value, column, table)
        values.append(value)
    rule = rule_for(column, table=table)
    target = rule.arrow_type(column)
    if not members:
        return pa.nulls(len(values), type=target)
    try:
        if members == {"longValue"} and rule.text_decoder == "cast":
            return pc.cast(pa.array(values, type=pa.int64()), target)
        if members == {"doubleValue"} and rule.text_decoder == "cast":
            return pc.cast(pa.array(values, type=pa.float64()), target)
        if members == {"booleanValue"} and rule.text_decoder == "bool":
            return pa.array(values, type=pa.bool_())
        if members == {"blobValue"} and pa.types.is_binary(target):
            return pa.array(values, type=pa.binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _error(column, "a Data API value does not fit", str(exc), table) from exc
    # Strings, or an unusual mix (a float column may carry "NaN" as a string): go through text.
    return decode_text(pa.array([_as_text(value) for value in values]), column, table=table)


def _non_finite_double(text: str, column: Column, table: str | None) -> float:
    try:
        return _NON_FINITE_DOUBLES[text]
    except KeyError:
        raise _error(
            column,
            "a Data API doubleValue could not be decoded",
            f"{text!r} is not a number, nor NaN, Infinity or -Infinity",
            table,
        ) from None


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return repr(value)


# ---------------------------------------------------------------- UNLOAD Parquet batches


def normalize_parquet_batch(
    batch: pa.RecordBatch, columns: Sequence[Column], *, table: str | None = None
) -> pa.RecordBatch:
    """A batch read from UNLOAD's Parquet (of the unload select) to the contract's types.

    Columns are matched by name, exactly or else case-insensitively (Redshift folds
    identifiers to lower case unless `enable_case_sensitive_identifier` is on).
    """
    schema = arrow_schema(columns)
    names = batch.schema.names
    folded: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        folded.setdefault(name.casefold(), []).append(index)
    arrays = []
    for column in columns:
        if column.name in names:
            values = batch.column(names.index(column.name))
        elif len(folded.get(column.name.casefold(), [])) == 1:
            values = batch.column(folded[column.name.casefold()][0])
        else:
            where = f" of table {table}" if table else ""
            raise SourceError(
                f"the UNLOAD Parquet file{where} has no column {column.name!r} "
                f"(it has {', '.join(names) or 'none'})",
                fix="check that the UNLOAD ran the select shiftsync built for this table",
            )
        arrays.append(_normalize_parquet_column(values, column, table))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _normalize_parquet_column(values: pa.Array, column: Column, table: str | None) -> pa.Array:
    rule = rule_for(column, table=table)
    target = rule.arrow_type(column)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if isinstance(values.type, pa.ExtensionType):
        values = values.storage
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return decode_text(values, column, table=table)
    try:
        # UNLOAD writes TIMESTAMPTZ as its UTC value without a zone: casting a zoneless
        # timestamp to timestamp[us, UTC] keeps the stored value, i.e. reads it as UTC; a
        # zoned one keeps its instant.
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _error(column, f"Parquet type {kind} does not convert", str(exc), table) from exc
