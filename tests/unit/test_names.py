from __future__ import annotations

import pytest

from shiftsync.engine.names import column_names, default_target, normalize_name, target_name
from shiftsync.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mixed Case", "mixed_case"),
        ("userID", "user_id"),
        ("UserId", "user_id"),
        ("HTTPServer", "http_server"),
        ("getHTTPResponseCode", "get_http_response_code"),
        ("has space", "has_space"),
        ('quo"te', "quo_te"),
        ("a--b", "a_b"),
        ("a__b", "a_b"),
        ("__x__", "x"),
        ("Select", "select"),
        ("from", "from"),
        ("already_snake", "already_snake"),
        ("sales2008", "sales2008"),
        ("Column1Value", "column1_value"),
        ("ABC", "abc"),
        ("9lives", "_9lives"),
        ("ünïcödé", "ünïcödé"),
        ("Ünïcödé Name", "ünïcödé_name"),
        ("日本", "日本"),
        ("price($)", "price"),
        ("tab\there", "tab_here"),
    ],
)
def test_normalize_name(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


@pytest.mark.parametrize("name", ["userID", "Mixed Case", "HTTPServer", "a--b"])
def test_normalize_name_is_idempotent(name: str) -> None:
    once = normalize_name(name)
    assert normalize_name(once) == once


@pytest.mark.parametrize("name", ["***", "   ", "__", "-"])
def test_normalize_name_refuses_names_without_letters(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be normalized"):
        normalize_name(name)


def test_default_target_keeps_public_tables_and_prefixes_other_schemas() -> None:
    assert default_target("public", "sales") == "sales"
    assert default_target("Odd Schema", "Mixed Case") == "Odd Schema_Mixed Case"


def test_target_name_normalizes_only_the_default() -> None:
    assert target_name("Odd Schema", "Mixed Case", None, normalize=True) == "odd_schema_mixed_case"
    assert target_name("public", "Sales", None, normalize=False) == "Sales"
    # An explicit target is written as the user wrote it.
    assert target_name("public", "sales", "SalesFact", normalize=True) == "SalesFact"


def test_target_name_refuses_the_reserved_prefix() -> None:
    with pytest.raises(ConfigError, match="_shiftsync"):
        target_name("public", "x", "_shiftsync_state", normalize=False)


def test_column_names_maps_each_column() -> None:
    mapping = column_names("public.t", ["Id", "userName", "x"], normalize=True)
    assert mapping == {"Id": "id", "userName": "user_name", "x": "x"}
    assert column_names("public.t", ["Id", "Id2"], normalize=False) == {"Id": "Id", "Id2": "Id2"}


def test_column_names_collision_names_both_columns() -> None:
    with pytest.raises(ConfigError) as caught:
        column_names("public.t", ["UserId", "user_id"], normalize=True)
    message = str(caught.value)
    assert "'UserId'" in message
    assert "'user_id'" in message
    assert "public.t" in message
    assert caught.value.fix is not None
    assert "normalize_names" in caught.value.fix


def test_column_names_refuses_reserved_columns() -> None:
    with pytest.raises(ConfigError, match="_shiftsync_seq"):
        column_names("public.t", ["id", "_shiftsync_seq"], normalize=False)
