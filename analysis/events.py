"""The conflict events themselves, a page at a time, sorted by a column the caller names.

The order is chosen from a whitelist of fixed ORDER BY texts, never formatted from what the
caller sent. Every order ends in (source_id, offset), which no two events share (one event
per line, or per OTLP record), so the order is total and pages never overlap or skip.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from conflictlens.analysis.params import (
    EVENT_FILTER,
    AnalysisError,
    Filters,
    TimeRange,
    fetch,
    flag,
)
from conflictlens.store.engine import Store

# What Explore may sort by: parameter value -> column (all of them columns of the answer).
EVENT_SORTS: tuple[str, ...] = (
    "ts",
    "method",
    "route",
    "path",
    "status",
    "error_code",
    "kind",
    "client",
    "latency_ms",
    "bytes",
)

_COLUMNS = """
    ts, service, method, path, route, status, error_code, kind, client, user_agent,
    latency_ms, bytes, upstream, request_id, resource_ids, source_id, "offset", raw_line
"""


def _order(column: str, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    if column == "ts":  # newest first and then by position, as the events were always listed
        return f'ts {direction}, source_id, "offset"'
    return f'{column} {direction} NULLS LAST, ts DESC, source_id, "offset"'


_SQL: dict[tuple[str, bool], str] = {
    (column, descending): f"""
    SELECT {_COLUMNS}
    FROM conflict_events
    WHERE {EVENT_FILTER}
    ORDER BY {_order(column, descending)}
    LIMIT $limit::BIGINT OFFSET $offset::BIGINT
    """  # noqa: S608 - fixed texts from the whitelist above; values are bound
    for column in EVENT_SORTS
    for descending in (True, False)
}


def conflict_events(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    limit: int = 1_000_000,
    offset: int = 0,
    sort: str = "ts",
    descending: bool | str = True,
) -> pl.DataFrame:
    """The events in [since, until) matching the filters, ordered by ``sort`` (descending by
    default), page ``offset // limit`` of them."""
    if sort not in EVENT_SORTS:
        raise AnalysisError(f"unknown sort {sort!r}; known: {', '.join(EVENT_SORTS)}")
    if isinstance(descending, str):
        descending = flag(descending, "descending")
    values: dict[str, Any] = {
        **time_range.params(),
        **filters.params(),
        "limit": limit,
        "offset": offset,
    }
    return fetch(con, _SQL[(sort, bool(descending))], values)
