"""The ClickHouse translation folds the filters a NULL parameter switches off, and types a
parameter bound to a value as non-Nullable: the text ClickHouse gets, checked against what
SQL's three-valued logic says each filter means (the rows are compared on both engines in
tests/test_catalog_engines.py)."""

from __future__ import annotations

import pytest

from conflictlens.store.clickhouse.engine import _bind, translate

FILTERED = """
SELECT id FROM annotations
WHERE ($since::TIMESTAMP IS NULL OR "at" >= $since::TIMESTAMP)
  AND ($service::VARCHAR IS NULL OR service IS NULL OR service = $service::VARCHAR)
"""


def _where(text: str, nulls: set[str]) -> str:
    sql, _ = translate(text, frozenset(nulls))
    body = sql.split(" SETTINGS ")[0]
    return body.split(" WHERE ", 1)[1] if " WHERE " in body else ""


def test_a_filter_whose_parameter_is_null_is_gone() -> None:
    assert _where(FILTERED, {"since", "service"}) == ""
    assert _where(FILTERED, {"service"}) == '("at" >= {since: })'


def test_a_filter_whose_parameter_has_a_value_keeps_only_its_test() -> None:
    # (service IS NULL is the column's own test: an annotation of no service, kept)
    assert _where(FILTERED, set()) == (
        '("at" >= {since: }) AND (service IS NULL OR service = {service: })'
    )


@pytest.mark.parametrize(
    ("condition", "nulls", "folded"),
    [
        ("NOT ($a::INT IS NULL) AND x = 1", {"a"}, "FALSE"),  # FALSE AND x is FALSE
        ("NOT ($a::INT IS NULL) AND x = 1", set(), "x = 1"),  # TRUE AND x is x
        ("$a::INT IS NULL OR x = 1", {"a"}, ""),  # TRUE OR x is TRUE: no WHERE left
        ("$a::INT IS NULL OR x = 1", set(), "x = 1"),  # FALSE OR x is x
        ("x = 1 OR ($b::INT IS NULL AND y)", {"b"}, "x = 1 OR (y)"),
        ("x IS NULL", set(), "x IS NULL"),  # a column's test is the data's, kept
    ],
)
def test_three_valued_logic(condition: str, nulls: set[str], folded: str) -> None:
    assert _where(f"SELECT 1 FROM t WHERE {condition}", nulls) == folded


def test_a_value_is_bound_non_nullable_and_null_as_nullable() -> None:
    sql, casts = translate("SELECT $a::TIMESTAMP AS a, $b::VARCHAR AS b, $c::VARCHAR[] AS c")
    bound = _bind(sql, dict(casts), {"a": None, "b": "x", "c": ["y"]})
    assert "{a:Nullable(DateTime64(6, 'UTC'))}" in bound
    assert "{b:String}" in bound
    assert "{c:Array(Nullable(String))}" in bound  # a list's items may still be NULL


def test_lag_keeps_duckdbs_null_before_the_first_row() -> None:
    sql, _ = translate("SELECT lag(minute) OVER (ORDER BY minute) AS before FROM t")
    assert "lag(toNullable(minute))" in sql
