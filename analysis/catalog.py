"""The query catalog: every question asked of the store is a named, parameterised query.

Values are always bound parameters (``$name``); no caller sends SQL text. Filters that are
not given are bound as NULL and switch themselves off (``$service IS NULL OR ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from conflictlens.analysis.events import EVENT_SORTS, conflict_events
from conflictlens.analysis.hotspots import SORTS, hot_spots
from conflictlens.analysis.incidents import anomalous_buckets, incidents
from conflictlens.analysis.params import (
    EVENT_FILTER,
    FILTERS,
    ROLLUP_FILTER,
    Filters,
    ParamType,
    TimeRange,
    check_param,
    flag,
)
from conflictlens.analysis.resources import RESOURCE_SORTS, hot_resources, resource_timeline
from conflictlens.analysis.storms import retry_storms
from conflictlens.analysis.timeline import clusters_over_time
from conflictlens.store.engine import Store, as_engine


@dataclass(frozen=True)
class Query:
    """A question answered by one fixed SQL text with bound parameters."""

    name: str
    description: str
    sql: str
    params: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Analysis:
    """A question answered by a function (several queries, or work in Polars): it takes the
    time range, the filters, and the options named in ``options`` with their types."""

    name: str
    description: str
    run: Callable[..., pl.DataFrame]
    options: Mapping[str, ParamType] = field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        return ("since", "until", *FILTERS, *self.options)


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
        WHERE {EVENT_FILTER}
        GROUP BY ALL
    ),
    requests AS (
        SELECT service, method, route, sum(requests) AS requests
        FROM request_rollups
        WHERE {ROLLUP_FILTER}
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
        (SELECT count(*) FROM conflict_events WHERE {EVENT_FILTER}) AS conflicts,
        (SELECT coalesce(sum(requests), 0)::BIGINT FROM request_rollups WHERE {ROLLUP_FILTER}) AS requests,
        (SELECT coalesce(sum(rejects), 0)::BIGINT FROM sources) AS rejects,
        (SELECT min(minute) FROM request_rollups) AS first_minute,
        (SELECT max(minute) FROM request_rollups) AS last_minute
    """,  # noqa: S608
    params=("since", "until", *FILTERS),
)

REJECTS = Query(
    name="rejects",
    description="Rejected lines by source and reason, with a count, the first offset and its sample.",
    sql="""
    WITH grouped AS (
        SELECT s.path, r.reason, count(*) AS lines, min(r."offset") AS first_offset,
               arg_min(r.sample, r."offset") AS first_sample
        FROM rejects r JOIN sources s USING (source_id)
        GROUP BY ALL
    )
    -- the first rejected line's start, as text when it is UTF-8, else in hex
    SELECT path, reason, lines, first_offset,
           coalesce(try(decode(first_sample)), '0x' || hex(first_sample)) AS sample
    FROM grouped
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
    description=(
        "Row counts of the store's tables and its time span. rollup_rows is a storage detail: "
        "the stored per-minute rows, which a ClickHouse store merges (SummingMergeTree), so "
        "it differs between engines for the same requests."
    ),
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
    ORDER BY metric, label, status  -- a total order: the same rows on every engine
    """,
)

_BUCKET: dict[str, ParamType] = {"bucket": str}


def _descending(text: str) -> bool:
    return flag(text, "descending")


ANALYSES = (
    Analysis(
        "timeline",
        "Clusters over time: conflicts per (service, method, route, error code, kind) per "
        "bucket (minute, 5m, hour or day, chosen from the range), with requests, ratio and "
        "the cluster's share of the bucket's conflicts.",
        clusters_over_time,
        _BUCKET,
    ),
    Analysis(
        "hotspots",
        "Clusters ranked by growth against their baseline (sort: "
        f"{', '.join(SORTS)}), with ratio, baseline median and MAD, score and whether new. "
        "Default range: the last 24 h of data.",
        hot_spots,
        {"sort": str, "min_conflicts": int, "min_requests": int, "limit": int},
    ),
    Analysis(
        "resources",
        "Hot resources: the ids with most conflicts per route (by: "
        f"{', '.join(RESOURCE_SORTS)}), with distinct clients and the most conflicting writes "
        "in flight at once.",
        hot_resources,
        {"resource": str, "by": str, "per_route": int, "limit": int, **_BUCKET},
    ),
    Analysis(
        "resource_timeline",
        "One resource's conflicts per bucket and error code, with distinct clients.",
        resource_timeline,
        {"resource": str, **_BUCKET},
    ),
    Analysis(
        "storms",
        "Retry storms: a client repeating a conflicting request on one route and resource, "
        "tries close together and no backoff.",
        retry_storms,
        {"min_count": int, "max_gap_s": float, "backoff_factor": float, "limit": int},
    ),
    Analysis(
        "anomalies",
        "Buckets in which a cluster stands out from its baseline (what incidents are made of).",
        anomalous_buckets,
        {"threshold": float, "min_conflicts": int, **_BUCKET},
    ),
    Analysis(
        "incidents",
        "Anomalous windows of clusters that begin together, grouped into incidents with start, "
        "end, peak ratio and the clusters involved. Default range: the last 24 h of data.",
        incidents,
        {"threshold": float, "min_conflicts": int, **_BUCKET},
    ),
    Analysis(
        "events",
        "The conflict events themselves (with each one's log line, raw_line), a page at a "
        f"time, sorted by one of {', '.join(EVENT_SORTS)} (sort, default ts), descending "
        "unless descending=false; ties in a fixed order, so pages never overlap.",
        conflict_events,
        {"limit": int, "offset": int, "sort": str, "descending": _descending},
    ),
)

CLIENTS = Query(
    name="clients",
    description=(
        "The clients that got the conflicts in the range (an incident's window, say), most "
        "first: conflicts, routes and resources they hit, their most frequent error code (a tie "
        "to the first in text order), "
        "their latest user agent, and when they were first and last seen."
    ),
    sql=f"""
    WITH events AS (
        SELECT client, route, resource_ids, error_code, user_agent, ts
        FROM conflict_events
        WHERE {EVENT_FILTER}
    ),
    per_client AS (
        SELECT client, count(*) AS conflicts,
               count(DISTINCT route) AS routes,
               count(DISTINCT (route, resource_ids)) AS resources,
               arg_max(user_agent, ts) AS latest_user_agent,
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM events
        GROUP BY client
    ),
    -- the most frequent error code; a tie goes to the first in text order (a fixed answer)
    codes AS (
        SELECT client, error_code, count(*) AS n FROM events
        WHERE error_code IS NOT NULL
        GROUP BY client, error_code
    ),
    top_codes AS (
        SELECT client, error_code,
               row_number() OVER (PARTITION BY client ORDER BY n DESC, error_code) AS code_rank
        FROM codes
    )
    SELECT p.client, p.conflicts, p.routes, p.resources, t.error_code AS top_error_code,
           p.latest_user_agent AS user_agent, p.first_seen, p.last_seen
    FROM per_client p
    LEFT JOIN (SELECT client, error_code FROM top_codes WHERE code_rank = 1) t
      ON t.client IS NOT DISTINCT FROM p.client
    ORDER BY p.conflicts DESC, p.client NULLS LAST
    LIMIT $limit::BIGINT
    """,  # noqa: S608 - only the fixed filter fragment is interpolated; values are bound
    params=("since", "until", *FILTERS, "limit"),
)

ANNOTATIONS = Query(
    name="annotations",
    description=(
        "Annotations (deploys and other changes) in the range, oldest first. With service: "
        "those of that service and those of no service (a change to everything)."
    ),
    sql="""
    SELECT "at", text, service, id
    FROM annotations
    WHERE ($since::TIMESTAMP IS NULL OR "at" >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR "at" < $until::TIMESTAMP)
      AND ($service::VARCHAR IS NULL OR service IS NULL OR service = $service::VARCHAR)
    ORDER BY "at", id
    """,
    params=("since", "until", "service"),
)

EVENT_COUNT = Query(
    name="event_count",
    description="How many conflict events match: the number of pages of the events query.",
    sql=f"SELECT count(*) AS events FROM conflict_events WHERE {EVENT_FILTER}",  # noqa: S608
    params=("since", "until", *FILTERS),
)

# The stored data itself, for `conflictlens export` (Parquet for data lakes): every column of
# the events, and the request rollups summed to one row a minute and key (the table holds
# partial sums, one per committed batch). Both in a total order, so an export is repeatable.
EXPORT_EVENTS = Query(
    name="export_events",
    description="Every stored conflict event in the range, all columns, in time order.",
    sql=f"""
    SELECT ts, method, path, query, route, resource_ids, status, error_code, kind, kind_rule,
           client, user_agent, bytes, latency_ms, service, upstream, request_id, source_id,
           "offset", raw_line
    FROM conflict_events WHERE {EVENT_FILTER}
    ORDER BY ts, source_id, "offset"  -- every column named: ClickHouse's rows carry agent
    """,  # noqa: S608 - only fixed filter fragments are interpolated; values are bound
    params=("since", "until", *FILTERS),
)

EXPORT_ROLLUPS = Query(
    name="export_rollups",
    description="Requests per minute, service, method, route and status in the range.",
    sql=f"""
    SELECT minute, service, method, route, status,
           sum(requests)::BIGINT AS requests, sum(bytes)::BIGINT AS bytes,
           sum(latency_ms_sum) AS latency_ms_sum, sum(latency_count)::BIGINT AS latency_count
    FROM request_rollups WHERE {ROLLUP_FILTER}
    GROUP BY ALL
    ORDER BY minute, service NULLS FIRST, method NULLS FIRST, route NULLS FIRST, status
    """,  # noqa: S608
    params=("since", "until", "service", "method", "route"),
)

ALERT_NOTIFICATIONS = Query(
    name="alert_notifications",
    description=(
        "Alert notifications (firing, resolved, test) per channel, newest first: the group's "
        "labels, value and summary, and whether and when each was delivered."
    ),
    sql="""
    SELECT created_at, rule, status, channel,
           json_extract(payload, '$.labels')::VARCHAR AS labels,
           TRY_CAST(json_extract_string(payload, '$.value') AS DOUBLE) AS value,
           json_extract_string(payload, '$.summary') AS summary,
           delivered_at, attempts, last_error
    FROM alert_outbox
    WHERE ($since::TIMESTAMP IS NULL OR created_at >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR created_at < $until::TIMESTAMP)
      AND ($rule::VARCHAR IS NULL OR rule = $rule::VARCHAR)
    ORDER BY created_at DESC, id DESC
    LIMIT $limit::BIGINT
    """,
    params=("since", "until", "rule", "limit"),
)

QUERIES: dict[str, Query | Analysis] = {
    q.name: q
    for q in (
        CLUSTERS,
        TOTALS,
        REJECTS,
        SOURCES,
        STORE_STATUS,
        METRICS,
        EVENT_COUNT,
        CLIENTS,
        ANNOTATIONS,
        EXPORT_EVENTS,
        EXPORT_ROLLUPS,
        ALERT_NOTIFICATIONS,
        *ANALYSES,
    )
}

# How parameters given as text (the HTTP API's query string) are typed.
PARAM_TYPES: dict[str, ParamType] = {"limit": int, "offset": int}
for _entry in ANALYSES:
    PARAM_TYPES.update(_entry.options)


def run_query(
    con: Store,
    name: str,
    time_range: TimeRange | None = None,
    **values: Any,
) -> pl.DataFrame:
    """Run catalog entry ``name``; unknown parameter names are an error, missing ones NULL
    (or the analysis' default)."""
    try:
        query = QUERIES[name]
    except KeyError:
        raise KeyError(f"no query named {name!r}; known: {', '.join(QUERIES)}") from None
    unknown = set(values) - set(query.params) - {"since", "until"}
    if unknown:
        raise TypeError(f"query {name!r} takes no parameter(s) {', '.join(sorted(unknown))}")
    for key, value in values.items():
        check_param(key, value)
    if isinstance(query, Analysis):
        given = {k: v for k, v in values.items() if v is not None}
        filters = Filters.pop_from(given)
        return query.run(con, time_range or TimeRange(), filters, **given)
    bound: dict[str, Any] = dict.fromkeys(query.params)
    if "limit" in bound:
        bound["limit"] = 1_000_000
    if "offset" in bound:
        bound["offset"] = 0
    bound.update({k: v for k, v in values.items() if v is not None})
    if "since" in bound:
        bound.update((time_range or TimeRange()).params())
    return as_engine(con).sql(query.sql, _only_used(query, bound))


def _only_used(query: Query, bound: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bound.items() if f"${k}" in query.sql}
