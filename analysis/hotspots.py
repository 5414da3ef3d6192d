"""Hot spots: the clusters that matter in a period, by volume, by ratio, by growth, or new.

Growth is the robust score against the cluster's own baseline (see analysis.baselines): how
many spreads the period's conflicts lie above the median of the same period in past weeks,
or of the periods just before. A store too young for either compares the period's buckets
with each other ("within-range": a spike at 15:00 stands out against the same day's other
hours). A short spike barely moves a whole day's count, so a cluster's score is the larger
of the period's and that of its busiest bucket (hours, or 5 minutes for ranges under 12 h)
against the bucket's own baseline; ``peak_start`` says when that bucket began.

A cluster is "new" when the store holds history before the period and none of it has this
cluster.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from conflictlens.analysis.baselines import (
    CLUSTER_KEYS,
    MIN_SAMPLES,
    series_baselines,
    with_scores,
)
from conflictlens.analysis.params import (
    DAY,
    EVENT_FILTER,
    HOUR,
    MINUTE,
    AnalysisError,
    Filters,
    TimeRange,
    closed_range,
    data_start,
    fetch,
)
from conflictlens.analysis.spans import ceil_to, floor_to
from conflictlens.store.engine import Store

SORTS = ("growth", "volume", "ratio", "new")

_SEEN_BEFORE = f"""
SELECT DISTINCT service, method, route, error_code, kind
FROM conflict_events
WHERE {EVENT_FILTER}
"""  # noqa: S608 - fixed fragments only; every value is bound

_COLUMNS = (
    *CLUSTER_KEYS,
    "conflicts",
    "requests",
    "ratio",
    "baseline",
    "baseline_mad",
    "baseline_ratio",
    "baseline_method",
    "sparse",
    "score",
    "new",
    "share",
    "peak_start",
)
PEAK_BUCKETS = (DAY, HOUR, 5 * MINUTE)  # the coarsest that cuts the range into MIN_PEAK_BUCKETS
MIN_PEAK_BUCKETS = 12


def hot_spots(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    sort: str = "growth",
    min_conflicts: int = 5,
    min_requests: int = 20,
    limit: int = 50,
) -> pl.DataFrame:
    """Clusters with conflicts in the period (default: the last 24 h of data), ranked by
    ``sort``: growth (score against baseline), volume (conflicts), ratio (conflicts over
    requests, only clusters with at least ``min_conflicts`` conflicts and ``min_requests``
    requests rank; the rest follow), or new (first seen in the period, then volume)."""
    if sort not in SORTS:
        raise AnalysisError(f"unknown sort {sort!r}; known: {', '.join(SORTS)}")
    closed = closed_range(con, time_range, DAY)
    if closed.span is None or closed.span <= dt.timedelta(0):
        return pl.DataFrame(schema=dict.fromkeys(_COLUMNS, pl.String))
    period = series_baselines(con, closed, closed.span, filters, min_conflicts=min_conflicts)
    period = period.filter(pl.col("j") == 0).drop("j", "start", "samples")
    period = _with_peaks(period, _peaks(con, closed, filters, min_conflicts), min_conflicts)
    ranked = _with_new(con, period, closed, filters).with_columns(
        share=pl.col("conflicts") / pl.col("conflicts").sum()
    )
    return _rank(ranked, sort, min_conflicts, min_requests).select(_COLUMNS).head(limit)


def _peaks(con: Store, closed: TimeRange, filters: Filters, min_conflicts: int) -> pl.DataFrame:
    """Per cluster, its busiest bucket of the range by score against the bucket's baseline
    (from history, else from the range's own buckets), with the range's own per-bucket
    median and MAD."""
    since, until = closed.params()["since"], closed.params()["until"]
    assert since is not None and until is not None
    # Only the part of the range the store covers: buckets before its data are not zeros.
    since = max(since, data_start(con) or since)
    if until <= since:
        return pl.DataFrame()
    span = until - since
    width = next((w for w in PEAK_BUCKETS if span >= MIN_PEAK_BUCKETS * w), PEAK_BUCKETS[-1])
    aligned = TimeRange(floor_to(since, width), ceil_to(until, width))
    cells = series_baselines(con, aligned, width, filters, min_conflicts=min_conflicts)
    if cells.height == 0:
        return pl.DataFrame()
    keys = list(CLUSTER_KEYS)
    own = cells.group_by(keys).agg(
        buckets=pl.len(),
        own_median=pl.col("conflicts").median(),
        own_mad=(pl.col("conflicts") - pl.col("conflicts").median()).abs().median(),
        own_ratio=pl.col("ratio").median(),
    )
    # Buckets without history are compared with the range's own buckets.
    cells = cells.join(own, on=keys, nulls_equal=True)
    no_history = pl.col("baseline").is_null() & (pl.col("buckets") >= MIN_SAMPLES)
    cells = with_scores(
        cells.with_columns(
            baseline=pl.when(no_history).then("own_median").otherwise("baseline"),
            baseline_mad=pl.when(no_history).then("own_mad").otherwise("baseline_mad"),
        ),
        min_conflicts,
    )
    return (
        cells.sort("score", descending=True, nulls_last=True)
        .group_by(keys, maintain_order=True)
        .agg(
            peak_score=pl.col("score").first(),
            peak_start=pl.col("start").first(),
            within_baseline=(pl.col("own_median") * pl.col("buckets")).first(),
            within_mad=(pl.col("own_mad") * pl.col("buckets").sqrt()).first(),
            within_ratio=pl.col("own_ratio").first(),
        )
    )


def _with_peaks(period: pl.DataFrame, peaks: pl.DataFrame, min_conflicts: int) -> pl.DataFrame:
    """The period's score and baseline, with the within-range baseline where the period has
    none, and the peak's score where it is the larger."""
    if peaks.height == 0:
        return period.with_columns(peak_start=pl.lit(None, pl.Datetime("us")))
    keys = list(CLUSTER_KEYS)
    frame = period.join(peaks, on=keys, how="left", nulls_equal=True)
    without = pl.col("baseline").is_null() & pl.col("within_baseline").is_not_null()
    frame = frame.with_columns(
        baseline=pl.when(without).then("within_baseline").otherwise("baseline"),
        baseline_mad=pl.when(without).then("within_mad").otherwise("baseline_mad"),
        baseline_ratio=pl.when(without).then("within_ratio").otherwise("baseline_ratio"),
        baseline_method=pl.when(without).then(pl.lit("within-range")).otherwise("baseline_method"),
    )
    frame = with_scores(frame, min_conflicts)
    return frame.with_columns(score=pl.max_horizontal("score", "peak_score")).drop(
        "peak_score", "within_baseline", "within_mad", "within_ratio"
    )


def _with_new(
    con: Store, period: pl.DataFrame, closed: TimeRange, filters: Filters
) -> pl.DataFrame:
    start = data_start(con)
    since = closed.params()["since"]
    if start is None or since is None or start >= since:  # no history: nothing can be new
        return period.with_columns(new=pl.lit(False))
    before = TimeRange(None, since)
    seen = fetch(con, _SEEN_BEFORE, {**before.params(), **filters.params()})
    keys = list(CLUSTER_KEYS)
    return (
        period.join(seen.with_columns(seen=pl.lit(True)), on=keys, how="left", nulls_equal=True)
        .with_columns(new=pl.col("seen").is_null())
        .drop("seen")
    )


def _rank(frame: pl.DataFrame, sort: str, min_conflicts: int, min_requests: int) -> pl.DataFrame:
    tie = ["method", "route", "error_code"]
    if sort == "volume":
        return frame.sort(["conflicts", *tie], descending=[True, False, False, False])
    if sort == "ratio":
        guarded = (pl.col("conflicts") >= min_conflicts) & (pl.col("requests") >= min_requests)
        return frame.with_columns(ranked_ratio=pl.when(guarded).then(pl.col("ratio"))).sort(
            ["ranked_ratio", "conflicts", *tie],
            descending=[True, True, False, False, False],
            nulls_last=True,
        )
    if sort == "new":
        return frame.sort(["new", "conflicts", *tie], descending=[True, True, False, False, False])
    return frame.sort(
        ["score", "conflicts", *tie], descending=[True, True, False, False, False], nulls_last=True
    )
