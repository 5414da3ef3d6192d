"""What an incident's headline says beyond its detection: how many requests its routes served
during it, how its peak compares with the usual, which endpoints and error codes it touched,
and the change (annotation) that came just before it.

None of this changes what is detected or how incidents are grouped (analysis.incidents): it
is read afterwards, for the incidents that are shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from conflictlens.analysis import spans
from conflictlens.analysis.params import fetch
from conflictlens.store.engine import Store

# An annotation is named as the change behind an incident that begins at most this long
# after it.
ANNOTATION_WINDOW = dt.timedelta(minutes=15)

# The keys as parallel lists, read back by position: lists and indexing (1-based) mean the
# same in DuckDB and ClickHouse, where a list of structs does not.
_REQUESTS = """
WITH i AS (SELECT unnest(range(1, array_length($incident::BIGINT[]) + 1)) AS i),
k AS (
    SELECT ($incident::BIGINT[])[i] AS incident, ($service::VARCHAR[])[i] AS service,
           ($method::VARCHAR[])[i] AS method, ($route::VARCHAR[])[i] AS route,
           ($start::TIMESTAMP[])[i] AS start, ($end::TIMESTAMP[])[i] AS "end"
    FROM i
)
SELECT k.incident, coalesce(sum(r.requests), 0)::BIGINT AS requests
FROM k JOIN (
    -- only the minutes inside some incident: a plain range test that skips the rest (a join
    -- condition alone has ClickHouse read every rollup of the store)
    SELECT service, method, route, minute, requests FROM request_rollups WHERE {windows}
) r
  ON r.service IS NOT DISTINCT FROM k.service
 AND r.method IS NOT DISTINCT FROM k.method
 AND r.route IS NOT DISTINCT FROM k.route
 AND r.minute >= k.start AND r.minute < k."end"
GROUP BY k.incident
"""

_ANNOTATIONS = """
SELECT "at", text, service FROM annotations
WHERE "at" >= $since::TIMESTAMP AND "at" < $until::TIMESTAMP
ORDER BY "at" DESC, id DESC
"""


def with_context(
    con: Store, rows: list[dict[str, Any]], width: dt.timedelta
) -> list[dict[str, Any]]:
    """The incident rows with their headline figures and preceding annotation added.
    ``width`` is the detection bucket: an incident's start is its first bucket's start."""
    if not rows:
        return rows
    requests = _requests(con, rows)
    notes = _annotations(con, rows, width)
    for row in rows:
        row.update(headline(row))
        row["requests"] = requests.get(row["incident"], 0)
        row.update(preceding_annotation(row, notes, width))
    return rows


def headline(row: dict[str, Any]) -> dict[str, Any]:
    """usual_ratio, times_usual, endpoints and error_codes of one incident row."""
    clusters = row["clusters"]
    # The incident's peak_ratio is the highest peak ratio of its clusters; its usual ratio is
    # that same cluster's baseline ratio (the median of its buckets' baselines before the
    # incident), so that times_usual compares one cluster's peak with its own usual, never a
    # busy route's peak with a quiet route's usual.
    peaked = [c for c in clusters if c["peak_ratio"] is not None]
    top = max(peaked, key=lambda c: c["peak_ratio"]) if peaked else None
    usual = top["baseline_ratio"] if top is not None else None
    peak = row["peak_ratio"]
    return {
        "usual_ratio": usual,
        "times_usual": peak / usual if usual and peak is not None else None,
        "endpoints": _distinct(f"{c['method']} {c['route']}" for c in clusters),
        "error_codes": _distinct(c["error_code"] for c in clusters if c["error_code"]),
    }


def _distinct(values: Any) -> list[str]:
    """In first-seen order: the clusters come busiest first."""
    return list(dict.fromkeys(str(v) for v in values))


def _requests(con: Store, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Requests on the incidents' routes (service, method, route of their clusters) during
    each incident, from the per-minute rollups: one query for all incidents."""
    keys = {
        (row["incident"], c["service"], c["method"], c["route"], row["start"], row["end"])
        for row in rows
        for c in row["clusters"]
    }
    names = ("incident", "service", "method", "route", "start", "end")
    columns = dict(zip(names, zip(*sorted(keys, key=repr), strict=True), strict=True))
    windows = spans.merged([(row["start"], row["end"]) for row in rows])
    found = fetch(
        con,
        _REQUESTS.format(windows=spans.clause("minute", "window", windows)),
        {
            **{name: list(values) for name, values in columns.items()},
            **spans.values("window", windows),
        },
    )
    return {int(incident): int(count) for incident, count in found.iter_rows()}


def _annotations(
    con: Store, rows: list[dict[str, Any]], width: dt.timedelta
) -> list[tuple[dt.datetime, str, str | None]]:
    """The annotations that can precede any of the incidents, newest first."""
    since = min(row["start"] for row in rows) - ANNOTATION_WINDOW
    until = max(row["start"] for row in rows) + width
    found = fetch(con, _ANNOTATIONS, {"since": since, "until": until})
    return [(at, text, service) for at, text, service in found.iter_rows()]


def preceding_annotation(
    row: dict[str, Any],
    notes: list[tuple[dt.datetime, str, str | None]],
    width: dt.timedelta,
) -> dict[str, Any]:
    """The latest annotation the incident began within ANNOTATION_WINDOW after: one without a
    service applies to every incident, one with a service only to an incident with a cluster
    of that service. An incident's start is the start of its first 5-minute bucket, so a
    change inside that bucket may still have come first: it counts, as 0 minutes before."""
    start: dt.datetime = row["start"]
    services = {c["service"] for c in row["clusters"]}
    for at, text, service in notes:  # newest first
        if not start - ANNOTATION_WINDOW <= at < start + width:
            continue
        if service is not None and service not in services:
            continue
        minutes = max(0, int((start - at).total_seconds() // 60))
        return {"annotation": text, "annotation_at": at, "minutes_after_annotation": minutes}
    return {"annotation": None, "annotation_at": None, "minutes_after_annotation": None}
