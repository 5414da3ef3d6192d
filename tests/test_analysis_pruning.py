"""The fast hot-resource and retry-storm queries give the answers of the plain ones.

Hot resources count peaks only for resources that can still be listed, and both queries run
their windows over one global order instead of a partition per resource or thread. Here both
are checked against the straightforward SQL (every resource's peak, windows partitioned per
resource or thread) on a small store built to be awkward: skewed resources, ties in counts,
peaks and times, NULL methods and latencies, two-id resources, start- and end-stamped sources,
and storms with tries at the same instant.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conflictlens.analysis import Filters, TimeRange, storms
from conflictlens.analysis.params import EVENT_FILTER, fetch
from conflictlens.analysis.resources import (
    START_STAMPED,
    _peak_width,
    hot_resources,
    resource_timeline,
)
from conflictlens.analysis.storms import retry_storms
from conflictlens.store import connect

START = dt.datetime(2026, 1, 5)

# u(x): a uniform draw in [0, 1) from the hash of the row number and a label.
_EVENTS = """
WITH r AS (
    SELECT i,
           (hash(i, 'ts') % 1000000) / 1e6 AS u_ts,
           (hash(i, 'res') % 1000000) / 1e6 AS u_res,
           (hash(i, 'route') % 6)::INT AS k_route,
           (hash(i, 'client') % 1000000) / 1e6 AS u_client,
           (hash(i, 'code') % 4)::INT AS k_code,
           (hash(i, 'lat') % 1000000) / 1e6 AS u_lat
    FROM range($n) t(i)
)
SELECT
    -- whole seconds for a third of the rows: ties in time, and at bucket edges
    CASE WHEN i % 3 = 0
         THEN $start + to_seconds((u_ts * 3 * 86400)::BIGINT)
         ELSE $start + to_microseconds((u_ts * 3 * 86400 * 1e6)::BIGINT) END AS ts,
    CASE WHEN k_route = 5 THEN NULL ELSE ['PUT', 'PATCH', 'POST', 'PUT', 'DELETE'][k_route + 1] END,
    '/p', NULL,
    ['/carts/{id}', '/docs/{hex}', '/orders/{id}/items/{id}', '/users/{id}', '/tags/{id}',
     '/misc/{id}'][k_route + 1],
    CASE WHEN k_route = 2 THEN [(floor(pow(u_res, 4) * 30))::INT::VARCHAR, (i % 2)::VARCHAR]
         WHEN k_route = 4 AND i % 7 = 0 THEN []::VARCHAR[]
         ELSE [(floor(pow(u_res, 3) * (CASE WHEN k_route = 3 THEN 3000 ELSE 120 END)))::INT::VARCHAR]
    END,
    409, [NULL, 'VERSION_MISMATCH', 'LOCKED', 'STALE'][k_code + 1], 'version', 'rule',
    'c' || (floor(pow(u_client, 2) * 40))::INT, 'ua-' || (i % 3), 100,
    CASE WHEN i % 11 = 0 THEN NULL ELSE u_lat * 3000 END, 'svc', NULL, NULL,
    1 + (i % 2)::INT, i, NULL
FROM r
"""

# A storm: one client on one resource every 1-2 s, every fifth try at the same instant as the
# one before it.
_STORMS = """
WITH tries AS (SELECT i, CASE WHEN i % 5 = 4 THEN i - 1 ELSE i END AS j FROM range($count) t(i))
SELECT $at + to_microseconds((j * 1500000 + hash(j, 'jitter') % 500000)::BIGINT),
       'PUT', '/p', NULL, '/carts/{id}', ['7'], 409,
       CASE WHEN i % 2 = 0 THEN 'VERSION_MISMATCH' ELSE 'LOCKED' END, 'version', 'rule',
       $client, CASE WHEN i % 2 = 0 THEN 'ua-a' ELSE 'ua-b' END, 100, 20.0, 'svc', NULL, NULL,
       1, 1000000 + i, NULL
FROM tries
"""


@pytest.fixture(scope="module")
def awkward_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("pruning") / "store.duckdb"
    con = connect(db)
    try:
        now = dt.datetime(2026, 1, 9)
        con.execute(
            "INSERT INTO sources VALUES "
            "(1, 0, 1, 'a', 0, 'a.log', 'envoy-text', NULL, 0, 0, 0, 0, $now, $now), "
            "(2, 0, 2, 'b', 0, 'b.log', 'nginx-combined', NULL, 0, 0, 0, 0, $now, $now)",
            {"now": now},
        )
        con.execute(
            f"INSERT INTO conflict_events {_EVENTS}",
            {"n": 30_000, "start": START},
        )
        for at, client, count in (
            (START + dt.timedelta(hours=30), "storm-1", 40),
            (START + dt.timedelta(hours=50), "storm-2", 12),
        ):
            con.execute(
                f"INSERT INTO conflict_events {_STORMS}",
                {"at": at, "client": client, "count": count},
            )
    finally:
        con.close()
    return db


# The plain ranking: every resource's peak, ranks from a window partitioned per route, and
# overlaps from a window partitioned per resource.
_PLAIN_RESOURCES = f"""
WITH events AS (
    SELECT ts, method, route, resource_ids, client, error_code, latency_ms, source_id,
           hash(method, route, resource_ids) AS thing
    FROM conflict_events
    WHERE {EVENT_FILTER} AND len(resource_ids) > 0
),
per_bucket AS (
    SELECT thing, method, route, array_to_string(resource_ids, '/') AS resource,
           time_bucket($width::INTERVAL, ts) AS bucket, count(*) AS n
    FROM events GROUP BY ALL
),
per_resource AS (
    SELECT thing, method, route, resource, sum(n)::BIGINT AS conflicts, max(n) AS peak_conflicts,
           first(bucket ORDER BY n DESC, bucket) AS peak_start
    FROM per_bucket GROUP BY ALL
),
ranked AS (
    SELECT *, row_number() OVER (
               PARTITION BY method, route
               ORDER BY CASE WHEN $by = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
                        conflicts DESC, resource) AS rank_in_route
    FROM per_resource
    QUALIFY rank_in_route <= $per_route
    ORDER BY CASE WHEN $by = 'peak' THEN peak_conflicts ELSE conflicts END DESC,
             conflicts DESC, method, route, resource
    LIMIT $limit
),
chosen AS (SELECT e.* FROM events e SEMI JOIN ranked USING (thing)),
details AS (
    SELECT thing, any_value(resource_ids) AS resource_ids, count(DISTINCT client) AS clients,
           min(ts) AS first_seen, max(ts) AS last_seen
    FROM chosen GROUP BY thing
),
codes AS (
    SELECT thing, first(error_code ORDER BY n DESC, error_code NULLS LAST) AS top_error_code
    FROM (SELECT thing, error_code, count(*) AS n FROM chosen GROUP BY ALL) GROUP BY thing
),
intervals AS (
    SELECT c.thing,
           CASE WHEN list_contains($start_stamped::VARCHAR[], s.format) THEN c.ts
                ELSE c.ts - to_microseconds((coalesce(c.latency_ms, 0) * 1000)::BIGINT) END
               AS began,
           coalesce(c.latency_ms, 0) AS ms
    FROM chosen c LEFT JOIN sources s ON s.source_id = c.source_id
),
edges AS (
    SELECT thing, began AS instant, 1 AS delta FROM intervals
    UNION ALL
    SELECT thing, began + to_microseconds((ms * 1000)::BIGINT), -1 FROM intervals
),
overlap AS (
    SELECT thing, max(f) AS max_overlap FROM (
        SELECT thing, sum(delta) OVER (PARTITION BY thing ORDER BY instant, delta
                                       ROWS UNBOUNDED PRECEDING) AS f
        FROM edges)
    GROUP BY thing
)
SELECT r.method, r.route, array_to_string(d.resource_ids, '/') AS resource, r.conflicts,
       d.clients, o.max_overlap::BIGINT AS max_overlap, r.peak_conflicts, r.peak_start,
       c.top_error_code, d.first_seen, d.last_seen, r.rank_in_route
FROM ranked r JOIN details d USING (thing) JOIN codes c USING (thing)
JOIN overlap o USING (thing)
ORDER BY CASE WHEN $by = 'peak' THEN r.peak_conflicts ELSE r.conflicts END DESC,
         r.conflicts DESC, r.method, r.route, resource
"""

# The plain storms: gaps, runs and numbering from windows partitioned per thread.
_PLAIN_STORMS = f"""
WITH everything AS (
    SELECT hash(client, method, route, resource_ids) AS thread, rowid AS event, *,
           (source_id, "offset") AS line
    FROM conflict_events WHERE {EVENT_FILTER} AND client IS NOT NULL
),
gaps AS (
    SELECT *, epoch_us(ts - lag(ts) OVER (PARTITION BY thread ORDER BY ts, line)) / 1000.0
                  AS gap_ms
    FROM everything
),
runs AS (
    SELECT *, sum(CASE WHEN gap_ms IS NULL OR gap_ms > $max_gap_s * 1000 THEN 1 ELSE 0 END)
                  OVER (PARTITION BY thread ORDER BY ts, line ROWS UNBOUNDED PRECEDING) AS run
    FROM gaps
),
numbered AS (
    SELECT *, row_number() OVER (PARTITION BY thread, run ORDER BY ts, line) AS n,
              count(*) OVER (PARTITION BY thread, run) AS tries
    FROM runs
)
SELECT any_value(client) AS client, any_value(method) AS method, any_value(route) AS route,
       nullif(array_to_string(any_value(resource_ids), '/'), '') AS resource,
       count(*) AS count, min(ts) AS start, max(ts) AS "end",
       median(gap_ms) FILTER (WHERE n > 1) AS median_interval_ms,
       median(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2) AS first_half_ms,
       median(gap_ms) FILTER (WHERE n > (tries + 1) // 2) AS second_half_ms,
       coalesce(sum(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2), 0)
           AS first_half_span_ms,
       count(gap_ms) FILTER (WHERE n > 1 AND n <= (tries + 1) // 2) AS first_half_gaps,
       coalesce(sum(gap_ms) FILTER (WHERE n > (tries + 1) // 2), 0) AS second_half_span_ms,
       count(gap_ms) FILTER (WHERE n > (tries + 1) // 2) AS second_half_gaps,
       CASE WHEN bool_and(ts = date_trunc('second', ts)) THEN 1000.0
            WHEN bool_and(ts = date_trunc('millisecond', ts)) THEN 1.0
            ELSE 0.001 END::DOUBLE AS resolution_ms,
       mode(error_code ORDER BY ts, line) AS error_code,
       mode(user_agent ORDER BY ts, line) AS user_agent
FROM numbered
GROUP BY thread, run
HAVING count(*) >= $min_count
ORDER BY count DESC, start, client
"""

RANGES = (
    TimeRange(START, START + dt.timedelta(days=3)),
    TimeRange(START + dt.timedelta(hours=20, minutes=7), START + dt.timedelta(hours=44)),
    TimeRange(START + dt.timedelta(hours=29), START + dt.timedelta(hours=31, seconds=30)),
)


def _plain_resources(
    con: duckdb.DuckDBPyConnection, time_range: TimeRange, filters: Filters, **options: object
) -> pl.DataFrame:
    values: dict[str, object] = {"by": "peak", "per_route": 5, "limit": 50, "bucket": None}
    values.update(options)
    bucket = values.pop("bucket")
    assert bucket is None or isinstance(bucket, str)
    return fetch(
        con,
        _PLAIN_RESOURCES,
        {
            **time_range.params(),
            **filters.params(),
            **values,
            "width": _peak_width(bucket, time_range),
            "start_stamped": list(START_STAMPED),
        },
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"by": "conflicts"},
        {"per_route": 1, "limit": 1},
        {"per_route": 2, "limit": 7},
        {"per_route": 3, "limit": 4, "by": "conflicts"},
        {"per_route": 50, "limit": 1000},
        {"per_route": 0},
        {"bucket": "minute", "limit": 12},
        {"bucket": "day", "per_route": 4},
    ],
)
def test_hot_resources_equal_the_plain_ranking(
    awkward_store: Path, options: dict[str, object]
) -> None:
    con = connect(awkward_store, read_only=True)
    try:
        for time_range in RANGES:
            for filters in (Filters(), Filters(route="/carts/{id}"), Filters(code="LOCKED")):
                got = hot_resources(con, time_range, filters, **options)  # type: ignore[arg-type]
                want = _plain_resources(con, time_range, filters, **options)
                assert got.height == want.height
                assert got.equals(want), (time_range, filters, options)
    finally:
        con.close()


def test_resource_timeline_follows_the_top_hot_resource(awkward_store: Path) -> None:
    con = connect(awkward_store, read_only=True)
    try:
        for time_range in RANGES:
            top = hot_resources(con, time_range, Filters(), limit=1).row(0, named=True)
            picked = resource_timeline(con, time_range, Filters())
            named = resource_timeline(
                con,
                time_range,
                Filters(method=top["method"], route=top["route"]),
                resource=top["resource"],
            )
            assert picked.height > 0
            assert picked.equals(named)
    finally:
        con.close()


@pytest.mark.parametrize(
    ("min_count", "max_gap_s"), [(5, 10.0), (2, 10.0), (3, 1.6), (8, 60.0), (20, 4.0)]
)
def test_retry_storm_runs_equal_the_plain_windows(
    awkward_store: Path, min_count: int, max_gap_s: float
) -> None:
    con = connect(awkward_store, read_only=True)
    try:
        for time_range in RANGES:
            values = {
                **time_range.params(),
                **Filters().params(),
                "min_count": min_count,
                "max_gap_s": max_gap_s,
            }
            got = fetch(con, storms._STORMS, values)
            want = fetch(con, _PLAIN_STORMS, values)
            assert got.height > 0 or time_range != RANGES[0]
            # runs tied on (count, start, client) may come in either order; sums of float gaps
            # depend on the order they are added in (the last bit)
            assert_frame_equal(got.sort(pl.all()), want.sort(pl.all()), rel_tol=1e-12)
        storm = retry_storms(con, RANGES[0], Filters(client="storm-1")).row(0, named=True)
        assert (storm["count"], storm["resource"]) == (40, "7")
    finally:
        con.close()
