"""UNLOAD's grammar as the stand-in reads it: every option, quoting, and what it refuses."""

from __future__ import annotations

import pyarrow as pa
import pytest

from shiftsync.local.unload.grammar import MIB, UnloadCommand, UnloadError, parse_unload
from shiftsync.local.unload.output import (
    WrittenFile,
    build_manifest,
    copy_sql,
    csv_header,
    data_key,
    effective_max_file_bytes,
    manifest_key,
    manifest_type,
    plan_columns,
)

ROLE = "arn:aws:iam::222222222222:role/shiftsync-reader"
OTHER = "arn:aws:iam::333333333333:role/writer"


def unload(options: str, query: str = "select * from venue", to: str = "s3://bucket-a/u/v_") -> str:
    return f"UNLOAD ('{query}') TO '{to}' IAM_ROLE '{ROLE}' {options}"


def parse(options: str, **kwargs: str) -> UnloadCommand:
    return parse_unload(unload(options, **kwargs))


def refused(sql: str) -> str:
    with pytest.raises(UnloadError) as error:
        parse_unload(sql)
    message = str(error.value)
    assert message.startswith("ERROR: ")
    return message


# -- the basics ---------------------------------------------------------------------------------


def test_minimal_parquet_unload() -> None:
    command = parse("FORMAT AS PARQUET")
    assert command.query == "select * from venue"
    assert (command.bucket, command.prefix) == ("bucket-a", "u/v_")
    assert command.iam_roles == (ROLE,)
    assert command.format == "PARQUET"
    assert command.parallel is True
    assert not command.manifest
    assert not command.allow_overwrite
    assert not command.clean_path
    assert command.url == "s3://bucket-a/u/v_"


def test_keywords_are_case_insensitive_and_whitespace_free() -> None:
    sql = f"unload('select 1')\nto 's3://bucket-a/p'\n\tiam_role '{ROLE}'\nformat parquet;"
    assert parse_unload(sql).format == "PARQUET"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("FORMAT PARQUET", "PARQUET"),
        ("FORMAT AS PARQUET", "PARQUET"),
        ("PARQUET", "PARQUET"),
        ("FORMAT CSV", "CSV"),
        ("FORMAT AS CSV", "CSV"),
        ("CSV", "CSV"),
    ],
)
def test_format_spellings(options: str, expected: str) -> None:
    assert parse(options).format == expected


def test_doubled_quotes_in_the_query_become_single_quotes() -> None:
    command = parse(
        "PARQUET", query="select * from venue where venuestate=''NV'' and x = ''it''''s''"
    )
    assert command.query == "select * from venue where venuestate='NV' and x = 'it''s'"


def test_backslash_escapes_in_the_query() -> None:
    # Redshift's documentation escapes inner quotes as \' and backslashes as \\.
    command = parse("PARQUET", query=r"select * from t where a=\'NV\' and b like \'a\\\\b\'")
    assert command.query == r"select * from t where a='NV' and b like 'a\\b'"


def test_other_backslashes_are_kept() -> None:
    assert parse("PARQUET", query=r"select E\'\\n\' as x").query == r"select E'\n' as x"


def test_semicolons_and_comments_inside_the_query_are_text() -> None:
    command = parse("PARQUET", query="select ''a;b'' -- not a comment")
    assert command.query == "select 'a;b' -- not a comment"


def test_comments_between_options_are_skipped() -> None:
    command = parse("-- the format\nFORMAT PARQUET /* and */ MANIFEST")
    assert command.manifest


def test_a_bucket_without_prefix() -> None:
    command = parse("PARQUET", to="s3://bucket-a")
    assert (command.bucket, command.prefix) == ("bucket-a", "")
    assert data_key(command, 0, 0) == "0000_part_00.parquet"


# -- each option --------------------------------------------------------------------------------


def test_manifest_and_verbose() -> None:
    assert parse("PARQUET MANIFEST").manifest
    assert not parse("PARQUET MANIFEST").manifest_verbose
    verbose = parse("PARQUET MANIFEST VERBOSE")
    assert verbose.manifest
    assert verbose.manifest_verbose


@pytest.mark.parametrize(
    ("switch", "parallel"),
    [
        ("PARALLEL", True),
        ("PARALLEL ON", True),
        ("PARALLEL TRUE", True),
        ("PARALLEL OFF", False),
        ("PARALLEL FALSE", False),
        ("parallel off", False),
    ],
)
def test_parallel(switch: str, parallel: bool) -> None:
    assert parse(f"PARQUET {switch}").parallel is parallel


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("MAXFILESIZE 100 MB", 100 * MIB),
        ("MAXFILESIZE AS 100 MB", 100 * MIB),
        ("MAXFILESIZE 100MB", 100 * MIB),
        ("MAXFILESIZE 1 GB", 1024 * MIB),
        ("MAXFILESIZE 6.2 GB", int(6.2 * 1024 * MIB)),
        ("MAXFILESIZE 64", 64 * MIB),
        ("maxfilesize as 5 mb", 5 * MIB),
    ],
)
def test_maxfilesize(size: str, expected: int) -> None:
    assert parse(f"PARQUET {size}").max_file_bytes == expected


@pytest.mark.parametrize("size", ["MAXFILESIZE 4 MB", "MAXFILESIZE 7 GB", "MAXFILESIZE 0.5 MB"])
def test_maxfilesize_out_of_range(size: str) -> None:
    assert "MAXFILESIZE must be between 5 MB and 6.2 GB" in refused(unload(f"PARQUET {size}"))


def test_maxfilesize_floor_can_be_lowered_for_tests() -> None:
    command = parse_unload(unload("PARQUET MAXFILESIZE 0.01 MB"), min_max_file_bytes=1024)
    assert command.max_file_bytes == int(0.01 * MIB)
    with pytest.raises(UnloadError, match=r"between 0\.5 MB and 6\.2 GB"):
        parse_unload(unload("PARQUET MAXFILESIZE 0.01 MB"), min_max_file_bytes=MIB // 2)


def test_rowgroupsize() -> None:
    assert parse("PARQUET ROWGROUPSIZE AS 64 MB").row_group_bytes == 64 * MIB
    assert "ROWGROUPSIZE must be between" in refused(unload("PARQUET ROWGROUPSIZE 16 MB"))
    assert "ROWGROUPSIZE can only be used with FORMAT PARQUET" in refused(
        unload("CSV ROWGROUPSIZE 64 MB")
    )


def test_overwrite_options() -> None:
    assert parse("PARQUET ALLOWOVERWRITE").allow_overwrite
    assert parse("PARQUET CLEANPATH").clean_path
    assert "cannot be used together" in refused(unload("PARQUET CLEANPATH ALLOWOVERWRITE"))


def test_region() -> None:
    assert parse("PARQUET REGION 'eu-west-1'").region == "eu-west-1"
    assert parse("PARQUET REGION AS 'us-east-2'").region == "us-east-2"
    assert "Invalid REGION" in refused(unload("PARQUET REGION 'mars'"))


def test_encryption_options() -> None:
    command = parse("PARQUET ENCRYPTED KMS_KEY_ID 'key-1'")
    assert command.encrypted
    assert command.kms_key_id == "key-1"
    auto = parse("PARQUET ENCRYPTED AUTO")
    assert auto.encrypted
    assert auto.encrypted_auto
    assert "KMS_KEY_ID requires ENCRYPTED" in refused(unload("PARQUET KMS_KEY_ID 'key-1'"))


def test_csv_header_delimiter_and_null() -> None:
    command = parse("FORMAT CSV HEADER DELIMITER AS '|' NULL AS 'NULL'")
    assert (command.header, command.delimiter, command.null_as) == (True, "|", "NULL")
    assert parse("CSV DELIMITER ';'").delimiter == ";"
    assert "single character" in refused(unload("CSV DELIMITER '||'"))


@pytest.mark.parametrize("option", ["HEADER", "DELIMITER '|'", "NULL AS 'x'"])
def test_text_options_are_refused_with_parquet(option: str) -> None:
    name = option.split()[0].replace("NULL", "NULL AS")
    assert f"{name} cannot be used with FORMAT PARQUET" in refused(unload(f"PARQUET {option}"))


def test_extension() -> None:
    command = parse("CSV EXTENSION 'csv'")
    assert data_key(command, 1, 0) == "u/v_0001_part_00.csv"


def test_iam_role_chain() -> None:
    sql = f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE},{OTHER}' PARQUET"
    assert parse_unload(sql).iam_roles == (ROLE, OTHER)


def test_iam_role_default() -> None:
    command = parse_unload("UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE default PARQUET")
    assert command.default_role
    assert command.iam_roles == ()


def test_iam_role_may_come_after_the_options() -> None:
    sql = f"UNLOAD ('select 1') TO 's3://bucket-a/x' PARQUET MANIFEST IAM_ROLE '{ROLE}'"
    assert parse_unload(sql).iam_roles == (ROLE,)


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("UNLOAD 'select 1' TO 's3://bucket-a/x'", "syntax error at or near \"'select 1'\""),
        ("UNLOAD ('select 1') 's3://bucket-a/x'", "syntax error at or near"),
        ("UNLOAD ('select 1') TO", "syntax error at end of input"),
        ("UNLOAD ('select 1", "unterminated quoted string"),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' PARQUET BOGUS", '"BOGUS"'),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' FORMAT XML", '"XML"'),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' PARQUET ; x", '"x"'),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' PARQUET #", '"#"'),
        ("UNLOAD ('select 1') TO 's3://bucket-a/x' PARQUET", "needs IAM_ROLE"),
        (f"UNLOAD ('select 1') TO 'https://bucket-a/x' IAM_ROLE '{ROLE}' CSV", "Invalid S3 path"),
        (f"UNLOAD ('select 1') TO 's3://Bad_Bucket/x' IAM_ROLE '{ROLE}' CSV", "not a bucket"),
        ("UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE 'role-x' CSV", "Invalid IAM_ROLE"),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}, {OTHER}' CSV", "IAM_ROLE"),
        (f"UNLOAD ('  ') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' CSV", "needs a query"),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' CSV CSV", "redundant"),
        (f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' CSV PARQUET", "redundant"),
        (
            f"UNLOAD ('select 1') TO 's3://bucket-a/x' IAM_ROLE '{ROLE}' IAM_ROLE '{ROLE}' CSV",
            "redundant",
        ),
    ],
)
def test_bad_syntax(sql: str, fragment: str) -> None:
    assert fragment in refused(sql)


def test_no_format_means_text_which_the_stand_in_does_not_write() -> None:
    assert "FORMAT PARQUET or FORMAT CSV only" in refused(unload(""))


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("FORMAT JSON", "FORMAT JSON"),
        ("JSON", "FORMAT JSON"),
        ("CSV GZIP", "GZIP compression"),
        ("CSV BZIP2", "BZIP2 compression"),
        ("CSV ZSTD", "ZSTD compression"),
        ("PARQUET PARTITION BY (venuestate)", "PARTITION BY"),
        ("CSV ADDQUOTES", "ADDQUOTES"),
        ("CSV ESCAPE", "ESCAPE"),
        ("FIXEDWIDTH '0:3'", "FIXEDWIDTH"),
    ],
)
def test_unsupported_options_name_themselves(option: str, name: str) -> None:
    assert f"{name} is not supported by the shiftsync stand-in" in refused(unload(option))


def test_credentials_instead_of_iam_role_are_refused() -> None:
    sql = "UNLOAD ('select 1') TO 's3://bucket-a/x' CREDENTIALS 'aws_access_key_id=a' CSV"
    assert "use IAM_ROLE" in refused(sql)


def test_outer_limit_is_refused_but_a_nested_one_is_not() -> None:
    assert "Limit clause is not supported" in refused(
        unload("PARQUET", query="select * from t order by 1 limit 10")
    )
    nested = "select * from t where id in (select id from t order by id limit 10)"
    assert parse("PARQUET", query=nested).query == nested
    assert parse("PARQUET", query="select ''limit 1'' as x").query == "select 'limit 1' as x"
    assert parse("PARQUET", query="select 1 as unlimited -- limit").query.endswith("limit")


# -- file names ---------------------------------------------------------------------------------


def test_parallel_file_names() -> None:
    command = parse("PARQUET")
    assert data_key(command, 0, 0) == "u/v_0000_part_00.parquet"
    assert data_key(command, 1, 0) == "u/v_0001_part_00.parquet"
    assert data_key(command, 1, 2) == "u/v_0001_part_02.parquet"
    assert data_key(command, 12, 100) == "u/v_0012_part_100.parquet"
    assert manifest_key(command) == "u/v_manifest"


def test_serial_file_names() -> None:
    command = parse("PARQUET PARALLEL OFF")
    assert [data_key(command, 0, part) for part in range(3)] == [
        "u/v_000.parquet",
        "u/v_001.parquet",
        "u/v_002.parquet",
    ]


def test_csv_files_have_no_extension() -> None:
    assert data_key(parse("CSV"), 0, 0) == "u/v_0000_part_00"
    assert data_key(parse("CSV PARALLEL OFF"), 0, 3) == "u/v_003"


def test_parquet_maxfilesize_rounds_down_to_32_mb() -> None:
    assert effective_max_file_bytes(parse("PARQUET MAXFILESIZE 200 MB")) == 192 * MIB
    assert effective_max_file_bytes(parse("CSV MAXFILESIZE 200 MB")) == 200 * MIB
    assert effective_max_file_bytes(parse("PARQUET MAXFILESIZE 20 MB")) == 20 * MIB
    assert effective_max_file_bytes(parse("PARQUET")) == int(6.2 * 1024 * MIB) // (32 * MIB) * (
        32 * MIB
    )


# -- columns ------------------------------------------------------------------------------------


def column(name: str, type_name: str, **extra: int) -> dict[str, object]:
    return {"name": name, "typeName": type_name, "precision": 0, "scale": 0, "length": 0, **extra}


def test_parquet_types() -> None:
    plans = plan_columns(
        [
            column("a", "int2"),
            column("b", "int4"),
            column("c", "int8"),
            column("d", "numeric", precision=8, scale=2),
            column("e", "float4"),
            column("f", "float8"),
            column("g", "bool"),
            column("h", "varchar", length=30),
            column("i", "date"),
            column("j", "timestamp"),
            column("k", "timestamptz"),
            column("l", "super"),
        ],
        "PARQUET",
    )
    assert [p.arrow for p in plans] == [
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.decimal128(8, 2),
        pa.float32(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("us"),
        pa.string(),
    ]
    assert plans[10].sql == "(\"c10\" AT TIME ZONE 'UTC')"
    assert "json_serialize" in plans[11].sql


def test_unconstrained_numeric_is_written_as_text() -> None:
    assert plan_columns([column("n", "numeric")], "PARQUET")[0].arrow == pa.string()


@pytest.mark.parametrize(
    ("type_name", "title"),
    [
        ("time", "time without time zone"),
        ("timetz", "time with time zone"),
        ("varbyte", "varbyte"),
        ("varbinary", "varbyte"),
        ("geometry", "geometry"),
        ("geography", "geography"),
        ("hllsketch", "hllsketch"),
    ],
)
def test_types_parquet_refuses(type_name: str, title: str) -> None:
    with pytest.raises(UnloadError) as error:
        plan_columns([column("id", "int4"), column("c_x", type_name)], "PARQUET")
    assert str(error.value) == (
        f'ERROR: UNLOAD {title} column "c_x" is only supported for TEXT/CSV.'
    )
    assert len(plan_columns([column("c_x", type_name)], "CSV")) == 1


def test_csv_writes_binary_types_as_hex() -> None:
    assert plan_columns([column("v", "varbyte")], "CSV")[0].sql == "encode(\"c0\"::bytea, 'hex')"


def test_copy_sql_wraps_the_query_with_positional_aliases() -> None:
    command = parse("CSV DELIMITER '|' NULL AS 'N/A'")
    plans = plan_columns([column("id", "int4"), column("id", "int4")], "CSV")
    sql = copy_sql("select a.id, b.id from a, b", plans, command)
    assert sql == (
        'COPY (SELECT "c0", "c1" FROM (select a.id, b.id from a, b) AS unload_query("c0", "c1")) '
        "TO STDOUT (FORMAT csv, DELIMITER '|', NULL 'N/A')"
    )


def test_csv_header_quotes_only_when_needed() -> None:
    plans = plan_columns([column("id", "int4"), column('odd,"name"', "varchar")], "CSV")
    assert csv_header(plans, ",") == b'id,"odd,""name"""\n'


# -- manifests ----------------------------------------------------------------------------------

FILES = [
    WrittenFile("u/v_0000_part_00.parquet", 100, 3),
    WrittenFile("u/v_0001_part_00.parquet", 50, 2),
]
COLUMNS = [
    column("id", "int4"),
    column("price", "numeric", precision=8, scale=2),
    column("name", "varchar", length=30),
    column("code", "bpchar", length=2),
    column("at", "timestamptz"),
]


def test_plain_manifest_lists_urls_and_sizes() -> None:
    assert build_manifest("bucket-a", FILES, COLUMNS, verbose=False) == {
        "entries": [
            {"url": "s3://bucket-a/u/v_0000_part_00.parquet", "meta": {"content_length": 100}},
            {"url": "s3://bucket-a/u/v_0001_part_00.parquet", "meta": {"content_length": 50}},
        ]
    }


def test_verbose_manifest() -> None:
    manifest = build_manifest("bucket-a", FILES, COLUMNS, verbose=True)
    assert manifest["entries"][1] == {
        "url": "s3://bucket-a/u/v_0001_part_00.parquet",
        "meta": {"content_length": 50, "record_count": 2},
    }
    assert manifest["meta"] == {"content_length": 150, "record_count": 5}
    assert manifest["author"] == {"name": "Amazon Redshift", "version": "1.0.0"}
    assert manifest["schema"]["elements"] == [
        {"name": "id", "type": {"base": "integer"}},
        {"name": "price", "type": {"base": "numeric", "precision": 8, "scale": 2}},
        {"name": "name", "type": {"base": "character varying", "max_length": 30}},
        {"name": "code", "type": {"base": "character", "max_length": 2}},
        {"name": "at", "type": {"base": "timestamp with time zone"}},
    ]


def test_verbose_manifest_of_an_empty_result() -> None:
    manifest = build_manifest("bucket-a", [], COLUMNS, verbose=True)
    assert manifest["entries"] == []
    assert manifest["meta"] == {"content_length": 0, "record_count": 0}


def test_manifest_type_of_an_unknown_type_keeps_its_name() -> None:
    assert manifest_type(column("u", "uuid")) == {"base": "uuid"}
