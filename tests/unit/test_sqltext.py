"""The stand-in's SQL text helpers: strings, identifiers, comments and dollar quotes respected."""

from __future__ import annotations

import pytest

from shiftsync.local.dialect.sqltext import (
    Token,
    first_keyword,
    parameter_names,
    statement_count,
    strip_trailing_semicolon,
    substitute_parameters,
    tokenize,
)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _kinds(sql: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(sql)]


# -- tokenize ----------------------------------------------------------------------------------


def test_tokens_put_back_together_are_the_sql() -> None:
    sql = "select 'a''b', \"x\"\"y\" -- c\n/* d */ $t$ e $t$ from z;"
    assert "".join(t.text for t in tokenize(sql)) == sql


def test_plain_code_is_one_token() -> None:
    assert list(tokenize("select 1")) == [Token("code", "select 1")]


def test_empty_sql_has_no_tokens() -> None:
    assert list(tokenize("")) == []


def test_a_string_with_doubled_quotes_is_one_token() -> None:
    assert _kinds("select 'it''s' x") == [
        ("code", "select "),
        ("string", "'it''s'"),
        ("code", " x"),
    ]


def test_a_quoted_identifier_is_one_token() -> None:
    assert _kinds('select "a ""b"" c"') == [("code", "select "), ("ident", '"a ""b"" c"')]


def test_a_line_comment_ends_at_the_newline() -> None:
    assert _kinds("a -- b 'c'\nd") == [("code", "a "), ("comment", "-- b 'c'"), ("code", "\nd")]


def test_a_line_comment_at_the_end_runs_to_the_end() -> None:
    assert _kinds("a -- b") == [("code", "a "), ("comment", "-- b")]


def test_a_block_comment_is_one_token() -> None:
    assert _kinds("a /* b ; c */ d") == [("code", "a "), ("comment", "/* b ; c */"), ("code", " d")]


def test_block_comments_nest_as_in_postgresql() -> None:
    assert _kinds("a /* b /* c */ :d */ e") == [
        ("code", "a "),
        ("comment", "/* b /* c */ :d */"),
        ("code", " e"),
    ]


def test_an_unterminated_block_comment_runs_to_the_end() -> None:
    assert _kinds("a /* b") == [("code", "a "), ("comment", "/* b")]


def test_an_unterminated_string_runs_to_the_end() -> None:
    assert _kinds("select 'abc") == [("code", "select "), ("string", "'abc")]


@pytest.mark.parametrize("tag", ["$$", "$fn$", "$_x1$"])
def test_dollar_quotes_are_one_token(tag: str) -> None:
    body = f"{tag} it's ; -- not a comment {tag}"
    assert _kinds(f"select {body} x") == [("code", "select "), ("dollar", body), ("code", " x")]


def test_a_dollar_quote_ends_only_at_its_own_tag() -> None:
    assert _kinds("$a$ $b$ $a$") == [("dollar", "$a$ $b$ $a$")]


def test_a_positional_dollar_is_code() -> None:
    assert _kinds("select $1") == [("code", "select $1")]


def test_a_dollar_inside_an_identifier_opens_no_quote() -> None:
    assert _kinds("select a$b$ :x") == [("code", "select a$b$ :x")]


# -- statement_count ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("", 0),
        ("   ", 0),
        ("-- only a comment", 0),
        ("select 1", 1),
        ("select 1;", 1),
        ("select 1; ", 1),
        ("select 1; -- trailing comment", 1),
        ("select 1; select 2", 2),
        ("select 1;; select 2;", 2),
        ("select ';'", 1),
        ('select 1 as ";"', 1),
        ("select $$;$$", 1),
        ("select 1 /* ; */", 1),
        ("create function f() returns int as $f$ select 1; $f$ language sql; select f()", 2),
    ],
)
def test_statement_count(sql: str, count: int) -> None:
    assert statement_count(sql) == count


# -- first_keyword -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("select 1", "SELECT"),
        ("  SeLeCt 1", "SELECT"),
        ("-- note\nselect 1", "SELECT"),
        ("/* a */ /* b */ with x as (select 1) select * from x", "WITH"),
        ("(select 1) union (select 2)", "SELECT"),
        ("((values (1)))", "VALUES"),
        ("unload ('select 1') to 's3://b/p'", "UNLOAD"),
        ("insert into t values (1)", "INSERT"),
        ("", ""),
        ("-- nothing", ""),
        ("'a string first'", ""),
        ("123", ""),
    ],
)
def test_first_keyword(sql: str, keyword: str) -> None:
    assert first_keyword(sql) == keyword


# -- parameters --------------------------------------------------------------------------------


def test_parameter_names_in_order_of_first_use() -> None:
    assert parameter_names("select :b, :a, :b") == ["b", "a"]


def test_parameters_in_strings_identifiers_and_comments_are_not_parameters() -> None:
    sql = "select ':a', \":b\", $$:c$$ -- :d\n /* :e */, :f"
    assert parameter_names(sql) == ["f"]


def test_casts_are_not_parameters() -> None:
    assert parameter_names("select x::int, :y::text, now()::date") == ["y"]


def test_parameter_names_start_with_a_letter_or_underscore() -> None:
    assert parameter_names("select :_a1, :2b, a:b") == ["_a1"]


def test_substitute_parameters_quotes_each_value() -> None:
    sql = "select :name, :n::int from t where x = :name"
    assert substitute_parameters(sql, {"name": "it's", "n": "5"}, _quote) == (
        "select 'it''s', '5'::int from t where x = 'it''s'"
    )


def test_substitute_parameters_leaves_strings_and_comments_alone() -> None:
    sql = "select ':a', :a -- :a\n"
    assert substitute_parameters(sql, {"a": "v"}, _quote) == "select ':a', 'v' -- :a\n"


def test_substitute_parameters_leaves_unknown_names() -> None:
    assert substitute_parameters("select :a, :b", {"a": "1"}, _quote) == "select '1', :b"


def test_a_value_cannot_break_out_of_its_literal() -> None:
    text = substitute_parameters("select :v", {"v": "'; drop table t; --"}, _quote)
    assert text == "select '''; drop table t; --'"
    assert statement_count(text) == 1
    assert parameter_names(text) == []


# -- strip_trailing_semicolon ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "stripped"),
    [
        ("select 1", "select 1"),
        ("select 1;", "select 1"),
        ("select 1 ;  \n", "select 1"),
        ("select 1;;", "select 1"),
        ("select 1; -- done", "select 1"),
        ("select 1; /* done */ ", "select 1"),
        ("select ';'", "select ';'"),
        ("select $$;$$;", "select $$;$$"),
        ("", ""),
    ],
)
def test_strip_trailing_semicolon(sql: str, stripped: str) -> None:
    assert strip_trailing_semicolon(sql) == stripped


def test_stripped_sql_can_be_wrapped() -> None:
    body = strip_trailing_semicolon("select 1 as one; -- comment")
    assert statement_count(f"COPY ({body}) TO STDOUT") == 1
    assert "--" not in body
