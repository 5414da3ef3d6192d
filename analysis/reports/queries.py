"""The named queries a report needs beyond the catalog's: the ratio trend with empty buckets,
gaps in the per-minute rollups, rejects recorded in a period, and alerts fired or resolved.

Registered into the catalog (``analysis.catalog.QUERIES``) when this module is imported, so
serve's API answers them like any other named query. Values are always bound parameters.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import polars as pl

from conflictlens.analysis.catalog import PARAM_TYPES, QUERIES, Analysis, Query
from conflictlens.analysis.params import (
    DAY,
    EVENT_FILTER,
    HOUR,
    MINUTE,
    ROLLUP_FILTER,
    Filters,
    TimeRange,
    check_buckets,
    closed_range,
    fetch,
    naive_utc,
)
from conflictlens.analysis.reports.alerts_view import alerts_in_range

# Buckets counted in microseconds from the start of the range (time_bucket with an origin and
# range over an INTERVAL have no ClickHouse translation; integer arithmetic runs on both).
# ``//`` truncates toward zero: a rollup minute begins up to a minute before the range, so
# one width is added before dividing and taken off after, to floor as time_bucket does (that
# minute falls before the first bucket).
_TREND_BUCKET = """make_timestamp(epoch_us($since::TIMESTAMP) + (
    (epoch_us({column}) - epoch_us($since::TIMESTAMP) + $width_us::BIGINT) // $width_us::BIGINT - 1
) * $width_us::BIGINT)"""

_TREND = f"""
WITH buckets AS (
    SELECT make_timestamp(epoch_us($since::TIMESTAMP) + i * $width_us::BIGINT) AS bucket
    FROM (SELECT unnest(range(0, $buckets::BIGINT)) AS i)
),
conflicts AS (
    SELECT {_TREND_BUCKET.format(column="ts")} AS bucket, count(*) AS conflicts
    FROM conflict_events
    WHERE {EVENT_FILTER}
    GROUP BY ALL
),
requests AS (
    SELECT {_TREND_BUCKET.format(column="minute")} AS bucket,
           sum(requests)::BIGINT AS requests
    FROM request_rollups
    WHERE {ROLLUP_FILTER}
    GROUP BY ALL
)
SELECT b.bucket,
       coalesce(c.conflicts, 0)::BIGINT AS conflicts,
       coalesce(r.requests, 0)::BIGINT AS requests,
       CASE WHEN r.requests > 0 THEN coalesce(c.conflicts, 0) / r.requests END AS ratio
FROM buckets b
LEFT JOIN conflicts c USING (bucket)
LEFT JOIN requests r USING (bucket)
ORDER BY b.bucket
"""  # noqa: S608 - fixed fragments only; every value is bound

# Minutes with no request at all, as runs: the minutes present plus a mark just before the
# range and one at its end, and every step between neighbours longer than one minute.
_GAPS = f"""
WITH present AS (
    SELECT DISTINCT minute FROM request_rollups WHERE {ROLLUP_FILTER}
),
marks AS (
    SELECT minute FROM present
    UNION ALL SELECT $first::TIMESTAMP - INTERVAL 1 MINUTE
    UNION ALL SELECT $last::TIMESTAMP
),
steps AS (
    SELECT lag(minute) OVER (ORDER BY minute) AS before, minute AS after FROM marks
)
SELECT before + INTERVAL 1 MINUTE AS start, after AS "end",
       (date_diff('minute', before, after) - 1)::BIGINT AS minutes
FROM steps
WHERE before IS NOT NULL AND date_diff('minute', before, after) - 1 >= $min_minutes::BIGINT
ORDER BY start
LIMIT $limit::BIGINT
"""  # noqa: S608 - fixed fragments only; every value is bound

REJECTS_IN_RANGE = Query(
    name="report_rejects",
    description="Lines rejected while importing during the range (by when they were "
    "recorded), by source and reason.",
    sql="""
    SELECT s.path, r.reason, count(*) AS lines, min(r.seen_at) AS first_seen,
           max(r.seen_at) AS last_seen
    FROM rejects r JOIN sources s USING (source_id)
    WHERE ($since::TIMESTAMP IS NULL OR r.seen_at >= $since::TIMESTAMP)
      AND ($until::TIMESTAMP IS NULL OR r.seen_at < $until::TIMESTAMP)
    GROUP BY ALL
    ORDER BY lines DESC, s.path, r.reason
    LIMIT $limit::BIGINT
    """,
    params=("since", "until", "limit"),
)


def trend_width(span: dt.timedelta) -> dt.timedelta:
    """A trend bucket giving one or two hundred points: 15 minutes for a day, an hour for a
    week, six hours for a month, else a day."""
    if span <= 2 * DAY:
        return 15 * MINUTE
    if span <= 8 * DAY:
        return HOUR
    if span <= 62 * DAY:
        return 6 * HOUR
    return DAY


def ratio_trend(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    width_minutes: int | None = None,
) -> pl.DataFrame:
    """All conflicts and all requests per bucket (aligned to the start of the range, empty
    buckets included) and their ratio: the report's trend line."""
    closed = closed_range(con, time_range, DAY)
    if closed.span is None or closed.span <= dt.timedelta(0):
        return pl.DataFrame(
            schema={
                "bucket": pl.Datetime("us"),
                "conflicts": pl.Int64,
                "requests": pl.Int64,
                "ratio": pl.Float64,
                "bucket_seconds": pl.Int64,
            }
        )
    width = MINUTE * width_minutes if width_minutes else trend_width(closed.span)
    check_buckets(closed.span, width)
    values = {
        **closed.params(),
        **filters.params(),
        "width_us": width // dt.timedelta(microseconds=1),
        "buckets": math.ceil(closed.span / width),
    }
    return fetch(con, _TREND, values).with_columns(
        bucket_seconds=pl.lit(int(width.total_seconds()), pl.Int64)
    )


def rollup_gaps(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    min_minutes: int = 5,
    limit: int = 50,
) -> pl.DataFrame:
    """Runs of at least ``min_minutes`` minutes inside the range in which the store counted
    no request at all: an import that stalled, a gateway that logged nothing."""
    closed = closed_range(con, time_range, DAY)
    since, until = naive_utc(closed.since), naive_utc(closed.until)
    if since is None or until is None or until <= since:
        return pl.DataFrame(
            schema={"start": pl.Datetime("us"), "end": pl.Datetime("us"), "minutes": pl.Int64}
        )
    first = since.replace(second=0, microsecond=0)
    last = first + MINUTE * math.ceil((until - first) / MINUTE)
    values = {
        **closed.params(),
        **filters.params(),
        "first": first,
        "last": last,
        "min_minutes": min_minutes,
        "limit": limit,
    }
    return fetch(con, _GAPS, values)


REPORT_ANALYSES = (
    Analysis(
        "report_trend",
        "All conflicts and requests per bucket of the range (empty buckets included, aligned "
        "to its start) and their ratio; width_minutes chooses the bucket.",
        ratio_trend,
        {"width_minutes": int},
    ),
    Analysis(
        "report_gaps",
        "Runs of at least min_minutes minutes in the range with no request counted at all.",
        rollup_gaps,
        {"min_minutes": int, "limit": int},
    ),
    Analysis(
        "report_alerts",
        "Alerts fired or resolved in the range (empty when the store has no alert tables).",
        alerts_in_range,
        {"limit": int},
    ),
)


def register() -> None:
    """Add the report queries to the catalog (idempotent)."""
    for entry in (REJECTS_IN_RANGE, *REPORT_ANALYSES):
        QUERIES.setdefault(entry.name, entry)
    for analysis in REPORT_ANALYSES:
        PARAM_TYPES.update(analysis.options)


register()
