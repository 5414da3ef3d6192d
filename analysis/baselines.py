"""Robust per-cluster baselines, shared by hot spots, incidents and alerts.

A window (say the last 24 hours, or one 5-minute bucket) is compared with the same window in
past weeks (the same hour of the week: traffic has a weekly rhythm) when the store holds at
least three such weeks before it, else with the windows just before it (up to a day's worth
of 24, or a week). Each window picks for itself: the choice depends only on where the window
lies and how far back the store reaches, never on the range asked, and a plan is never used
with fewer than MIN_SAMPLES samples while another one has enough. The baseline is the median
of the samples and its spread the MAD, so one earlier spike does not lift the baseline.

Windows are numbered backwards from ``until``: window j is [until - (j+1)·width, until - j·width).
Clusters absent from a sample window that the store covers count as zero conflicts there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from conflictlens.analysis import spans
from conflictlens.analysis.params import (
    EVENT_FILTER,
    HOUR_EVENT_FILTER,
    HOUR_REQUEST_FILTER,
    MAX_WINDOWS,
    ROLLUP_FILTER,
    WEEK,
    Filters,
    TimeRange,
    check_buckets,
    data_start,
    fetch,
)
from conflictlens.store.engine import Store
from conflictlens.store.summaries import EPOCH

CLUSTER_KEYS: tuple[str, ...] = ("service", "method", "route", "error_code", "kind")
ROUTE_KEYS: tuple[str, ...] = ("service", "method", "route")

MAX_WEEKS = 4  # same hour-of-week, up to four weeks back
MAX_TRAILING = 24  # at most this many windows just before
MIN_SAMPLES = 3  # fewer samples than this: no baseline at all
MAD_TO_SIGMA = 1.4826  # MAD x this estimates a normal standard deviation


@dataclass(frozen=True)
class BaselinePlan:
    """Which earlier windows a window is compared with: offsets in windows back from it."""

    method: str  # "hour-of-week", "trailing" or "none"
    offsets: tuple[int, ...]


def candidate_plans(width: dt.timedelta) -> tuple[BaselinePlan, ...]:
    """The plans for windows of ``width``, preferred first: the same window in past weeks
    (when windows line up with the week), then the windows just before."""
    plans = []
    if WEEK % width == dt.timedelta(0):
        per_week = WEEK // width
        plans.append(
            BaselinePlan("hour-of-week", tuple(k * per_week for k in range(1, MAX_WEEKS + 1)))
        )
    trailing = min(MAX_TRAILING, max(1, WEEK // width))
    plans.append(BaselinePlan("trailing", tuple(range(1, trailing + 1))))
    return tuple(plans)


def plan_baseline(width: dt.timedelta, history: dt.timedelta) -> BaselinePlan:
    """The first plan that has MIN_SAMPLES samples for a window of ``width`` with ``history``
    of data before it, cut to the samples the history holds."""
    for plan in candidate_plans(width):
        usable = tuple(offset for offset in plan.offsets if offset * width <= history)
        if len(usable) >= MIN_SAMPLES:
            return BaselinePlan(plan.method, usable)
    return BaselinePlan("none", ())


_WINDOW = "(epoch_us($until::TIMESTAMP) - epoch_us({column}) - 1) // $width_us"

# Counts come back keyed by integers (cid: the cluster, rid: its route), the names apart, once
# per cluster: a month of 5-minute windows is half a million rows, and strings on each of them
# cost three times the rest of the query.
_CID = "hash(service, method, route, error_code, kind)"
_RID = "hash(service, method, route)"

_EVENT_SOURCES = f"""
        SELECT service, method, route, error_code, kind, {{window}} AS j, conflicts AS n
        FROM conflict_hours
        WHERE {HOUR_EVENT_FILTER} AND ({{hours}})
        UNION ALL
        SELECT service, method, route, error_code, kind, {{window}}, conflicts
        FROM conflict_slots
        WHERE {HOUR_EVENT_FILTER} AND ({{slots}})
        UNION ALL
        SELECT service, method, route, error_code, kind, {{raw_window}}, 1
        FROM conflict_events
        WHERE {EVENT_FILTER} AND ({{raw}})
"""  # noqa: S608 - fixed fragments only; every value is bound

_EVENT_WINDOWS = f"""
    SELECT {_CID} AS cid, {_RID} AS rid, j, sum(n)::BIGINT AS conflicts
    FROM ({_EVENT_SOURCES})
    GROUP BY ALL
"""  # noqa: S608

_CLUSTER_NAMES = f"""
    SELECT DISTINCT service, method, route, error_code, kind, {_CID} AS cid, {_RID} AS rid
    FROM ({_EVENT_SOURCES})
"""  # noqa: S608

_REQUEST_WINDOWS = f"""
    SELECT {_RID} AS rid, j, sum(n)::BIGINT AS requests
    FROM (
        SELECT service, method, route, {{window}} AS j, requests AS n
        FROM request_hours
        WHERE {HOUR_REQUEST_FILTER} AND ({{hours}})
        UNION ALL
        SELECT service, method, route, {{window}}, requests
        FROM request_slots
        WHERE {HOUR_REQUEST_FILTER} AND ({{slots}})
        UNION ALL
        SELECT service, method, route, {{minute_window}}, requests
        FROM request_rollups
        WHERE {ROLLUP_FILTER} AND ({{raw}})
    )
    GROUP BY ALL
"""  # noqa: S608

_ROUTE_NAMES = f"""
    SELECT DISTINCT service, method, route, {_RID} AS rid FROM (
        SELECT service, method, route FROM request_hours
        WHERE {HOUR_REQUEST_FILTER} AND ({{hours}})
        UNION ALL
        SELECT service, method, route FROM request_slots
        WHERE {HOUR_REQUEST_FILTER} AND ({{slots}})
        UNION ALL
        SELECT service, method, route FROM request_rollups
        WHERE {ROLLUP_FILTER} AND ({{raw}})
    )
"""  # noqa: S608


def summarised_before(con: Store) -> dt.datetime:
    """Everything before this is in the summary tables (store/summaries.py), complete: the
    watermark, or the oldest hour invalidated since, whichever is first."""
    watermark = fetch(con, "SELECT max(complete_before) AS t FROM hours_watermark", {})
    # HAVING: no row when nothing is invalidated (ClickHouse's min() of nothing is 1970).
    invalid = fetch(con, "SELECT min(hour) AS t FROM hour_invalidations HAVING count(*) > 0", {})
    found = [v for v in (*watermark["t"], *invalid["t"]) if isinstance(v, dt.datetime)]
    return min(found) if found else EPOCH


@dataclass(frozen=True)
class WindowCounts:
    """Conflicts per (cid, j) and requests per (rid, j), and the names behind cid."""

    conflicts: pl.DataFrame  # cid, rid, j, conflicts
    requests: pl.DataFrame  # rid, j, requests
    clusters: pl.DataFrame  # CLUSTER_KEYS, cid, rid
    routes: pl.DataFrame | None = None  # ROUTE_KEYS, rid: only when asked for


def _window_numbers(
    con: Store,
    until: dt.datetime,
    width: dt.timedelta,
    windows: list[int],
    filters: Filters,
    *,
    with_routes: bool = False,
) -> WindowCounts:
    each = [(until - (j + 1) * width, until - j * width) for j in sorted(set(windows))]
    # The summaries know no client: a client filter reads everything raw.
    watermark = summarised_before(con) if filters.client is None else EPOCH
    (hours, slots), raw = spans.split_by_summary(each, watermark, width)
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
        "window": _WINDOW.format(column="slot"),
    }
    events = _EVENT_WINDOWS.format(
        **parts, raw=spans.clause("ts", "raw", raw), raw_window=_WINDOW.format(column="ts")
    )
    names = _CLUSTER_NAMES.format(
        **parts, raw=spans.clause("ts", "raw", raw), raw_window=_WINDOW.format(column="ts")
    )
    requests = _REQUEST_WINDOWS.format(
        **parts,
        raw=spans.clause("minute", "raw", raw),
        minute_window=_WINDOW.format(column="minute"),
    )
    routes = _ROUTE_NAMES.format(**parts, raw=spans.clause("minute", "raw", raw))
    return WindowCounts(
        fetch(con, events, bound),
        fetch(con, requests, bound),
        fetch(con, names, bound),
        fetch(con, routes, bound) if with_routes else None,
    )


def window_counts(
    con: Store,
    until: dt.datetime,
    width: dt.timedelta,
    windows: list[int],
    filters: Filters,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Conflicts per cluster and requests per route in each of ``windows``: whole hours and
    5-minute slots from the summaries, the rest from the raw tables (see analysis.spans)."""
    counts = _window_numbers(con, until, width, windows, filters, with_routes=True)
    assert counts.routes is not None
    keys = list(CLUSTER_KEYS)
    events = counts.conflicts.join(counts.clusters.drop("rid"), on="cid").select(
        *keys, "j", "conflicts"
    )
    requests = counts.requests.join(counts.routes, on="rid").select(*ROUTE_KEYS, "j", "requests")
    return events, requests


def series_baselines(
    con: Store,
    time_range: TimeRange,
    width: dt.timedelta,
    filters: Filters,
    *,
    min_conflicts: int = 5,
    min_trailing: int = MIN_SAMPLES,
    at_least: int = 0,
) -> pl.DataFrame:
    """Every cluster with conflicts in the closed ``time_range``, per window of ``width``
    (window 0 ends at until), with its observed conflicts, requests and ratio, and the
    baseline of each: median, MAD, the method used, the sample count, a sparse flag and a
    robust score (how many spreads above the median). A trailing baseline needs
    ``min_trailing`` samples (a few windows of a fresh store are a rough median). With
    ``at_least``, only the windows with at least that many conflicts are kept (and scored):
    what anomaly detection needs of a month of 5-minute windows."""
    since, until = time_range.params()["since"], time_range.params()["until"]
    assert since is not None and until is not None, "series_baselines needs a closed range"
    check_buckets(until - since, width, MAX_WINDOWS)
    observed = max(1, -(-(until - since) // width))
    start = data_start(con) or since
    covered = max(0, int((until - start) / width))  # windows with j < covered hold data
    plans = candidate_plans(width)
    offsets = np.array(sorted({0, *(o for plan in plans for o in plan.offsets)}))
    needed = np.unique((np.arange(observed)[:, None] + offsets[None, :]).ravel())
    needed = needed[(needed < covered) | (needed < observed)]
    counts = _window_numbers(con, until, width, needed.tolist(), filters)
    events, requests = counts.conflicts, counts.requests
    current = events.filter(pl.col("j") < observed).select("cid").unique()
    if current.height == 0:
        return empty_series()
    keys = list(CLUSTER_KEYS)
    clusters = counts.clusters.join(current, on="cid", how="semi").sort(keys, nulls_last=True)
    conflicts, asked = _matrices(clusters, events, requests, observed)
    clusters = clusters.drop("cid", "rid")
    if at_least > 0:
        k, j = np.nonzero(conflicts[:, :observed] >= at_least)
    else:  # every cluster x window, cluster by cluster
        k = np.repeat(np.arange(clusters.height), observed)
        j = np.tile(np.arange(observed), clusters.height)
    needs = {plan.method: MIN_SAMPLES for plan in plans} | {"trailing": min_trailing}
    stats, methods = _chosen_stats(conflicts, asked, k, j, plans, needs, covered)
    ratio = np.divide(
        conflicts[k, j], asked[k, j], where=asked[k, j] > 0, out=np.full(k.size, np.nan)
    )
    frame = (
        clusters[k]
        .with_columns(
            j=pl.Series(j, dtype=pl.Int64),
            conflicts=pl.Series(conflicts[k, j]).cast(pl.Int64),
            requests=pl.Series(asked[k, j]).cast(pl.Int64),
            ratio=pl.Series(ratio).fill_nan(None),
            **{name: pl.Series(stats[name]).fill_nan(None) for name in _STAT_COLUMNS},
            samples=pl.Series(stats["samples"]).cast(pl.UInt32),
            baseline_method=pl.Series(methods, dtype=pl.String),
        )
        .with_columns(start=pl.lit(until) - (pl.col("j") + 1) * pl.lit(width))
    )
    return with_scores(frame, min_conflicts).sort([*keys, "j"], nulls_last=True)


def with_scores(frame: pl.DataFrame, min_conflicts: int) -> pl.DataFrame:
    """``sparse`` and ``score`` from conflicts, baseline and baseline_mad: how many robust
    spreads the conflicts lie above the baseline. The spread has a floor for counting noise,
    the Poisson spread of the baseline but never of fewer than ``min_conflicts``: below that,
    a quiet median with a MAD of 0 would call 7 conflicts where 1 is usual six spreads out,
    and bursty traffic does that every few days."""
    sparse = (pl.col("conflicts") < min_conflicts) & (
        pl.col("baseline").is_null() | (pl.col("baseline") < min_conflicts)
    )
    scale = pl.max_horizontal(
        MAD_TO_SIGMA * pl.col("baseline_mad"),
        pl.col("baseline").clip(lower_bound=max(1, min_conflicts)).sqrt(),
    )
    return frame.with_columns(
        sparse=sparse,
        score=pl.when(~sparse & pl.col("baseline").is_not_null()).then(
            (pl.col("conflicts") - pl.col("baseline")) / scale
        ),
    )


_STAT_COLUMNS = ("baseline", "baseline_mad", "baseline_ratio", "baseline_ratio_mad")


def _chosen_stats(
    conflicts: np.ndarray,
    asked: np.ndarray,
    k: np.ndarray,
    j: np.ndarray,
    plans: tuple[BaselinePlan, ...],
    needs: dict[str, int],
    covered: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """For each cell (cluster k, window j), the statistics of the first plan with as many
    samples as it ``needs`` that the store covers (NaN and method "none" where no plan has),
    and the method each cell used. Which plan a window uses depends only on the window."""
    chosen = {name: np.full(k.size, np.nan) for name in _STAT_COLUMNS}
    samples = np.zeros(k.size, dtype=np.int64)
    methods = np.full(k.size, "none", dtype=object)
    open_ = np.ones(k.size, dtype=bool)  # no plan chosen yet
    for plan in plans:
        offsets = np.array(plan.offsets)
        valid = (j[:, None] + offsets[None, :]) < covered
        take = open_ & (valid.sum(axis=1) >= max(MIN_SAMPLES, needs[plan.method]))
        if not take.any():
            continue
        stats = _sample_stats(conflicts, asked, k[take], j[take], offsets, covered)
        for name in _STAT_COLUMNS:
            chosen[name][take] = stats[name]
        samples[take] = stats["samples"]
        methods[take] = plan.method
        open_ &= ~take
    return {**chosen, "samples": samples}, methods


def _matrices(
    clusters: pl.DataFrame, events: pl.DataFrame, requests: pl.DataFrame, observed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Conflicts and requests as (cluster, window) matrices, at least ``observed`` windows
    wide; absent is zero. Rows are placed by their integer keys (cid, rid)."""
    windows = pl.concat([events["j"], requests["j"]])
    size = max(observed, 1 + int(windows.max() or 0))  # type: ignore[arg-type]
    conflicts = np.zeros((clusters.height, size))
    asked = np.zeros((clusters.height, size))
    cids = clusters["cid"].to_numpy()
    order = np.argsort(cids)
    found = np.searchsorted(cids[order], events["cid"].to_numpy()).clip(0, cids.size - 1)
    known = cids[order][found] == events["cid"].to_numpy()
    rows = order[found[known]]
    conflicts[rows, events["j"].to_numpy()[known]] = events["conflicts"].to_numpy()[known]
    # a route's requests go to every cluster on it
    routed = clusters.select("rid").with_row_index("k").join(requests, on="rid")
    asked[routed["k"].to_numpy(), routed["j"].to_numpy()] = routed["requests"].to_numpy()
    return conflicts, asked


def _sample_stats(
    conflicts: np.ndarray,
    asked: np.ndarray,
    k: np.ndarray,
    j: np.ndarray,
    offsets: np.ndarray,
    covered: int,
) -> dict[str, np.ndarray]:
    """Median and MAD of conflicts and of ratio over each cell's samples (window j +
    offset of cluster k) that the store covers, and how many samples each cell has."""
    at = j[:, None] + offsets[None, :]
    valid = at < covered
    at = np.minimum(at, conflicts.shape[1] - 1)
    rows = k[:, None]
    counts = np.where(valid, conflicts[rows, at], np.nan)
    requests = asked[rows, at]
    ratios = np.where(
        valid & (requests > 0),
        np.divide(counts, requests, where=requests > 0, out=np.full(counts.shape, np.nan)),
        np.nan,
    )
    median = _nan_median(counts)
    mad = _nan_median(np.abs(counts - median[..., None]))
    ratio_median = _nan_median(ratios)
    ratio_mad = _nan_median(np.abs(ratios - ratio_median[..., None]))
    return {
        "baseline": median,
        "baseline_mad": mad,
        "baseline_ratio": ratio_median,
        "baseline_ratio_mad": ratio_mad,
        "samples": valid.sum(axis=1),
    }


def _nan_median(values: np.ndarray) -> np.ndarray:
    """The median over the last axis ignoring NaN (NaN where all are): a sort puts NaN last,
    and the middle of the valid ones is picked. np.nanmedian is many times slower on the
    short last axis here (at most 24 samples)."""
    ordered = np.sort(values, axis=-1)
    valid = (~np.isnan(values)).sum(axis=-1)
    low = np.clip((valid - 1) // 2, 0, None)[..., None]
    high = np.clip(valid // 2, 0, values.shape[-1] - 1)[..., None]
    middle = (np.take_along_axis(ordered, low, -1) + np.take_along_axis(ordered, high, -1)) / 2
    return np.where(valid > 0, middle[..., 0], np.nan)


def empty_series() -> pl.DataFrame:
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
