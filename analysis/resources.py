"""Hot resources: the single documents, carts or orders that clients fight over.

A resource is the tuple of ids templating removed from the path (``/carts/7/items/3`` → ``7/3``).
Its contention shows in how many conflicting writes to it were in flight at once: each
request covers [start, start + latency]. Gateways stamp the line either when the request began
(Envoy, HAProxy, Traefik, Kong, ALB's request_creation_time is not what we keep) or when the
response was logged (nginx, Apache, Caddy): the source's format says which.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import polars as pl

from analysis.params import (
    DAY,
    EVENT_FILTER,
    HOUR,
    MINUTE,
    AnalysisError,
    Filters,
    TimeRange,
    bucket_width,
    closed_range,
    fetch,
)

# Formats whose timestamp is the request's start; the others log at the response's end.
START_STAMPED = (
    "envoy-text",
    "envoy-json",
    "haproxy-httplog",
    "traefik-json",
    "kong-json",
)

RESOURCE_SORTS = ("peak", "conflicts")

# Only the columns the analysis reads: a CTE used several times is materialised, and
# carrying every path and user agent along costs more than the counting.
_RESOURCE_EVENTS = f"""
    SELECT ts, method, route, resource_ids, client, error_code, latency_ms, source_id,
           hash(method, route, resource_ids) AS thing
    FROM conflict_events
    WHERE {EVENT_FILTER}
      AND len(resource_ids) > 0
      AND ($resource::VARCHAR IS NULL OR array_to_string(resource_ids, '/') = $resource::VARCHAR)
"""  # noqa: S608 - fixed fragments only; every value is bound

# Ranking needs only counts per bucket; clients, error codes and overlapping writes are then
# worked out for the few resources that made the list, not for every resource in the range.
_HOT_RESOURCES = f"""
WITH events AS ({_RESOURCE_EVENTS}),
per_thing AS (
    SELECT thing, route, method, count(*) AS c FROM events GROUP BY ALL
),
-- A resource with one conflict ranks below every resource with more (its peak is 1 too, and
-- ties go to conflicts): in a route with per_route of those, it can never be listed.
busy_routes AS (
    SELECT method, route FROM per_thing WHERE c > 1 GROUP BY ALL
    HAVING count(*) >= $per_route::BIGINT
),
kept AS (
    SELECT thing FROM per_thing p
    WHERE c > 1 OR NOT EXISTS (
        SELECT 1 FROM busy_routes b
        WHERE b.method IS NOT DISTINCT FROM p.method AND b.route IS NOT DISTINCT FROM p.route
    )
),
per_bucket AS (
    -- grouped on one hashed integer per resource: hashing lists of strings is the slow part
    SELECT thing, method, route, time_bucket($width::INTERVAL, ts) AS bucket, count(*) AS n
    FROM events SEMI JOIN kept USING (thing)
    GROUP BY ALL
),
per_resource AS (
    -- ties go to the earliest bucket: the answer must not depend on the thread that won
    SELECT thing, method, route, sum(n)::BIGINT AS conflicts, max(n) AS peak_conflicts,
           first(bucket ORDER BY n DESC, bucket) AS peak_start
    FROM per_bucket
    GROUP BY ALL
),
ranked AS (
    SELECT *,
           row_number() OVER (
               PARTITION BY method, route
               ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
                        conflicts DESC, thing
           ) AS rank_in_route
    FROM per_resource
    QUALIFY rank_in_route <= $per_route::BIGINT
    ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
             conflicts DESC, method, route, thing
    LIMIT $limit::BIGINT
),
chosen AS (
    SELECT e.* FROM events e SEMI JOIN ranked r USING (thing)
),
codes AS (
    SELECT thing, error_code, count(*) AS n FROM chosen GROUP BY ALL
),
top_codes AS (
    SELECT thing, first(error_code ORDER BY n DESC, error_code NULLS LAST) AS top_error_code
    FROM codes GROUP BY thing
),
details AS (
    SELECT thing, any_value(resource_ids) AS resource_ids, count(DISTINCT client) AS clients,
           min(ts) AS first_seen, max(ts) AS last_seen, any_value(t.top_error_code) AS top_error_code
    FROM chosen JOIN top_codes t USING (thing)
    GROUP BY ALL
),
intervals AS (
    SELECT c.thing,
           CASE WHEN list_contains($start_stamped::VARCHAR[], s.format) THEN c.ts
                ELSE c.ts - to_microseconds((coalesce(c.latency_ms, 0) * 1000)::BIGINT) END AS began,
           coalesce(c.latency_ms, 0) AS ms
    FROM chosen c
    LEFT JOIN sources s ON s.source_id = c.source_id
),
edges AS (
    SELECT thing, began AS instant, 1 AS delta FROM intervals
    UNION ALL
    SELECT thing, began + to_microseconds((ms * 1000)::BIGINT), -1 FROM intervals
),
flight AS (
    -- At equal instants ends come first: a write that ends as another begins never overlapped it.
    SELECT thing,
           sum(delta) OVER (PARTITION BY thing ORDER BY instant, delta
                            ROWS UNBOUNDED PRECEDING) AS in_flight
    FROM edges
),
overlap AS (
    SELECT thing, max(in_flight) AS max_overlap FROM flight GROUP BY ALL
)
SELECT r.method, r.route, array_to_string(d.resource_ids, '/') AS resource, r.conflicts,
       d.clients, o.max_overlap::BIGINT AS max_overlap, r.peak_conflicts, r.peak_start,
       d.top_error_code, d.first_seen, d.last_seen, r.rank_in_route
FROM ranked r
JOIN details d USING (thing)
JOIN overlap o USING (thing)
ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN r.peak_conflicts ELSE r.conflicts END DESC,
         r.conflicts DESC, r.method, r.route, resource
"""  # noqa: S608

_RESOURCE_TIMELINE = f"""
WITH events AS ({_RESOURCE_EVENTS})
SELECT time_bucket($width::INTERVAL, ts) AS bucket, method, route,
       array_to_string(resource_ids, '/') AS resource, error_code,
       count(*) AS conflicts, count(DISTINCT client) AS clients
FROM events
GROUP BY ALL
ORDER BY bucket, conflicts DESC, error_code
"""  # noqa: S608


def hot_resources(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    resource: str | None = None,
    by: str = "peak",
    bucket: str | None = None,
    per_route: int = 5,
    limit: int = 50,
) -> pl.DataFrame:
    """The resources with most conflicts, at most ``per_route`` per (method, route), with
    distinct clients and the most conflicting writes in flight at once (max_overlap).

    Ranked ``by`` peak (default: most conflicts within one bucket, 5 minutes for ranges up
    to 36 h) or by conflicts (the whole range). A document edited all day by many people has
    many conflicts spread thin; the one ten editors fight over for ten minutes is the hot
    one, and peak puts it first; both counts are always reported."""
    if by not in RESOURCE_SORTS:
        raise AnalysisError(f"unknown sort {by!r}; known: {', '.join(RESOURCE_SORTS)}")
    closed = closed_range(con, time_range, None)
    values = {
        **closed.params(),
        **filters.params(),
        "width": _peak_width(bucket, closed),
        "by": by,
        "resource": resource,
        "per_route": per_route,
        "limit": limit,
        "start_stamped": list(START_STAMPED),
    }
    return fetch(con, _HOT_RESOURCES, values)


def resource_timeline(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    resource: str | None = None,
    bucket: str | None = None,
) -> pl.DataFrame:
    """One resource's conflicts per time bucket and error code, with the distinct clients
    in each bucket. Without a resource named: the hottest one (the first of hot_resources)."""
    closed = closed_range(con, time_range, None)
    if resource is None:
        top = hot_resources(con, closed, filters, limit=1)
        if top.height == 0:
            return fetch(
                con,
                _RESOURCE_TIMELINE,
                {**closed.params(), **filters.params(), "resource": "", "width": DAY},
            )
        row = top.row(0, named=True)
        resource = row["resource"]
        filters = replace(filters, method=row["method"], route=row["route"])
    width = bucket_width(bucket, closed.span) if closed.span is not None else DAY
    values = {**closed.params(), **filters.params(), "resource": resource, "width": width}
    return fetch(con, _RESOURCE_TIMELINE, values)


def _peak_width(bucket: str | None, closed: TimeRange) -> dt.timedelta:
    if bucket not in (None, "auto") or closed.span is None:
        return bucket_width(bucket, closed.span or DAY)
    return 5 * MINUTE if closed.span <= 36 * HOUR else HOUR
