"""Running the catalog's SQL on ClickHouse: the DuckDB-dialect text is translated once per
text and set of NULL parameters with sqlglot, its ``$name`` parameters become ClickHouse
server-side parameters (``{name:Type}``, Nullable only when bound to NULL), and the Arrow
answer is turned into the frame DuckDB would give (naive UTC timestamps, Int64 counts, plain
strings).

Only what the catalog uses is translated beyond sqlglot's own mapping (the functions in
``_FUNCTIONS``; rowid, which ClickHouse lacks, as a hash of the line's identity; DuckDB's
top-n arg_max; ``//`` as intDiv); a query that needs more is rewritten in the portable subset
next to it (tests/test_catalog_engines.py runs every catalog entry on both engines).
Some rewrites are for ClickHouse's way of running a query, not its dialect: a CTE read more
than once is MATERIALIZED (DuckDB computes it once), qualified projections are aliased,
filters switched off by a NULL parameter are folded away (folding.py: ClickHouse's analyzer
pays for every parameter it resolves), and information_schema.tables reads system.tables.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
import pyarrow as pa

from conflictlens._errors import StoreError, first_line
from conflictlens.store.clickhouse.connection import INSTALL_HINT
from conflictlens.store.clickhouse.folding import fold_null_tests

_TIMESTAMP = "DateTime64(6, 'UTC')"
# DuckDB casts of parameters -> the ClickHouse type bound.
_PARAM_TYPES = {
    "TIMESTAMP": _TIMESTAMP,
    "DATETIME": _TIMESTAMP,
    "VARCHAR": "String",
    "TEXT": "String",
    "BIGINT": "Int64",
    "INT": "Int64",
    "DOUBLE": "Float64",
    "FLOAT": "Float64",
    "BOOLEAN": "Bool",
}


# An outer join's missing side is NULL, as in DuckDB (not the type's default); a CTE marked
# MATERIALIZED is computed once. The Arrow answer is not compressed: in-process (chDB) it only
# costs time both ways, and a server's HTTP answer is compressed by the driver already. No JIT:
# ClickHouse compiles an expression, aggregate or sort the third time it sees it, 30-40 ms
# each, as long as a small catalog query takes to run, and the catalog's few dozen texts
# gained nothing measurable from the compiled code at these sizes.
_SETTINGS = (
    "join_use_nulls = 1, enable_materialized_cte = 1, "
    "output_format_arrow_compression_method = 'none', compile_expressions = 0, "
    "compile_aggregate_expressions = 0, compile_sort_description = 0"
)


def _param_type(duckdb_type: str, fallback: str) -> str:
    """The ClickHouse type of a ``$name::TYPE`` parameter (Nullable added when bound to NULL,
    see _bind); a list's items may be NULL."""
    if duckdb_type.endswith("[]"):
        item = duckdb_type[:-2]
        return f"Array(Nullable({_PARAM_TYPES.get(item, item)}))"
    return _PARAM_TYPES.get(duckdb_type, fallback)


def _sqlglot() -> Any:
    try:
        return importlib.import_module("sqlglot")
    except ImportError:
        raise StoreError(f"the ClickHouse store needs sqlglot: {INSTALL_HINT}") from None


def _value_type(value: Any) -> str:
    """The ClickHouse type of a parameter bound without a cast, from its Python value."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, dt.datetime):
        return _TIMESTAMP
    return "String"


def _call(name: str, *args: Any) -> Any:
    exp = _sqlglot().exp
    items = [exp.Literal.number(a) if isinstance(a, int) else a for a in args]
    items = [exp.Literal.string(a[1:-1]) if isinstance(a, str) else a for a in items]
    return exp.Anonymous(this=name, expressions=items)


def _int_div(node: Any) -> Any:
    """DuckDB's ``a // b`` on integers truncates toward zero (-5 // 2 is -2), as intDiv does."""
    return _call("intDiv", node.this.copy(), node.expression.copy())


def _epoch_us(node: Any) -> Any:
    return _call("toUnixTimestamp64Micro", _call("toDateTime64", node.expressions[0], 6, "'UTC'"))


def _hash(node: Any) -> Any:
    # DuckDB's hash(a, b) is NULL-safe; cityHash64 of NULL is NULL, of a tuple holding one not.
    exp = _sqlglot().exp
    # As Int64: the hashes are keys to join on, never shown; UInt64 would not fit a count.
    hashed = _call("cityHash64", exp.Tuple(expressions=[e.copy() for e in node.expressions]))
    return _call("reinterpretAsInt64", hashed)


def _row_id(node: Any) -> Any:
    """DuckDB's rowid: ClickHouse has none. The catalog uses it as a conflict's identity (to
    fetch a row back, to name a sample), never for its order: the line's source and offset."""
    exp = _sqlglot().exp
    table = node.args.get("table")
    columns = [exp.column(name, table=table.copy() if table else None, quoted=name == "offset")
               for name in ("agent", "source_id", "offset")]  # fmt: skip
    return _call("reinterpretAsInt64", _call("cityHash64", *columns))


_SCHEMA_TABLES = ("information_schema", "tables")


def _tables_of_this_database(node: Any) -> Any:
    """information_schema.tables as the store's own tables: ClickHouse's is a view that
    reads every column of system.tables for every database (milliseconds to list two)."""
    sqlglot = _sqlglot()
    tables = sqlglot.parse_one(
        "SELECT name AS table_name, database AS table_schema FROM system.tables "
        "WHERE database = currentDatabase()",
        read="clickhouse",
    )
    return sqlglot.exp.Subquery(this=tables, alias=sqlglot.exp.TableAlias(
        this=sqlglot.exp.to_identifier(node.alias or "tables")))  # fmt: skip


def _make_timestamp(node: Any) -> Any:
    # make_timestamp(microseconds since the epoch)
    return _call("fromUnixTimestamp64Micro", node.expressions[0].copy(), "'UTC'")


def _microseconds(node: Any) -> Any:
    return _call("toIntervalMicrosecond", node.expressions[0].copy())


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "EPOCH_US": _epoch_us,
    "TO_MICROSECONDS": _microseconds,
    "HASH": _hash,
    "MAKE_TIMESTAMP": _make_timestamp,
}


def _parameter(node: Any, types: dict[str, str]) -> Any:
    """``$name::TYPE`` -> ``{name}``, its type kept for binding (a pass of its own: a node
    replaced by a later pass is not visited again, so a cast inside it would stay)."""
    exp = _sqlglot().exp
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Placeholder):
        name = node.this.name
        types[name] = _param_type(node.to.sql("duckdb").upper(), node.to.sql("clickhouse"))
        return exp.Placeholder(this=name)
    return node


def _transform(node: Any) -> Any:
    """Leaves first: functions (the last pass rebuilds their parents)."""
    exp = _sqlglot().exp
    if isinstance(node, exp.Try) and isinstance(node.this, exp.Decode):
        # try(decode(blob)): the text when it is UTF-8, else NULL
        blob = node.this.this.copy()
        return exp.If(this=_call("isValidUTF8", blob), true=blob.copy(), false=exp.Null())
    if isinstance(node, exp.Column) and node.name.lower() == "rowid":
        return _row_id(node)
    if isinstance(node, exp.Table) and (node.db.lower(), node.name.lower()) == _SCHEMA_TABLES:
        return _tables_of_this_database(node)
    if isinstance(node, (exp.Lag, exp.Lead)):
        # Before the first row (after the last) DuckDB gives NULL; ClickHouse gives the
        # type's default (1970-01-01, 0) unless the column is Nullable.
        node.set("this", _call("toNullable", node.this.copy()))
        return node
    if isinstance(node, exp.Anonymous) and node.name.upper() in _FUNCTIONS:
        return _FUNCTIONS[node.name.upper()](node)
    return node


def _top_n(node: Any) -> Any:
    """DuckDB's arg_max(x, v, n): the x of the n highest v, as a list (ties in any order)."""
    exp = _sqlglot().exp
    pairs = _call("groupArray", exp.Tuple(expressions=[exp.Neg(this=node.expression.copy()),
                                                       node.this.copy()]))  # fmt: skip
    second = exp.Lambda(
        this=exp.Dot(this=exp.column("t"), expression=exp.Literal.number(2)),
        expressions=[exp.to_identifier("t")],
    )
    return _call("arraySlice", _call("arrayMap", second, _call("arraySort", pairs)), 1,
                 node.args["count"].copy())  # fmt: skip


def _rebuild(node: Any) -> Any:
    """Operators whose operands are rewritten by the first pass."""
    exp = _sqlglot().exp
    if isinstance(node, exp.ArgMax) and node.args.get("count") is not None:
        return _top_n(node)
    if isinstance(node, exp.Select):
        # DuckDB names ``l.rid`` rid; ClickHouse may keep the qualified name in a subquery.
        node.set("expressions", [
            exp.alias_(e, e.name) if isinstance(e, exp.Column) and e.table and
            not isinstance(e.this, exp.Star) else e
            for e in node.expressions
        ])  # fmt: skip
    if isinstance(node, exp.GenerateSeries):
        # DuckDB's range(a, b) ends before b, as ClickHouse's range does.
        end = node.args["end"].copy()
        if not node.args.get("is_end_exclusive"):
            end = exp.Add(this=end, expression=exp.Literal.number(1))
        return _call("range", node.args["start"].copy(), end)
    if isinstance(node, exp.IntDiv):
        return _int_div(node)
    return node


def _materialise_shared(tree: Any) -> None:
    """A CTE read more than once is computed once, as DuckDB does; ClickHouse would otherwise
    run it again at every reference (and every CTE built on it)."""
    exp = _sqlglot().exp
    reads: dict[str, int] = {}
    for table in tree.find_all(exp.Table):
        if not table.args.get("db"):
            reads[table.name] = reads.get(table.name, 0) + 1
    for cte in tree.find_all(exp.CTE):
        if reads.get(cte.alias, 0) > 1:
            cte.set("materialized", True)


@functools.lru_cache(maxsize=1024)
def translate(
    text: str, nulls: frozenset[str] | None = None
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The ClickHouse SQL for a catalog text, with the parameter names it binds and the
    types given by their casts (``{name}`` marks where each goes). With ``nulls``, the names
    of the parameters bound to NULL (every other one is bound to a value), the filters they
    switch off are folded away (store/clickhouse/folding.py)."""
    sqlglot = _sqlglot()
    tree = sqlglot.parse_one(text, read="duckdb")
    types: dict[str, str] = {}
    tree = tree.transform(lambda node: _parameter(node, types))
    if nulls is not None:
        fold_null_tests(tree, nulls, sqlglot.exp)
    tree = tree.transform(_transform).transform(_rebuild)
    _materialise_shared(tree)
    # The catalog's comments are for its readers: the driver scans every character of the
    # text for parameters, in Python, on every run (resources' comments were most of it).
    sql = tree.sql(dialect="clickhouse", comments=False)
    # In the text, not as the driver's settings: a server may keep no session, and chDB
    # through the driver pays a round trip per query for settings passed apart.
    return f"{sql} SETTINGS {_SETTINGS}", tuple(types.items())


def _bind(sql: str, casts: Mapping[str, str], params: Mapping[str, Any]) -> str:
    """Placeholders ``{name: }`` become ``{name:Type}``, ``{name:Nullable(Type)}`` when the
    value is NULL: a value known not to be NULL keeps every expression on it out of
    Nullable (a filter switched off by ``$x IS NULL`` folds away, a window number computed
    from ``$until`` is a plain Int64 key to group by, which is much faster)."""
    for name, value in params.items():
        kind = casts.get(name) or _value_type(value)
        if value is None and not kind.startswith("Array("):
            kind = f"Nullable({kind})"
        sql = sql.replace(f"{{{name}: }}", f"{{{name}:{kind}}}")
    return sql


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _plain(column.cast(kind.value_type))
    if pa.types.is_timestamp(kind):
        if kind.unit != "us":
            column = column.cast(pa.timestamp("us", tz=kind.tz))
        # Arrow keeps UTC instants whatever the zone: as naive UTC they are the same integers,
        # taken as they are (a cast to a naive type costs tens of ms a million rows).
        naive = pa.timestamp("us")
        return pa.chunked_array([chunk.view(naive) for chunk in column.chunks], naive)
    if pa.types.is_unsigned_integer(kind) and kind.bit_width == 64:
        return column.cast(pa.int64())
    if pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        return column.cast(pa.string()) if pa.types.is_large_string(kind) else column
    return column


def to_frame(table: pa.Table) -> pl.DataFrame:
    """The frame DuckDB would answer: naive UTC timestamps, Int64 counts, plain strings."""
    columns = [_plain(table.column(i)) for i in range(table.num_columns)]
    frame = pl.from_arrow(pa.table(columns, names=table.column_names))
    assert isinstance(frame, pl.DataFrame)
    return frame


class ClickHouseEngine:
    """The catalog on a ClickHouse store (a server, or chDB in-process)."""

    name = "clickhouse"

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        values = dict(params or {})
        nulls = frozenset(name for name, value in values.items() if value is None)
        translated, casts = translate(text, nulls)
        sql = _bind(translated, dict(casts), values)
        # a parameter only a folded filter read is not sent
        values = {name: value for name, value in values.items() if f"{{{name}:" in sql}
        try:
            table = self.client.query_arrow(sql, parameters=values)
        except Exception as exc:  # the driver's errors share no base worth naming
            raise StoreError(f"ClickHouse could not answer: {first_line(exc)}") from None
        return to_frame(table)
