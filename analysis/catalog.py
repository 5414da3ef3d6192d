"""The query catalog: every question asked of the store is a named, parameterised query.

Values are always bound parameters (``$name``); no caller sends SQL text. Filters that are
not given are bound as NULL and switch themselves off (``$service IS NULL OR ...``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC interval [since, until); either end may be open."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def params(self) -> dict[str, dt.datetime | None]:
        return {"since": _naive_utc(self.since), "until": _naive_utc(self.until)}


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    sql: str
    params: tuple[str, ...] = field(default_factory=tuple)


FILTERS = ("service", "method", "route", "code", "kind")

_EVENT_FILTER = """
    ($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
    AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
    AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
    AND ($code::VARCHAR IS NULL OR error_code = $code::VARCHAR)
    AND ($kind::VARCHAR IS NULL OR kind = $kind::VARCHAR)
"""

# Rollups are per minute: a range boundary inside a minute counts that whole minute.
_ROLLUP_FILTER = """
    ($since::TIMESTAMP IS NULL OR minute >= date_trunc('minute', $since::TIMESTAMP))
    AND ($until::TIMESTAMP IS NULL OR minute < $until::TIMESTAMP)
    AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
"""

CLUSTERS = Query(
    name="clusters",
    description=(
        "Conflicts grouped by service, method, route template, status, error code and kind, "
        "with the requests on that route and method and the conflict ratio."
    ),
    sql=f"""
    WITH conflicts AS (
        SELECT service, method, route, status, error_code, kind, count(*) AS conflicts
        FROM conflict_events
        WHERE {_EVENT_FILTER}
        GROUP BY ALL
    ),
    requests AS (
        SELECT service, method, route, sum(requests) AS requests
        FROM request_rollups
        WHERE {_ROLLUP_FILTER}
        GROUP BY ALL
    )
    SELECT c.service, c.method, c.route, c.status, c.error_code, c.kind, c.conflicts,
           coalesce(r.requests, 0)::BIGINT AS requests,
           CASE WHEN coalesce(r.requests, 0) > 0 THEN c.conflicts / r.requests END AS ratio
    FROM conflicts c
    LEFT JOIN requests r
      ON r.service IS NOT DISTINCT FROM c.service
     AND r.method IS NOT DISTINCT FROM c.method
     AND r.route IS NOT DISTINCT FROM c.route
    ORDER BY c.conflicts DESC, c.method, c.route, c.status, c.error_code
    LIMIT $limit::BIGINT
    """,  # noqa: S608 - only fixed filter fragments are interpolated; values are bound
    params=("since", "until", *FILTERS, "limit"),
)

TOTALS = Query(
    name="totals",
    description="Conflicts, requests and rejected lines in the range, and the store's time span.",
    sql=f"""
    SELECT
        (SELECT count(*) FROM conflict_events WHERE {_EVENT_FILTER}) AS conflicts,
        (SELECT coalesce(sum(requests), 0)::BIGINT FROM request_rollups WHERE {_ROLLUP_FILTER}) AS requests,
        (SELECT coalesce(sum(rejects), 0)::BIGINT FROM sources) AS rejects,
        (SELECT min(minute) FROM request_rollups) AS first_minute,
        (SELECT max(minute) FROM request_rollups) AS last_minute
    """,  # noqa: S608
    params=("since", "until", *FILTERS),
)

REJECTS = Query(
    name="rejects",
    description="Rejected lines by source and reason, with a count and one sample offset.",
    sql="""
    SELECT s.path, r.reason, count(*) AS lines, min(r."offset") AS first_offset
    FROM rejects r JOIN sources s USING (source_id)
    GROUP BY ALL
    ORDER BY lines DESC
    LIMIT $limit::BIGINT
    """,
    params=("limit",),
)

SOURCES = Query(
    name="sources",
    description="Every source the store knows: path, format, byte offset reached, lines, rejects, conflicts.",
    sql="""
    SELECT source_id, path, format, "offset", lines, rejects, conflicts, first_seen, updated_at
    FROM sources ORDER BY updated_at DESC
    """,
)

STORE_STATUS = Query(
    name="store_status",
    description="Row counts of the store's tables and its time span.",
    sql="""
    SELECT
        (SELECT count(*) FROM conflict_events) AS events,
        (SELECT count(*) FROM request_rollups) AS rollup_rows,
        (SELECT coalesce(sum(requests), 0)::BIGINT FROM request_rollups) AS requests,
        (SELECT count(*) FROM rejects) AS rejects,
        (SELECT count(*) FROM sources) AS sources,
        (SELECT min(ts) FROM conflict_events) AS first_event,
        (SELECT max(ts) FROM conflict_events) AS last_event
    """,
)

METRICS = Query(
    name="metrics",
    description="Counters for /metrics: lines and rejects per source, conflicts by route and status "
    "(the 50 busiest routes, the rest as 'other').",
    sql="""
    WITH by_route AS (
        SELECT route, status, count(*) AS n FROM conflict_events GROUP BY ALL
    ), ranked AS (
        SELECT route, status, n, dense_rank() OVER (ORDER BY n DESC, route) AS r FROM by_route
    )
    SELECT 'source' AS metric, path AS label, NULL::SMALLINT AS status, lines, rejects FROM sources
    UNION ALL
    SELECT 'conflicts', CASE WHEN r <= 50 THEN route ELSE 'other' END, status, sum(n)::BIGINT, 0
    FROM ranked GROUP BY ALL
    """,
)

QUERIES: dict[str, Query] = {
    q.name: q for q in (CLUSTERS, TOTALS, REJECTS, SOURCES, STORE_STATUS, METRICS)
}


def run_query(
    con: duckdb.DuckDBPyConnection,
    name: str,
    time_range: TimeRange | None = None,
    **values: Any,
) -> pl.DataFrame:
    """Run catalog query ``name``; unknown parameter names are an error, missing ones NULL."""
    try:
        query = QUERIES[name]
    except KeyError:
        raise KeyError(f"no query named {name!r}; known: {', '.join(QUERIES)}") from None
    unknown = set(values) - set(query.params)
    if unknown:
        raise TypeError(f"query {name!r} takes no parameter(s) {', '.join(sorted(unknown))}")
    bound: dict[str, Any] = dict.fromkeys(query.params)
    if "limit" in bound:
        bound["limit"] = 1_000_000
    bound.update({k: v for k, v in values.items() if v is not None})
    if "since" in bound:
        bound.update((time_range or TimeRange()).params())
    result: pl.DataFrame = con.sql(query.sql, params=_only_used(query, bound)).pl()
    return result


def _only_used(query: Query, bound: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bound.items() if f"${k}" in query.sql}
