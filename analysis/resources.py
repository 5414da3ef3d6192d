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

import polars as pl

from conflictlens.analysis.params import (
    DAY,
    EVENT_FILTER,
    HOUR,
    MINUTE,
    AnalysisError,
    Filters,
    TimeRange,
    bucket_width,
    check_buckets,
    closed_range,
    fetch,
)
from conflictlens.store.engine import Store

# Formats whose timestamp is the request's start; the others log at the response's end.
START_STAMPED = (
    "envoy-text",
    "envoy-json",
    "haproxy-httplog",
    "traefik-json",
    "kong-json",
)

RESOURCE_SORTS = ("peak", "conflicts")

# The ranking reads only the hashed resource and route, the time and the row id: a CTE used
# several times is materialised, and carrying lists, paths and user agents along costs more
# than the counting. The rows of the few resources that made the list are then fetched in
# full by row id (chosen).
_RESOURCE_MATCH = f"""
    {EVENT_FILTER}
      AND array_length(resource_ids) > 0
      AND ($resource::VARCHAR IS NULL OR array_to_string(resource_ids, '/') = $resource::VARCHAR)
"""

_RANKED = f"""
events AS (
    SELECT hash(method, route, resource_ids) AS thing, hash(method, route) AS rid, ts,
           rowid AS event
    FROM conflict_events
    WHERE {_RESOURCE_MATCH}
),
-- Routes are told apart by a hash too (rid): strings cost more to carry and to group. The
-- resource hash covers method and route, so any rid of a resource is its own; its method and
-- route strings are fetched (by the row id of one of its conflicts) only for those kept.
per_thing AS (
    SELECT thing, any_value(rid) AS rid, count(*) AS c, min(event) AS sample
    FROM events GROUP BY thing
),
-- Peaks per bucket are costly to count for every resource, so only resources that can still
-- make the list are counted. The per_route resources of each route with most conflicts
-- ("leaders", ties broken anyhow: only a bound is drawn from them) have real peaks; a
-- resource's peak is at most its conflicts. So a resource whose conflicts are below
--  * its route's floor (the lowest of the route's per_route leaders' scores) ranks below
--    per_route resources of its route, or
--  * the bar (the limit-th highest score of all leaders) ranks below limit resources that
--    are each in their route's top per_route
-- can never be listed, and dropping it changes no listed resource's rank in its route (all
-- that rank above a listed one score at least as much, so they are kept). Any per_route or
-- fewer resources of a route give a true bound: capping them at arg_max's limit only weakens it.
leaders AS (
    SELECT rid, unnest(top) AS thing FROM (
        SELECT rid, arg_max(thing, c, least(greatest($per_route::BIGINT, 1), 999999)) AS top
        FROM per_thing GROUP BY rid
    )
),
leader_peaks AS (
    SELECT thing, max(n) AS peak FROM (
        SELECT thing, make_timestamp(epoch_us(ts) // $width_us * $width_us) AS bucket, count(*) AS n
        FROM events SEMI JOIN leaders USING (thing)
        GROUP BY ALL
    )
    GROUP BY thing
),
leader_scores AS (
    SELECT l.rid,
           CASE WHEN $by::VARCHAR = 'peak' THEN lp.peak ELSE p.c END AS score
    FROM leaders l JOIN leader_peaks lp USING (thing) JOIN per_thing p USING (thing)
),
floors AS (
    SELECT rid,
           CASE WHEN count(*) >= $per_route::BIGINT THEN min(score) ELSE 0 END AS floor
    FROM leader_scores GROUP BY rid
),
-- joined, not a scalar subquery: ClickHouse runs those while planning, the CTEs under them
-- again each time
bar AS (
    SELECT coalesce(max(score), 0) AS bar FROM (
        SELECT score FROM leader_scores ORDER BY score DESC
        LIMIT 1 OFFSET greatest($limit::BIGINT, 1) - 1
    )
),
-- Rows fetched by row id are looked up among the range's only, and joined with the few
-- wanted on the right: ClickHouse builds its hash table from the right side (all stored
-- events, hashed, the other way round), and an IN (subquery) would plan the CTEs under it
-- again.
kept AS (
    -- ties are ranked by the resource's text: a hash's order differs between engines
    SELECT p.thing, p.sample, e.method, e.route,
           array_to_string(e.resource_ids, '/') AS resource_text
    FROM (
        SELECT rowid AS event, method, route, resource_ids FROM conflict_events
        WHERE {_RESOURCE_MATCH}
    ) e
    JOIN (
        SELECT p.thing, p.sample
        FROM per_thing p
        JOIN floors f USING (rid)
        CROSS JOIN bar b
        WHERE p.c >= f.floor AND p.c >= b.bar
    ) p ON p.sample = e.event
),
per_bucket AS (
    -- grouped on one hashed integer per resource: hashing lists of strings is the slow part
    SELECT thing, make_timestamp(epoch_us(ts) // $width_us * $width_us) AS bucket, count(*) AS n
    FROM events SEMI JOIN kept USING (thing)
    GROUP BY ALL
),
per_resource AS (
    -- ties go to the earliest bucket: the answer must not depend on the thread that won
    SELECT thing, sum(n)::BIGINT AS conflicts, max(n)::BIGINT AS peak_conflicts,
           arg_min(bucket, (-n, bucket)) AS peak_start
    FROM per_bucket
    GROUP BY thing
),
ranked AS (
    SELECT k.method, k.route, k.resource_text, k.sample, r.*,
           row_number() OVER (
               PARTITION BY k.method, k.route
               ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
                        conflicts DESC, k.resource_text
           ) AS rank_in_route
    FROM per_resource r JOIN kept k USING (thing)
    QUALIFY rank_in_route <= $per_route::BIGINT
    ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
             conflicts DESC, method, route, resource_text
    LIMIT $limit::BIGINT
)"""  # noqa: S608 - fixed fragments only; every value is bound

# Ranking needs only counts per bucket; clients, error codes and overlapping writes are then
# worked out for the few resources that made the list (_RESOURCE_DETAILS), not for every
# resource in the range. Two questions, not one: ClickHouse's analyzer copies a CTE's whole
# tree at every read of it, and the details read the ranking three times, so as one query the
# chain above was planned a dozen times over (0.3 s of 0.5, before a row was read).
_RANKING = f"""
WITH {_RANKED}
SELECT thing, sample, method, route, resource_text AS resource, conflicts, peak_conflicts,
       peak_start, rank_in_route
FROM ranked
ORDER BY CASE WHEN $by::VARCHAR = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
         conflicts DESC, method, route, resource
"""  # noqa: S608

# The listed resources' conflicts in full: the resources are named by one conflict each
# (sample, a row id; a row id is a BIGINT on every engine, a hash is not).
_RESOURCE_DETAILS = f"""
WITH wanted AS (
    SELECT DISTINCT hash(method, route, resource_ids) AS thing
    FROM conflict_events
    WHERE {_RESOURCE_MATCH}
      AND list_contains($samples::BIGINT[], rowid)
),
chosen AS (
    SELECT thing, ts, client, error_code, latency_ms, source_id FROM (
        SELECT hash(method, route, resource_ids) AS thing, ts, client, error_code, latency_ms,
               source_id
        FROM conflict_events
        WHERE {_RESOURCE_MATCH}
    ) e SEMI JOIN wanted USING (thing)
),
codes AS (
    SELECT thing, error_code, count(*) AS n FROM chosen GROUP BY ALL
),
top_codes AS (
    SELECT thing, error_code AS top_error_code FROM (
        SELECT thing, error_code,
               row_number() OVER (PARTITION BY thing ORDER BY n DESC, error_code NULLS LAST)
                   AS code_rank
        FROM codes
    ) WHERE code_rank = 1
),
details AS (
    SELECT thing, count(DISTINCT client) AS clients, min(ts) AS first_seen, max(ts) AS last_seen
    FROM chosen
    GROUP BY thing
),
intervals AS (
    SELECT c.thing,
           CASE WHEN list_contains($start_stamped::VARCHAR[], s.format) THEN c.ts
                ELSE c.ts - to_microseconds((coalesce(c.latency_ms, 0) * 1000)::BIGINT) END AS began,
           coalesce(c.latency_ms, 0) AS ms
    FROM chosen c
    LEFT JOIN sources s ON s.source_id = c.source_id
),
-- Each write's start (+1) and end (-1), from one read of intervals (ClickHouse plans a CTE
-- again for every read).
edges AS (
    SELECT i.thing,
           CASE WHEN d.delta = 1 THEN i.began
                ELSE i.began + to_microseconds((i.ms * 1000)::BIGINT) END AS instant,
           d.delta
    FROM intervals i CROSS JOIN (SELECT 1 AS delta UNION ALL SELECT -1 AS delta) d
),
flight AS (
    -- At equal instants ends come first: a write that ends as another begins never overlapped
    -- it. One running sum over all resources in (resource, time) order: each resource's
    -- edges sum to zero, so at any edge it equals that resource's own running sum, and one
    -- sort is much cheaper than a window partitioned per resource.
    SELECT thing,
           sum(delta) OVER (ORDER BY thing, instant, delta ROWS UNBOUNDED PRECEDING) AS in_flight
    FROM edges
),
overlap AS (
    SELECT thing, max(in_flight) AS max_overlap FROM flight GROUP BY ALL
)
SELECT d.thing, d.clients, o.max_overlap::BIGINT AS max_overlap, t.top_error_code,
       d.first_seen, d.last_seen
FROM details d
JOIN top_codes t USING (thing)
JOIN overlap o USING (thing)
"""  # noqa: S608

_LISTED_COLUMNS = (
    "method", "route", "resource", "conflicts", "clients", "max_overlap", "peak_conflicts",
    "peak_start", "top_error_code", "first_seen", "last_seen", "rank_in_route",
)  # fmt: skip

# The hottest resource alone (resource_timeline's default): the first row of _RANKING
# without the details that row would carry (its text is kept's, taken from one of its
# conflicts; every conflict of a resource has the same ids).
_TOP_RESOURCE = f"""
WITH {_RANKED}
SELECT method, route, resource_text AS resource FROM ranked
"""  # noqa: S608

_RESOURCE_TIMELINE = f"""
SELECT make_timestamp(epoch_us(ts) // $width_us * $width_us) AS bucket, method, route,
       array_to_string(resource_ids, '/') AS resource, error_code,
       count(*) AS conflicts, count(DISTINCT client) AS clients
FROM conflict_events
WHERE {_RESOURCE_MATCH}
GROUP BY ALL
ORDER BY bucket, conflicts DESC, error_code
"""  # noqa: S608

# Buckets in microseconds from the epoch: time_bucket's buckets for every width dividing a
# day (all of BUCKETS), and the same on every engine.
_MICROSECOND = dt.timedelta(microseconds=1)


def hot_resources(
    con: Store,
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
    values = _ranking_values(closed, filters, resource, by, bucket, per_route, limit)
    ranking = fetch(con, _RANKING, values)
    details = fetch(
        con,
        _RESOURCE_DETAILS,
        {
            **values,
            "samples": ranking["sample"].to_list(),
            "start_stamped": list(START_STAMPED),
        },
    )
    # In the ranking's order. The two questions are two reads: a resource whose conflicts
    # went (retention) in between is left out, as the one query's inner joins left it out,
    # and a late line landing in the range in between counts in its details only.
    listed = ranking.join(details, on="thing", how="inner", maintain_order="left")
    return listed.select(_LISTED_COLUMNS)


def resource_timeline(
    con: Store,
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
        # hot_resources' first row, without working out its clients and overlaps
        top = fetch(con, _TOP_RESOURCE, _ranking_values(closed, filters, None, "peak", None, 5, 1))
        if top.height == 0:
            return fetch(
                con,
                _RESOURCE_TIMELINE,
                {
                    **closed.params(),
                    **filters.params(),
                    "resource": "",
                    "width_us": DAY // _MICROSECOND,
                },
            )
        row = top.row(0, named=True)
        resource = row["resource"]
        filters = replace(filters, method=row["method"], route=row["route"])
    width = bucket_width(bucket, closed.span) if closed.span is not None else DAY
    check_buckets(closed.span or DAY, width)
    values = {
        **closed.params(),
        **filters.params(),
        "resource": resource,
        "width_us": width // _MICROSECOND,
    }
    return fetch(con, _RESOURCE_TIMELINE, values)


def _ranking_values(
    closed: TimeRange,
    filters: Filters,
    resource: str | None,
    by: str,
    bucket: str | None,
    per_route: int,
    limit: int,
) -> dict[str, object]:
    return {
        **closed.params(),
        **filters.params(),
        "width_us": _peak_width(bucket, closed) // _MICROSECOND,
        "by": by,
        "resource": resource,
        "per_route": per_route,
        "limit": limit,
    }


def _peak_width(bucket: str | None, closed: TimeRange) -> dt.timedelta:
    if bucket not in (None, "auto") or closed.span is None:
        return bucket_width(bucket, closed.span or DAY)
    return 5 * MINUTE if closed.span <= 36 * HOUR else HOUR
