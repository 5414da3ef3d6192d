"""Clusters over time: conflicts per cluster per time bucket, with requests and ratios."""

from __future__ import annotations

import datetime as dt

import polars as pl

from conflictlens.analysis.params import (
    EVENT_FILTER,
    ROLLUP_FILTER,
    Filters,
    TimeRange,
    bucket_width,
    check_buckets,
    closed_range,
    fetch,
)
from conflictlens.store.engine import Store

# Buckets counted in microseconds from the epoch (time_bucket's own origin is 2000-01-03:
# the same buckets for every width that divides a day, which all of BUCKETS do).
_MICROSECOND = dt.timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000

_TIMELINE = f"""
WITH conflicts AS (
    SELECT make_timestamp(epoch_us(ts) // $width_us * $width_us) AS bucket,
           service, method, route, error_code, kind, count(*) AS conflicts
    FROM conflict_events
    WHERE {EVENT_FILTER}
    GROUP BY ALL
),
requests AS (
    SELECT make_timestamp(epoch_us(minute) // $width_us * $width_us) AS bucket,
           service, method, route, sum(requests)::BIGINT AS requests
    FROM request_rollups
    WHERE {ROLLUP_FILTER}
    GROUP BY ALL
)
SELECT c.bucket, c.service, c.method, c.route, c.error_code, c.kind, c.conflicts,
       coalesce(r.requests, 0)::BIGINT AS requests,
       CASE WHEN r.requests > 0 THEN c.conflicts / r.requests END AS ratio,
       c.conflicts / sum(c.conflicts) OVER (PARTITION BY c.bucket) AS share
FROM conflicts c
LEFT JOIN requests r
  ON r.bucket = c.bucket
 AND r.service IS NOT DISTINCT FROM c.service
 AND r.method IS NOT DISTINCT FROM c.method
 AND r.route IS NOT DISTINCT FROM c.route
ORDER BY c.bucket, c.conflicts DESC, c.method, c.route, c.error_code
"""  # noqa: S608 - fixed fragments only; every value is bound


def clusters_over_time(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    bucket: str | None = None,
) -> pl.DataFrame:
    """Conflicts by (service, method, route, error code, kind) per time bucket: the bucket is
    minute, 5m, hour or day, chosen from the range unless named. Each row has the requests on
    that route and method in the bucket, the conflict ratio, and the cluster's share of all
    conflicts in the bucket (buckets are UTC-aligned)."""
    closed = closed_range(con, time_range, None)
    if closed.span is None:
        return fetch(
            con, _TIMELINE, {**closed.params(), **filters.params(), "width_us": _US_PER_DAY}
        )
    width = bucket_width(bucket, closed.span)
    check_buckets(closed.span, width)
    values = {**closed.params(), **filters.params(), "width_us": width // _MICROSECOND}
    return fetch(con, _TIMELINE, values).with_columns(
        bucket_seconds=pl.lit(int(width.total_seconds()))
    )
