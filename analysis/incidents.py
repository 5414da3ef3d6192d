"""Incidents: anomalous windows of clusters that begin together, grouped into one.

A bucket of a cluster is anomalous when its conflicts stand ``threshold`` robust spreads above
the cluster's baseline, number at least ``min_conflicts``, and its conflict ratio is at least
``RATIO_LIFT`` times the usual one (more traffic with the same ratio is not an incident).
Anomalous buckets of one cluster at most one quiet bucket apart form an episode; an episode
needs two anomalous buckets, so a single noisy bucket never raises an incident. Episodes of
different clusters that begin within ``TOGETHER`` buckets of the first one are one incident:
a bad deploy that raises conflicts on three routes at once is one incident, not three.

A quieter cluster may have too few conflicts per bucket to stand out in any one of them, yet
clearly stand out over the incident's whole window. So, once an incident is known, every other
cluster is scored over that window as one (against the same window in past weeks, or the
windows before it) and joins the incident when it passes ``JOIN_THRESHOLD``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from analysis.baselines import CLUSTER_KEYS, series_baselines
from analysis.params import DAY, HOUR, MINUTE, Filters, TimeRange, bucket_width, closed_range
from analysis.spans import ceil_to, floor_to

RATIO_LIFT = 1.5
MIN_EPISODE_BUCKETS = 2
TOGETHER = 2  # buckets
JOIN_THRESHOLD = 4.0


def incident_bucket(name: str | None, span: dt.timedelta) -> dt.timedelta:
    """Incidents never use 1-minute buckets: a minute holds too few conflicts to score."""
    if name in (None, "auto"):
        return 5 * MINUTE if span <= 36 * HOUR else HOUR if span <= 31 * DAY else DAY
    return bucket_width(name, span)


def anomalous_buckets(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    bucket: str | None = None,
    threshold: float = 4.0,
    min_conflicts: int = 5,
) -> pl.DataFrame:
    """Every (cluster, bucket) of the range that stands out from its baseline."""
    closed = closed_range(con, time_range, DAY)
    if closed.span is None or closed.span <= dt.timedelta(0):
        return pl.DataFrame()
    width = incident_bucket(bucket, closed.span)
    # Buckets on the clock (like the timeline's): they line up with the summaries too.
    since, until = closed.params()["since"], closed.params()["until"]
    assert since is not None and until is not None
    aligned = TimeRange(floor_to(since, width), ceil_to(until, width))
    cells = series_baselines(con, aligned, width, filters, min_conflicts=min_conflicts)
    lifted = pl.col("baseline_ratio").is_null() | (
        pl.col("ratio") >= RATIO_LIFT * pl.col("baseline_ratio")
    )
    return cells.filter(
        (pl.col("score") >= threshold) & (pl.col("conflicts") >= min_conflicts) & lifted
    ).with_columns(end=pl.col("start") + width, bucket_seconds=pl.lit(int(width.total_seconds())))


def incidents(
    con: duckdb.DuckDBPyConnection,
    time_range: TimeRange,
    filters: Filters,
    *,
    bucket: str | None = None,
    threshold: float = 4.0,
    min_conflicts: int = 5,
) -> pl.DataFrame:
    """Incidents in the range (default: the last 24 h of data), newest first: start, end,
    peak ratio, conflicts, and the clusters involved with their own start, end and peak."""
    cells = anomalous_buckets(
        con, time_range, filters, bucket=bucket, threshold=threshold, min_conflicts=min_conflicts
    )
    if cells.height == 0:
        return _no_incidents()
    width = dt.timedelta(seconds=int(cells["bucket_seconds"][0]))
    episodes = _episodes(cells, width)
    if episodes.height == 0:
        return _no_incidents()
    groups = _group(episodes, width)
    for members in groups:
        members.extend(_joiners(con, members, filters, min_conflicts))
    rows = [_incident(number, members) for number, members in enumerate(groups, 1)]
    return pl.DataFrame(rows).sort("start", descending=True)


def _episodes(cells: pl.DataFrame, width: dt.timedelta) -> pl.DataFrame:
    keys = list(CLUSTER_KEYS)
    broken = (pl.col("start") - pl.col("start").shift(1)).over(keys, order_by="start") > 2 * width
    return (
        cells.sort([*keys, "start"], nulls_last=True)
        .with_columns(episode=broken.fill_null(True).cum_sum().over(keys, order_by="start"))
        .group_by([*keys, "episode"])
        .agg(
            start=pl.col("start").min(),
            end=pl.col("end").max(),
            buckets=pl.len(),
            conflicts=pl.col("conflicts").sum(),
            requests=pl.col("requests").sum(),
            peak_ratio=pl.col("ratio").max(),
            baseline_ratio=pl.col("baseline_ratio").median(),
            peak_score=pl.col("score").max(),
        )
        .filter(pl.col("buckets") >= MIN_EPISODE_BUCKETS)
        .drop("episode")
        .sort(["start", "conflicts"], descending=[False, True])
    )


def _group(episodes: pl.DataFrame, width: dt.timedelta) -> list[list[dict[str, Any]]]:
    """Episodes (at most a few hundred) in start order: each joins the open incident when it
    begins within TOGETHER buckets of that incident's first start."""
    groups: list[list[dict[str, Any]]] = []
    for episode in episodes.iter_rows(named=True):
        if groups and episode["start"] - groups[-1][0]["start"] <= TOGETHER * width:
            groups[-1].append(episode)
        else:
            groups.append([episode])
    return groups


def _joiners(
    con: duckdb.DuckDBPyConnection,
    members: list[dict[str, Any]],
    filters: Filters,
    min_conflicts: int,
) -> list[dict[str, Any]]:
    """Other clusters that stand out over the incident's whole window."""
    start = min(m["start"] for m in members)
    end = max(m["end"] for m in members)
    window = series_baselines(con, TimeRange(start, end), end - start, filters)
    lifted = pl.col("baseline_ratio").is_null() | (
        pl.col("ratio") >= RATIO_LIFT * pl.col("baseline_ratio")
    )
    keys = list(CLUSTER_KEYS)
    known = pl.DataFrame(
        [{k: m[k] for k in keys} for m in members], schema=dict.fromkeys(keys, pl.String)
    )
    found = window.filter(
        (pl.col("score") >= JOIN_THRESHOLD) & (pl.col("conflicts") >= min_conflicts) & lifted
    ).join(known, on=keys, how="anti", nulls_equal=True)
    return [
        {
            **{k: row[k] for k in keys},
            "start": start,
            "end": end,
            "buckets": None,
            "conflicts": row["conflicts"],
            "requests": row["requests"],
            "peak_ratio": row["ratio"],
            "baseline_ratio": row["baseline_ratio"],
            "peak_score": row["score"],
        }
        for row in found.iter_rows(named=True)
    ]


def _incident(number: int, members: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [m["peak_ratio"] for m in members if m["peak_ratio"] is not None]
    return {
        "incident": number,
        "start": min(m["start"] for m in members),
        "end": max(m["end"] for m in members),
        "peak_ratio": max(ratios) if ratios else None,
        "conflicts": sum(m["conflicts"] for m in members),
        "clusters": [
            {
                **{k: m[k] for k in CLUSTER_KEYS},
                "start": m["start"],
                "end": m["end"],
                "conflicts": m["conflicts"],
                "peak_ratio": m["peak_ratio"],
                "baseline_ratio": m["baseline_ratio"],
                "peak_score": m["peak_score"],
            }
            for m in sorted(members, key=lambda m: -m["conflicts"])
        ],
    }


def _no_incidents() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "incident": pl.Int64,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
            "peak_ratio": pl.Float64,
            "conflicts": pl.Int64,
            "clusters": pl.List(pl.Struct({k: pl.String for k in CLUSTER_KEYS})),
        }
    )
