"""Retry storms: a client repeating a conflicting request without backing off.

The conflicts of one client on one (method, route, resource) are cut into runs wherever two
tries lie more than ``max_gap_s`` apart. A run of at least ``min_count`` tries is a storm
unless the client backs off: when the median gap of the run's second half is at least
``backoff_factor`` times that of its first half, the client is doing the right thing.

Logs stamp requests in whole seconds (nginx ``$time_local``, Apache ``%t``), milliseconds or
microseconds. Each run's resolution is read off its timestamps (``resolution_ms``); when it is
coarser than the tries, gaps of 0 are ties, not evidence of anything, so the interval and the
backoff test come from the halves' spans instead (see ``_backs_off``).
"""

from __future__ import annotations

import polars as pl

from conflictlens.analysis.params import EVENT_FILTER, Filters, TimeRange, closed_range, fetch
from conflictlens.store.engine import Store

_STORMS = f"""
WITH everything AS (
    -- One integer per (client, method, route, resource): sorting and grouping on it is cheap. The
    -- windows carry only it, the time and the row id; the strings are joined back at the end.
    SELECT hash(client, method, route, resource_ids) AS thread, ts, source_id, "offset",
           rowid AS event
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
-- The line's source and offset settle tries at the same instant (the row id is an identity,
-- not an order on every engine); pos numbers the tries in that order.
gaps AS (
    SELECT e.*, row_number() OVER w AS pos,
           CASE WHEN lag(thread) OVER w = thread
                THEN epoch_us(ts - lag(ts) OVER w) / 1000.0 END AS gap_ms
    FROM everything e SEMI JOIN candidates USING (thread)
    WINDOW w AS (ORDER BY thread, ts, source_id, "offset")
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
-- How often each error code and user agent occurs in its run, and its first try there: the
-- most frequent is kept, a tie going to the one tried first (no value is NULL: arg_max skips it).
weighed AS (
    SELECT *,
           (count(*) OVER (PARTITION BY run, error_code),
            -min(pos) OVER (PARTITION BY run, error_code)) AS code_weight,
           (count(*) OVER (PARTITION BY run, user_agent),
            -min(pos) OVER (PARTITION BY run, user_agent)) AS agent_weight
    FROM described
),
stormy AS (
    SELECT thread, run, any_value(client) AS client, any_value(method) AS method,
           any_value(route) AS route, any_value(resource_ids) AS resource_ids,
           count(*) AS count, min(ts) AS start, max(ts) AS "end",
           -- the first try of a run has no gap inside the run
           median(gap_ms) FILTER (WHERE n > 1) AS median_interval_ms,
           median(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2) AS first_half_ms,
           median(gap_ms) FILTER (WHERE n > (tries + 1) // 2) AS second_half_ms,
           coalesce(sum(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2), 0)
               AS first_half_span_ms,
           count(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2) AS first_half_gaps,
           coalesce(sum(gap_ms) FILTER (WHERE n > (tries + 1) // 2), 0) AS second_half_span_ms,
           count(gap_ms) FILTER (WHERE n > (tries + 1) // 2) AS second_half_gaps,
           -- the finest unit the run's timestamps show: whole seconds, milliseconds or finer
           CASE WHEN max(abs(epoch_us(ts) % 1000000)) = 0 THEN 1000.0
                WHEN max(abs(epoch_us(ts) % 1000)) = 0 THEN 1.0
                ELSE 0.001 END::DOUBLE AS resolution_ms,
           arg_max(error_code, code_weight) AS error_code,
           arg_max(user_agent, agent_weight) AS user_agent
    FROM weighed
    GROUP BY thread, run
)
SELECT client, method, route, nullif(array_to_string(resource_ids, '/'), '') AS resource,
       count, start, "end", median_interval_ms, first_half_ms, second_half_ms,
       first_half_span_ms, first_half_gaps, second_half_span_ms, second_half_gaps,
       resolution_ms, error_code, user_agent
FROM stormy
ORDER BY count DESC, start, client
"""  # noqa: S608 - fixed fragments only; every value is bound


def retry_storms(
    con: Store,
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
    return (
        runs.with_columns(span_ms=(pl.col("end") - pl.col("start")).dt.total_milliseconds())
        .with_columns(coarse=2 * pl.col("resolution_ms") > _mean_interval())
        .filter(~_backs_off(backoff_factor).fill_null(False))
        .with_columns(
            median_interval_ms=pl.when(pl.col("coarse"))
            .then(_mean_interval())
            .otherwise(pl.col("median_interval_ms"))
        )
        .drop(
            "first_half_ms",
            "second_half_ms",
            "first_half_span_ms",
            "first_half_gaps",
            "second_half_span_ms",
            "second_half_gaps",
            "coarse",
        )
        .head(limit)
    )


def _mean_interval() -> pl.Expr:
    """The run's interval from its span and count: the only honest figure when the log's
    timestamps are coarser than the tries (720 tries in 3 minutes of whole-second stamps
    are 250 ms apart, though most gaps read 0 and a few 1000)."""
    return pl.col("span_ms") / (pl.col("count") - 1)


def _backs_off(factor: float) -> pl.Expr:
    """The client backs off when its tries spread out: the second half's gaps are at least
    ``factor`` times the first half's. Measured by median gaps where the timestamps resolve
    the tries; where they are coarser, ties at one instant are tries without any backoff,
    so each half's interval is bounded from its span, which is uncertain by one unit either
    way, and backoff needs the second half's least possible interval to be ``factor`` times
    the first half's greatest."""
    unit = pl.col("resolution_ms")
    slowest_first = (pl.col("first_half_span_ms") + unit) / pl.col("first_half_gaps")
    fastest_second = (pl.col("second_half_span_ms") - unit) / pl.col("second_half_gaps")
    by_bounds = fastest_second >= factor * slowest_first
    by_medians = (pl.col("second_half_ms") > 0) & (
        pl.col("second_half_ms") >= factor * pl.col("first_half_ms")
    )
    return pl.when(pl.col("coarse")).then(by_bounds).otherwise(by_medians)
