"""Robust per-cluster baselines, shared by hot spots, incidents and alerts.

A window (say the last 24 hours, or one 5-minute bucket) is compared with the same window in
past weeks (the same hour of the week: traffic has a weekly rhythm) when the store holds at
least two weeks of history, else with the windows just before it. The baseline is the median
of those samples and its spread the MAD, so one earlier spike does not lift the baseline.

Windows are numbered backwards from ``until``: window j is [until - (j+1)·width, until - j·width).
Clusters absent from a sample window that the store covers count as zero conflicts there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from analysis import spans
from analysis.params import (
    EVENT_FILTER,
    HOUR_EVENT_FILTER,
    HOUR_REQUEST_FILTER,
    ROLLUP_FILTER,
    WEEK,
    Filters,
    TimeRange,
    data_start,
    fetch,
)
from store.summaries import EPOCH, summarised_before

CLUSTER_KEYS: tuple[str, ...] = ("service", "method", "route", "error_code", "kind")
ROUTE_KEYS: tuple[str, ...] = ("service", "method", "route")

MAX_WEEKS = 4  # same hour-of-week, up to four weeks back
MIN_WEEKS = 2  # fewer past weeks than this: use the trailing windows instead
MAX_TRAILING = 24  # at most this many windows just before
MIN_SAMPLES = 3  # fewer samples than this: no baseline at all
MAD_TO_SIGMA = 1.4826  # MAD x this estimates a normal standard deviation


@dataclass(frozen=True)
class BaselinePlan:
    """Which earlier windows a window is compared with: offsets in windows back from it."""

    method: str  # "hour-of-week", "trailing" or "none"
    offsets: tuple[int, ...]


def plan_baseline(width: dt.timedelta, history: dt.timedelta) -> BaselinePlan:
    """The baseline for windows of ``width`` with ``history`` of data before the oldest one."""
    weeks = min(MAX_WEEKS, int(history / WEEK))
    if WEEK % width == dt.timedelta(0) and weeks >= MIN_WEEKS:
        per_week = WEEK // width
        return BaselinePlan("hour-of-week", tuple(k * per_week for k in range(1, weeks + 1)))
    trailing = min(MAX_TRAILING, max(1, WEEK // width), int(history / width))
    if trailing < MIN_SAMPLES:
        return BaselinePlan("none", ())
    return BaselinePlan("trailing", tuple(range(1, trailing + 1)))


_WINDOW = "(epoch_us($until::TIMESTAMP) - epoch_us({column}) - 1) // $width_us"

_EVENT_WINDOWS = f"""
    SELECT service, method, route, error_code, kind, j, sum(n)::BIGINT AS conflicts
    FROM (
        SELECT service, method, route, error_code, kind, {_WINDOW.format(column="slot")} AS j,
               conflicts AS n
        FROM conflict_hours
        WHERE {HOUR_EVENT_FILTER} AND ({{hours}})
        UNION ALL
        SELECT service, method, route, error_code, kind, {_WINDOW.format(column="slot")},
               conflicts
        FROM conflict_slots
        WHERE {HOUR_EVENT_FILTER} AND ({{slots}})
        UNION ALL
        SELECT service, method, route, error_code, kind, {_WINDOW.format(column="ts")}, 1
        FROM conflict_events
        WHERE {EVENT_FILTER} AND ({{raw}})
    )
    GROUP BY ALL
"""  # noqa: S608 - fixed fragments only; every value is bound

_REQUEST_WINDOWS = f"""
    SELECT service, method, route, j, sum(n)::BIGINT AS requests
    FROM (
        SELECT service, method, route, {_WINDOW.format(column="slot")} AS j, requests AS n
        FROM request_hours
        WHERE {HOUR_REQUEST_FILTER} AND ({{hours}})
        UNION ALL
        SELECT service, method, route, {_WINDOW.format(column="slot")}, requests
        FROM request_slots
        WHERE {HOUR_REQUEST_FILTER} AND ({{slots}})
        UNION ALL
        SELECT service, method, route, {_WINDOW.format(column="minute")}, requests
        FROM request_rollups
        WHERE {ROLLUP_FILTER} AND ({{raw}})
    )
    GROUP BY ALL
"""  # noqa: S608


def window_counts(
    con: duckdb.DuckDBPyConnection,
    until: dt.datetime,
    width: dt.timedelta,
    windows: list[int],
    filters: Filters,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Conflicts per cluster and requests per route in each of ``windows``: whole hours and
    5-minute slots from the summaries, the rest from the raw tables (see analysis.spans)."""
    each = [(until - (j + 1) * width, until - j * width) for j in sorted(set(windows))]
    # The summaries know no client: a client filter reads everything raw.
    watermark = summarised_before(con) if filters.client is None else EPOCH
    (hours, slots), raw = spans.split_by_summary(each, watermark)
    bound: dict[str, object] = {
        **filters.params(),
        "since": min(start for start, _ in each),
        "until": until,
        "width_us": width // dt.timedelta(microseconds=1),
        **spans.values("hours", hours),
        **spans.values("slots", slots),
        **spans.values("raw", raw),
    }
    parts = {
        "hours": spans.clause("slot", "hours", hours),
        "slots": spans.clause("slot", "slots", slots),
    }
    events = _EVENT_WINDOWS.format(**parts, raw=spans.clause("ts", "raw", raw))
    requests = _REQUEST_WINDOWS.format(**parts, raw=spans.clause("minute", "raw", raw))
    return fetch(con, events, bound), fetch(con, requests, bound)


def series_baselines(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    width: dt.timedelta,
    filters: Filters,
    *,
    min_conflicts: int = 5,
) -> pl.DataFrame:
    """Every cluster with conflicts in the closed ``time_range``, per window of ``width``
    (window 0 ends at until), with its observed conflicts, requests and ratio, and the
    baseline of each: median, MAD, the method used, the sample count, a sparse flag and a
    robust score (how many spreads above the median)."""
    since, until = time_range.params()["since"], time_range.params()["until"]
    assert since is not None and until is not None, "series_baselines needs a closed range"
    observed = max(1, -(-(until - since) // width))
    start = data_start(con) or since
    # Planned for the newest window; older ones use whichever of its samples the store covers.
    plan = plan_baseline(width, max(dt.timedelta(0), until - width - start))
    needed = sorted({j + off for j in range(observed) for off in (0, *plan.offsets)})
    events, requests = window_counts(con, until, width, needed, filters)
    current = events.filter(pl.col("j") < observed)
    if current.height == 0:
        return _empty_series()
    covered = int((until - start) / width)  # windows with j < covered hold data
    return _score(current, events, requests, plan, observed, covered, until, width, min_conflicts)


def _score(
    current: pl.DataFrame,
    events: pl.DataFrame,
    requests: pl.DataFrame,
    plan: BaselinePlan,
    observed: int,
    covered: int,
    until: dt.datetime,
    width: dt.timedelta,
    min_conflicts: int,
) -> pl.DataFrame:
    keys = list(CLUSTER_KEYS)
    clusters = current.select(keys).unique()
    cells = clusters.join(pl.DataFrame({"j": range(observed)}, schema={"j": pl.Int64}), how="cross")
    cells = _with_counts(cells, events, requests, "j")
    samples = _samples(clusters, plan, observed, covered, events, requests)
    stats = _robust(samples, keys)
    scored = cells.join(stats, on=[*keys, "j"], how="left", nulls_equal=True).with_columns(
        baseline_method=pl.lit(plan.method),
        samples=pl.col("samples").fill_null(0),
        start=pl.lit(until) - (pl.col("j") + 1) * pl.lit(width),
    )
    sparse = (pl.col("conflicts") < min_conflicts) & (
        pl.col("baseline").is_null() | (pl.col("baseline") < min_conflicts)
    )
    scale = pl.max_horizontal(
        MAD_TO_SIGMA * pl.col("baseline_mad"), pl.col("baseline").clip(lower_bound=1).sqrt()
    )
    return scored.with_columns(
        sparse=sparse,
        score=pl.when(~sparse & pl.col("baseline").is_not_null()).then(
            (pl.col("conflicts") - pl.col("baseline")) / scale
        ),
    ).sort([*keys, "j"], nulls_last=True)


def _with_counts(
    cells: pl.DataFrame, events: pl.DataFrame, requests: pl.DataFrame, at: str
) -> pl.DataFrame:
    """Attach conflicts (zero when absent), requests and ratio for window column ``at``."""
    keys = list(CLUSTER_KEYS)
    routes = list(ROUTE_KEYS)
    found = events.rename({"j": at}) if at != "j" else events
    asked = requests.rename({"j": at}) if at != "j" else requests
    joined = cells.join(found, on=[*keys, at], how="left", nulls_equal=True).join(
        asked, on=[*routes, at], how="left", nulls_equal=True
    )
    return joined.with_columns(
        conflicts=pl.col("conflicts").fill_null(0),
        requests=pl.col("requests").fill_null(0),
    ).with_columns(
        ratio=pl.when(pl.col("requests") > 0).then(pl.col("conflicts") / pl.col("requests"))
    )


def _samples(
    clusters: pl.DataFrame,
    plan: BaselinePlan,
    observed: int,
    covered: int,
    events: pl.DataFrame,
    requests: pl.DataFrame,
) -> pl.DataFrame:
    """One row per (cluster, observed window, sample window) the store covers."""
    pairs = [(j, j + off) for j in range(observed) for off in plan.offsets if j + off < covered]
    if not pairs:
        return pl.DataFrame()
    grid = pl.DataFrame(pairs, schema={"j": pl.Int64, "sample": pl.Int64}, orient="row")
    cells = clusters.join(grid, how="cross")
    return _with_counts(cells, events, requests, "sample")


def _robust(samples: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Median and MAD of conflicts and of ratio per (cluster, window)."""
    if samples.height == 0:
        return pl.DataFrame(
            schema={
                **{k: pl.String for k in keys},
                "j": pl.Int64,
                "baseline": pl.Float64,
                "baseline_mad": pl.Float64,
                "baseline_ratio": pl.Float64,
                "baseline_ratio_mad": pl.Float64,
                "samples": pl.UInt32,
            }
        )
    by = [*keys, "j"]
    medians = samples.group_by(by).agg(
        baseline=pl.col("conflicts").median(),
        baseline_ratio=pl.col("ratio").median(),
        samples=pl.len(),
    )
    spread = (
        samples.join(medians, on=by, nulls_equal=True)
        .group_by(by)
        .agg(
            baseline_mad=(pl.col("conflicts") - pl.col("baseline")).abs().median(),
            baseline_ratio_mad=(pl.col("ratio") - pl.col("baseline_ratio")).abs().median(),
        )
    )
    stats = medians.join(spread, on=by, nulls_equal=True)
    return stats.filter(pl.col("samples") >= MIN_SAMPLES)


def _empty_series() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            **{k: pl.String for k in CLUSTER_KEYS},
            "j": pl.Int64,
            "conflicts": pl.UInt32,
            "requests": pl.Int64,
            "ratio": pl.Float64,
            "baseline": pl.Float64,
            "baseline_mad": pl.Float64,
            "baseline_ratio": pl.Float64,
            "baseline_ratio_mad": pl.Float64,
            "samples": pl.UInt32,
            "baseline_method": pl.String,
            "start": pl.Datetime("us"),
            "sparse": pl.Boolean,
            "score": pl.Float64,
        }
    )
