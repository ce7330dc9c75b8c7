"""One identifier-quoting function per dialect (shiftsync.sql_quote), and who uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shiftsync.errors import ConfigError
from shiftsync.sql_quote import quote_duckdb, quote_redshift, quote_standard

SRC = Path(__file__).resolve().parents[2] / "src" / "shiftsync"


@pytest.mark.parametrize("quote", [quote_standard, quote_redshift, quote_duckdb])
@pytest.mark.parametrize(
    ("name", "quoted"),
    [("a", '"a"'), ('"', '""""'), ('a""b', '"a""""b"'), ("é", '"é"'), ("a.b c", '"a.b c"')],
)
def test_quoting_doubles_inner_quotes(quote: object, name: str, quoted: str) -> None:
    assert callable(quote)
    assert quote(name) == quoted


@pytest.mark.parametrize("quote", [quote_standard, quote_redshift, quote_duckdb])
@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_impossible_names_are_refused(quote: object, name: str) -> None:
    assert callable(quote)
    with pytest.raises(ConfigError):
        quote(name)


def test_redshift_names_stop_at_127_bytes() -> None:
    assert quote_redshift("x" * 127) == '"' + "x" * 127 + '"'
    with pytest.raises(ConfigError, match="128 bytes"):
        quote_redshift("x" * 128)
    with pytest.raises(ConfigError, match="128 bytes"):
        quote_redshift("é" * 64)  # 64 characters, 128 bytes


def test_no_product_module_writes_its_own_identifier_quoting() -> None:
    # The product's code (not the stand-in, which plays Redshift itself) quotes identifiers
    # only through sql_quote: no other function doubles a double quote.
    offenders = []
    for path in SRC.rglob("*.py"):
        if "local" in path.relative_to(SRC).parts or path.name == "sql_quote.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "replace"
                and [a.value for a in node.args if isinstance(a, ast.Constant)] == ['"', '""']
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []
