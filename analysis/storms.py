"""Retry storms: a client repeating a conflicting request without backing off.

The conflicts of one client on one (method, route, resource) are cut into runs wherever two
tries lie more than ``max_gap_s`` apart. A run of at least ``min_count`` tries is a storm
unless the client backs off: when the median gap of the run's second half is at least
``backoff_factor`` times that of its first half, the client is doing the right thing.
"""

from __future__ import annotations

import duckdb
import polars as pl

from analysis.params import EVENT_FILTER, Filters, TimeRange, closed_range, fetch

_STORMS = f"""
WITH everything AS (
    -- One integer per (client, method, route, resource): sorting and grouping on it is cheap. The
    -- windows carry only it, the time and the row id; the strings are joined back at the end.
    SELECT hash(client, method, route, resource_ids) AS thread, ts, rowid AS event
    FROM conflict_events
    WHERE {EVENT_FILTER} AND client IS NOT NULL
),
-- Only a client with min_count conflicts on one resource in the range can storm on it:
-- the windows below run over those few, not over every conflict.
candidates AS (
    SELECT thread FROM everything GROUP BY thread HAVING count(*) >= $min_count::BIGINT
),
-- The windows order every candidate try by (thread, time, row id) at once, not per thread: one
-- sort of all of them is much cheaper than a window partitioned on a hash of every thread.
-- The row id settles tries at the same instant; pos numbers the tries in that order.
gaps AS (
    SELECT e.*, row_number() OVER w AS pos,
           CASE WHEN lag(thread) OVER w = thread
                THEN epoch_us(ts - lag(ts) OVER w) / 1000.0 END AS gap_ms
    FROM everything e SEMI JOIN candidates USING (thread)
    WINDOW w AS (ORDER BY thread, ts, event)
),
-- A thread's first try has no gap, so a run starts at it or at a gap over max_gap_s; a run's
-- tries are consecutive in pos order, and the run is named by the pos of its first try.
runs AS (
    SELECT *,
           max(CASE WHEN gap_ms IS NULL OR gap_ms > $max_gap_s::DOUBLE * 1000 THEN pos END)
               OVER (ORDER BY pos ROWS UNBOUNDED PRECEDING) AS run
    FROM gaps
),
-- Most runs are a single try: keep only the long ones before medians.
long_runs AS (
    SELECT run, count(*) AS tries FROM runs GROUP BY run HAVING count(*) >= $min_count::BIGINT
),
numbered AS (
    SELECT r.*, r.pos - r.run + 1 AS n, l.tries
    FROM runs r JOIN long_runs l USING (run)
),
described AS (
    SELECT n.*, e.client, e.method, e.route, e.resource_ids, e.error_code, e.user_agent
    FROM numbered n JOIN conflict_events e ON e.rowid = n.event
),
stormy AS (
    SELECT thread, run, any_value(client) AS client, any_value(method) AS method,
           any_value(route) AS route, any_value(resource_ids) AS resource_ids,
           count(*) AS count, min(ts) AS start, max(ts) AS "end",
           -- the first try of a run has no gap inside the run
           median(gap_ms) FILTER (WHERE n > 1) AS median_interval_ms,
           median(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2) AS first_half_ms,
           median(gap_ms) FILTER (WHERE n > (tries + 1) // 2) AS second_half_ms,
           -- the most frequent; a tie goes to the one tried first
           mode(error_code ORDER BY ts, event) AS error_code,
           mode(user_agent ORDER BY ts, event) AS user_agent
    FROM described
    GROUP BY thread, run
)
SELECT client, method, route, nullif(array_to_string(resource_ids, '/'), '') AS resource,
       count, start, "end", median_interval_ms, first_half_ms, second_half_ms, error_code,
       user_agent
FROM stormy
ORDER BY count DESC, start, client
"""  # noqa: S608 - fixed fragments only; every value is bound


def retry_storms(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    min_count: int = 5,
    max_gap_s: float = 10.0,
    backoff_factor: float = 2.0,
    limit: int = 50,
) -> pl.DataFrame:
    """Runs of at least ``min_count`` conflicting tries by one client on one route and
    resource, tries at most ``max_gap_s`` apart, with no backoff; with count, start, end,
    median interval and the client's usual user agent."""
    values = {
        **closed_range(con, time_range, None).params(),
        **filters.params(),
        "min_count": min_count,
        "max_gap_s": max_gap_s,
    }
    runs = fetch(con, _STORMS, values)
    backs_off = pl.col("second_half_ms") >= backoff_factor * pl.col("first_half_ms")
    return (
        runs.filter(~backs_off.fill_null(False))
        .with_columns(span_ms=(pl.col("end") - pl.col("start")).dt.total_milliseconds())
        .drop("first_half_ms", "second_half_ms")
        .head(limit)
    )
