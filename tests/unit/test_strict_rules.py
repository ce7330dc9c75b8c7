"""Pure pieces of the stricter stand-in: identifier folding, STS input, probe values, network
error kinds."""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import EndpointConnectionError, SSLError

from shiftsync.aws.network import network_error, network_kind
from shiftsync.local.data_api.results import column_metadata
from shiftsync.local.dialect.sqltext import fold_quoted_identifiers
from shiftsync.local.front_rules import assume_role_problem
from shiftsync.redshift.csv_probe import PROBE_VALUES, differences, probe_sql
from shiftsync.redshift.data_api_errors import missing_database_named


@pytest.mark.parametrize(
    ("sql", "folded"),
    [
        ('select 1 as "MyCol"', 'select 1 as "mycol"'),
        ('select "A""B" from "Odd Schema"."T"', 'select "a""b" from "odd schema"."t"'),
        ("select 'KEEP' as \"Ünï\"", "select 'KEEP' as \"Ünï\""),
        ('-- "Comment"\nselect $$ "Dollar" $$', '-- "Comment"\nselect $$ "Dollar" $$'),
        ("SELECT Unquoted", "SELECT Unquoted"),
    ],
)
def test_quoted_identifiers_fold_only_ascii_letters(sql: str, folded: str) -> None:
    assert fold_quoted_identifiers(sql) == folded


ROLE = "arn:aws:iam::222222222222:role/shiftsync-reader"


@pytest.mark.parametrize(
    ("form", "member"),
    [
        ({"RoleArn": [ROLE], "RoleSessionName": ["a b"]}, "roleSessionName"),
        ({"RoleArn": [ROLE], "RoleSessionName": ["x"]}, "roleSessionName"),
        ({"RoleArn": [ROLE], "RoleSessionName": ["ok"], "ExternalId": ["a b"]}, "externalId"),
        ({"RoleArn": ["arn:aws:iam::1:role"], "RoleSessionName": ["ok"]}, "roleArn"),
        ({"RoleArn": ["arn:aws:s3:::bucket-name-here"], "RoleSessionName": ["ok"]}, "roleArn"),
    ],
)
def test_malformed_assume_role_input_is_named(form: dict[str, list[str]], member: str) -> None:
    problem = assume_role_problem(form)
    assert problem is not None
    assert problem.startswith("1 validation error detected: Value '")
    assert f"at '{member}'" in problem


def test_well_formed_assume_role_input_passes() -> None:
    form = {"RoleArn": [ROLE], "RoleSessionName": ["shiftsync"], "ExternalId": ["shiftsync-1"]}
    assert assume_role_problem(form) is None


@pytest.mark.parametrize(
    ("type_name", "typmod", "precision", "scale"),
    [
        ("int2", -1, 5, 0),
        ("int4", -1, 10, 0),
        ("int8", -1, 19, 0),
        ("timestamp", -1, 29, 6),
        ("varchar", 104, 100, 0),
        ("bpchar", 14, 10, 0),
        ("numeric", (12 << 16 | 2) + 4, 12, 2),
    ],
)
def test_column_metadata_as_aws_fills_it(
    type_name: str, typmod: int, precision: int, scale: int
) -> None:
    meta = column_metadata("c", type_name, typmod)
    assert (meta["precision"], meta["scale"], meta["length"]) == (precision, scale, 0)


def test_describe_table_entries_have_no_label() -> None:
    assert "label" not in column_metadata("c", "int4", -1, label=False)
    assert column_metadata("c", "int4", -1)["label"] == "c"


def test_the_probe_selects_every_value_once() -> None:
    sql = probe_sql()
    assert sql.count(" AS varchar(65535)) AS ") == len(PROBE_VALUES)
    assert sql.startswith("SELECT CAST(NULL AS varchar(65535))")


def test_differences_name_the_values_that_differ() -> None:
    json_row: dict[str, object] = dict(PROBE_VALUES)
    csv_row = {**json_row, "null": "NULL", "empty": None}
    assert differences(csv_row, json_row) == ["null", "empty"]
    assert differences(json_row, json_row) == []


def test_network_errors_are_told_apart() -> None:
    dns = EndpointConnectionError(
        endpoint_url="https://sts.x.amazonaws.com",
        error=socket.gaierror(-2, "Name or service not known"),
    )
    refused = EndpointConnectionError(
        endpoint_url="http://127.0.0.1:1", error=ConnectionRefusedError("refused")
    )
    tls = SSLError(endpoint_url="https://127.0.0.1:1", error=OSError("wrong version number"))
    assert [network_kind(e) for e in (dns, refused, tls)] == ["dns", "unreachable", "tls"]
    error = network_error(dns, "sts", "eu-west-1")
    assert "sts could not be reached" in error.message
    assert "sts.eu-west-1.amazonaws.com" in (error.fix or "")
    assert "AWS_ENDPOINT_URL_STS" in (error.fix or "")


def test_a_missing_database_is_read_from_the_message() -> None:
    assert missing_database_named('FATAL: database "dve" does not exist') == "dve"
    assert missing_database_named('ERROR: relation "x" does not exist') is None
