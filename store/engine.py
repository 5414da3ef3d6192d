"""The seam between the query catalog and a store: an Engine runs the catalog's SQL (DuckDB
dialect, values bound as ``$name`` parameters) and answers a Polars frame.

The embedded DuckDB store answers the SQL as written (DuckDBEngine). A ClickHouse store
(store/clickhouse/engine.py) translates it first and answers with the same columns and types.
Every function that reads takes either an Engine or a bare DuckDB connection (``Store``), so
callers that hold a connection keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import duckdb
import polars as pl


@runtime_checkable
class Engine(Protocol):
    """Runs one SQL text of the catalog with its bound values."""

    @property
    def name(self) -> str: ...

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame: ...


class DuckDBEngine:
    """The embedded store: DuckDB runs the catalog's SQL as written."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        frame: pl.DataFrame = self.con.sql(text, params=dict(params or {})).pl()
        return frame


Store = Engine | duckdb.DuckDBPyConnection


def as_engine(store: Store) -> Engine:
    """An Engine for ``store``: a DuckDB connection is wrapped, an Engine kept."""
    if isinstance(store, duckdb.DuckDBPyConnection):
        return DuckDBEngine(store)
    return store


def engine_name(store: Store) -> str:
    return as_engine(store).name
