"""The report's data: every section asked of the catalog through one query function.

The builder never opens the store itself: it takes ``ask(name, time_range, values)`` and
gets a Polars frame back, so the same code runs on a read-only connection
(:func:`local_queries`), inside serve (a cursor of its connection), or through serve's HTTP
API (the CLI's function). The result is JSON-ready (times as ISO-8601 strings with offset);
every renderer works from it, so HTML, Markdown, JSON and CSV never disagree.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from conflictlens.analysis.catalog import run_query
from conflictlens.analysis.params import TimeRange
from conflictlens.analysis.reports.periods import Period

QueryFn = Callable[[str, TimeRange, Mapping[str, Any]], pl.DataFrame]
Report = dict[str, Any]

REPORT_VERSION = 1
CLUSTER_FIELDS = (
    "service",
    "method",
    "route",
    "status",
    "error_code",
    "kind",
    "conflicts",
    "requests",
    "ratio",
)
HOT_FIELDS = ("service", "method", "route", "error_code", "kind", "conflicts", "requests", "ratio")
RESOURCE_FIELDS = (
    "method",
    "route",
    "resource",
    "conflicts",
    "peak_conflicts",
    "peak_start",
    "clients",
    "max_overlap",
    "top_error_code",
)
STORM_FIELDS = (
    "client",
    "method",
    "route",
    "resource",
    "count",
    "start",
    "end",
    "median_interval_ms",
    "resolution_ms",
    "error_code",
    "user_agent",
)
SILENT_LOOKBACK = dt.timedelta(days=7)  # a source quiet for longer is gone, not silent
# Rotated siblings belong to the stream of the live file: access.log.1, access.log.2.gz,
# access.log-20261119(.gz) are all access.log.
_ROTATED = re.compile(r"(\.\d+)?(\.gz)?$|-\d{8}(\.gz)?$")


def local_queries(con: duckdb.DuckDBPyConnection) -> QueryFn:
    """The query function over an open connection (read-only, or a cursor of serve's)."""

    def ask(name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        return run_query(con, name, time_range, **values)

    return ask


@dataclass(frozen=True)
class ReportOptions:
    """How long the lists are and what counts as an ingest problem."""

    top: int = 20  # clusters, resources, storms ... per list
    gap_minutes: int = 5  # this many minutes without a request is a gap
    silent_minutes: int = 60  # a source with no new line for this long before the end


def build_report(
    ask: QueryFn,
    period: Period,
    *,
    options: ReportOptions | None = None,
    generated: dt.datetime | None = None,
) -> Report:
    """Every section of the report for ``period``, JSON-ready."""
    opts = options or ReportOptions()
    span = period.time_range()
    top = opts.top
    totals = _totals(ask, period)
    previous, week = _totals(ask, period.previous()), _totals(ask, period.week_before())
    trend = ask("report_trend", span, {})
    width = int(trend["bucket_seconds"][0]) // 60 if trend.height else None
    trend_week = ask("report_trend", period.week_before().time_range(), {"width_minutes": width})
    hot = ask("hotspots", span, {"sort": "growth", "limit": 1_000_000})
    report: Report = {
        "version": REPORT_VERSION,
        "generated": _iso(generated or dt.datetime.now(dt.UTC)),
        "period": period.to_json(),
        **totals,
        "previous": {**_range_json(period.previous()), **previous},
        "week_before": {**_range_json(period.week_before()), **week},
        "changes": {
            "previous": _changes(totals, previous),
            "week_before": _changes(totals, week),
        },
        "trend": {
            "bucket_seconds": width * 60 if width else None,
            "points": _records(trend.select("bucket", "conflicts", "requests", "ratio")),
            "week_before": _records(trend_week.select("bucket", "conflicts", "requests", "ratio")),
        },
        "top_clusters": _shares(
            _records(ask("clusters", span, {"limit": top}), CLUSTER_FIELDS),
            totals["conflicts"],
        ),
        "new_clusters": _new(hot, top),
        "growing_clusters": _growing(hot, top),
        "hot_resources": _hot_resources(ask("resources", span, {"limit": top, "per_route": 3})),
        "storms": _records(ask("storms", span, {"limit": top}), STORM_FIELDS),
        "incidents": _records(ask("incidents", span, {})),
        "alerts": _alerts(ask("report_alerts", span, {})),
        "ingest": {
            "rejects": _records(ask("report_rejects", span, {"limit": top})),
            "silent_sources": silent_sources(
                ask("sources", TimeRange(), {}), period, opts.silent_minutes
            ),
            "gaps": _records(
                ask("report_gaps", span, {"min_minutes": opts.gap_minutes, "limit": top})
            ),
            "gap_minutes": opts.gap_minutes,
            "silent_minutes": opts.silent_minutes,
        },
    }
    report["ingest"]["rejected_lines"] = sum(r["lines"] for r in report["ingest"]["rejects"])
    return report


def _totals(ask: QueryFn, period: Period) -> dict[str, Any]:
    frame = ask("totals", period.time_range(), {})
    row = frame.row(0, named=True) if frame.height else {}
    conflicts = int(row.get("conflicts") or 0)
    requests = int(row.get("requests") or 0)
    return {
        "conflicts": conflicts,
        "requests": requests,
        "ratio": conflicts / requests if requests else None,
    }


def _range_json(period: Period) -> dict[str, Any]:
    return {"from": _iso(period.since), "to": _iso(period.until)}


def _change(now: float | None, before: float | None) -> float | None:
    """The relative change, or None when there is nothing to compare with."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before


def _changes(now: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, float | None]:
    return {key: _change(now[key], before[key]) for key in ("conflicts", "requests", "ratio")}


def _shares(rows: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    for row in rows:
        row["share"] = row["conflicts"] / total if total else None
    return rows


def _new(hot: pl.DataFrame, top: int) -> list[dict[str, Any]]:
    if not hot.height or "new" not in hot.columns:
        return []
    fresh = hot.filter(pl.col("new").fill_null(False)).sort(
        ["conflicts", "method", "route"], descending=[True, False, False]
    )
    return _records(fresh.head(top), HOT_FIELDS)


def _growing(hot: pl.DataFrame, top: int) -> list[dict[str, Any]]:
    if not hot.height or "score" not in hot.columns:
        return []
    rising = hot.filter(
        (pl.col("score").fill_null(0) > 0) & ~pl.col("sparse").fill_null(False)
    ).sort(["score", "conflicts"], descending=True, nulls_last=True)
    fields = (*HOT_FIELDS, "baseline", "baseline_ratio", "baseline_method", "score", "new")
    return _records(rising.head(top), fields)


def _hot_resources(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A resource with a single conflict is no fight: only those with two or more."""
    if frame.height and "conflicts" in frame.columns:
        frame = frame.filter(pl.col("conflicts") >= 2)
    return _records(frame, RESOURCE_FIELDS)


def _alerts(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return _records(frame)


def silent_sources(
    sources: pl.DataFrame, period: Period, quiet_minutes: int
) -> list[dict[str, Any]]:
    """Log streams (a file and its rotated siblings) that took no new line in the last
    ``quiet_minutes`` of the period and did in the week before it: a gateway that stopped
    logging, or a follower that stopped reading. Times are import times, not log times."""
    if not sources.height or "updated_at" not in sources.columns:
        return []
    until = period.until.astimezone(dt.UTC).replace(tzinfo=None)
    quiet_from = until - dt.timedelta(minutes=quiet_minutes)
    oldest = period.since.astimezone(dt.UTC).replace(tzinfo=None) - SILENT_LOOKBACK
    streams = (
        sources.filter(pl.col("path") != "-")
        .with_columns(stream=pl.col("path").str.replace(_ROTATED.pattern, ""))
        .group_by("stream")
        .agg(
            last_line_at=pl.col("updated_at").max(),
            files=pl.col("path").n_unique(),
            lines=pl.col("lines").sum(),
        )
        .filter((pl.col("last_line_at") < quiet_from) & (pl.col("last_line_at") >= oldest))
        .sort("last_line_at")
    )
    return _records(streams.rename({"stream": "path"}))


def _records(frame: pl.DataFrame, fields: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, with ``fields`` (those present) in that order."""
    if fields is not None:
        frame = frame.select([f for f in fields if f in frame.columns])
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _iso(value: dt.datetime) -> str:
    """ISO-8601 with offset; the store's naive timestamps are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()
