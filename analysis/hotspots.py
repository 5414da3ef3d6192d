"""Hot spots: the clusters that matter in a period, by volume, by ratio, by growth, or new.

Growth is the robust score against the cluster's own baseline (see analysis.baselines): how
many spreads the period's conflicts lie above the median of the same period in past weeks,
or of the periods just before. A cluster is "new" when the store holds history before the
period and none of it has this cluster.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from analysis.baselines import CLUSTER_KEYS, series_baselines
from analysis.params import (
    DAY,
    EVENT_FILTER,
    AnalysisError,
    Filters,
    TimeRange,
    closed_range,
    data_start,
    fetch,
)

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
)


def hot_spots(
    con: duckdb.DuckDBPyConnection,
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
    ranked = _with_new(con, period, closed, filters).with_columns(
        share=pl.col("conflicts") / pl.col("conflicts").sum()
    )
    return _rank(ranked, sort, min_conflicts, min_requests).select(_COLUMNS).head(limit)


def _with_new(
    con: duckdb.DuckDBPyConnection, period: pl.DataFrame, closed: TimeRange, filters: Filters
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
