"""The analysis benchmark's peer: the same questions as catalog queries, answered from one row
per request (``raw_requests``), as a tool that keeps every line would ask them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

CONFLICT_STATUSES = "(409, 412, 423, 428)"

# The same question as a catalog query, answered from one row per request. Parameters are
# bound like the catalog's ($since, $until, $limit); only those a text names are passed.
PEER_SQL: dict[str, str] = {
    "clusters": f"""
    WITH g AS (
        SELECT service, method, route, status, error_code, kind, count(*) AS n
        FROM raw_requests
        WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
        GROUP BY ALL
    ), t AS (
        SELECT *, sum(n) OVER (PARTITION BY service, method, route) AS requests FROM g
    )
    SELECT service, method, route, status, error_code, kind, n AS conflicts,
           requests::BIGINT AS requests,
           CASE WHEN requests > 0 THEN n / requests END AS ratio
    FROM t
    WHERE status IN {CONFLICT_STATUSES}
    ORDER BY conflicts DESC, method, route, status, error_code
    LIMIT $limit::BIGINT
    """,  # noqa: S608 - a fixed status list is interpolated; values are bound
    "totals": f"""
    SELECT
        count(*) FILTER (WHERE status IN {CONFLICT_STATUSES}) AS conflicts,
        count(*) AS requests,
        0::BIGINT AS rejects,
        (SELECT date_trunc('minute', min(ts)) FROM raw_requests) AS first_minute,
        (SELECT date_trunc('minute', max(ts)) FROM raw_requests) AS last_minute
    FROM raw_requests
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
    """,  # noqa: S608
    "event_count": f"""
    SELECT count(*) AS events
    FROM raw_requests
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP AND status IN {CONFLICT_STATUSES}
    """,  # noqa: S608
    # The bucket width follows the analysis' automatic choice (analysis.params.bucket_for).
    "timeline": f"""
    WITH p AS (
        SELECT CASE WHEN $until::TIMESTAMP - $since::TIMESTAMP <= INTERVAL 2 HOUR THEN INTERVAL 1 MINUTE
                    WHEN $until::TIMESTAMP - $since::TIMESTAMP <= INTERVAL 36 HOUR THEN INTERVAL 5 MINUTE
                    WHEN $until::TIMESTAMP - $since::TIMESTAMP <= INTERVAL 31 DAY THEN INTERVAL 1 HOUR
                    ELSE INTERVAL 1 DAY END AS width
    ), g AS (
        SELECT time_bucket(p.width, ts) AS bucket, service, method, route, status, error_code, kind,
               count(*) AS n
        FROM raw_requests, p
        WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP
        GROUP BY ALL
    ), t AS (
        SELECT *, sum(n) OVER (PARTITION BY bucket, service, method, route) AS requests FROM g
    ), c AS (
        SELECT bucket, service, method, route, error_code, kind, sum(n)::BIGINT AS conflicts,
               any_value(requests)::BIGINT AS requests
        FROM t
        WHERE status IN {CONFLICT_STATUSES}
        GROUP BY ALL
    )
    SELECT bucket, service, method, route, error_code, kind, conflicts, requests,
           CASE WHEN requests > 0 THEN conflicts / requests END AS ratio,
           conflicts / sum(conflicts) OVER (PARTITION BY bucket) AS share,
           epoch(p.width)::INTEGER AS bucket_seconds
    FROM c, p
    ORDER BY bucket, conflicts DESC, method, route, error_code
    """,  # noqa: S608
}


def open_raw(path: Path) -> Callable[[], duckdb.DuckDBPyConnection]:
    def opener() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        return con

    return opener


def run_peer(
    sql: str, since: dt.datetime, until: dt.datetime
) -> Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]:
    values = {"since": since, "until": until, "limit": 1_000_000}
    params = {k: v for k, v in values.items() if f"${k}" in sql}
    return lambda con: con.sql(sql, params=params).pl()


def comparable(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples, floats rounded, sorted: the answer without ties' order or float noise."""
    rows = [
        tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in frame.iter_rows()
    ]
    return sorted(rows, key=repr)


def same_answer(ours: pl.DataFrame | None, peer: pl.DataFrame | None) -> str:
    if ours is None or peer is None:
        return "-"
    if ours.columns != peer.columns:
        return "cols differ"
    return "same" if comparable(ours) == comparable(peer) else "DIFFERS"
