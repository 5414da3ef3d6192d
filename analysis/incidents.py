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

What is detected never depends on the range asked: buckets are always 5 minutes on the clock,
each bucket's baseline depends only on where it lies (analysis.baselines), and detection runs
over the range widened by ``CONTEXT`` on both sides. The range only picks which incidents are
shown: those that overlap it, whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from conflictlens.analysis.baselines import CLUSTER_KEYS, empty_series, series_baselines
from conflictlens.analysis.incident_context import with_context
from conflictlens.analysis.params import (
    DAY,
    Filters,
    TimeRange,
    bucket_width,
    closed_range,
    data_end,
    data_start,
)
from conflictlens.analysis.spans import ceil_to, floor_to
from conflictlens.store.engine import Store

RATIO_LIFT = 1.5
MIN_EPISODE_BUCKETS = 2
TOGETHER = 2  # buckets
JOIN_THRESHOLD = 4.0
# Detection runs over the asked range widened by this much on both sides, so that an incident
# that began before the range, or goes on after it, is found whole and the same as when a
# range holding all of it is asked.
CONTEXT = DAY
DETECTION_BUCKET = "5m"
# A trailing baseline needs an hour of 5-minute buckets: a few buckets of a fresh store give a
# median and MAD too rough to call anything an incident.
MIN_TRAILING = 12


def incident_bucket(name: str | None) -> dt.timedelta:
    """Anomalies are detected in 5-minute buckets whatever the range, so that what is found
    does not depend on how much is asked; a bucket named explicitly overrides that."""
    return bucket_width(DETECTION_BUCKET if name in (None, "auto") else name, DAY)


def _detected(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    bucket: str | None,
    threshold: float,
    min_conflicts: int,
    context: dt.timedelta,
) -> tuple[pl.DataFrame, TimeRange | None]:
    """The anomalous (cluster, bucket) cells over the closed range widened by ``context``
    (clamped to the data), and the closed range itself."""
    closed = closed_range(con, time_range, DAY)
    since, until = closed.params()["since"], closed.params()["until"]
    if since is None or until is None or until <= since:
        return _no_cells(), None
    width = incident_bucket(bucket)
    first, last = data_start(con), data_end(con)
    if first is None or last is None:
        return _no_cells(), closed
    # Buckets on the clock (like the timeline's): they line up with the summaries too.
    wide = TimeRange(
        floor_to(max(since - context, first), width), ceil_to(min(until + context, last), width)
    )
    if wide.span is None or wide.span <= dt.timedelta(0):
        return _no_cells(), closed
    cells = series_baselines(
        con,
        wide,
        width,
        filters,
        min_conflicts=min_conflicts,
        min_trailing=MIN_TRAILING,
        at_least=min_conflicts,  # a window with fewer is never anomalous
    )
    lifted = pl.col("baseline_ratio").is_null() | (
        pl.col("ratio") >= RATIO_LIFT * pl.col("baseline_ratio")
    )
    anomalous = cells.filter(
        (pl.col("score") >= threshold) & (pl.col("conflicts") >= min_conflicts) & lifted
    ).with_columns(end=pl.col("start") + width, bucket_seconds=pl.lit(int(width.total_seconds())))
    return anomalous, closed


def anomalous_buckets(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    bucket: str | None = None,
    threshold: float = 4.0,
    min_conflicts: int = 5,
) -> pl.DataFrame:
    """Every (cluster, 5-minute bucket) of the range that stands out from its baseline."""
    cells, closed = _detected(
        con, time_range, filters, bucket, threshold, min_conflicts, dt.timedelta(0)
    )
    if closed is None or cells.height == 0:
        return cells
    since, until = closed.params()["since"], closed.params()["until"]
    return cells.filter((pl.col("end") > since) & (pl.col("start") < until))


def incidents(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    bucket: str | None = None,
    threshold: float = 4.0,
    min_conflicts: int = 5,
) -> pl.DataFrame:
    """Incidents that overlap the range (default: the last 24 h of data), newest first:
    start, end, peak ratio, conflicts, and the clusters involved with their own start, end
    and peak; then the headline figures and the annotation before it (CONTEXT_COLUMNS,
    analysis.incident_context). They are detected in 5-minute buckets over the range and a day on each side,
    so an incident is the same whatever range holding it is asked."""
    cells, closed = _detected(con, time_range, filters, bucket, threshold, min_conflicts, CONTEXT)
    if closed is None or cells.height == 0:
        return _no_incidents()
    width = dt.timedelta(seconds=int(cells["bucket_seconds"][0]))
    episodes = _episodes(cells, width)
    if episodes.height == 0:
        return _no_incidents()
    since, until = closed.params()["since"], closed.params()["until"]
    assert since is not None and until is not None
    # Joiners and merging only for the incidents that decide what is shown: those in the
    # range, and those that overlap them (only an overlapping one can be folded in or host).
    near = _touching(_group(episodes, width), since, until)
    joined = _merged(near, lambda members: _joiners(con, members, filters, min_conflicts))
    shown = [g for g in joined if _overlaps(g, since, until)]
    if not shown:
        return _no_incidents()
    rows = [_incident(number, members) for number, members in enumerate(shown, 1)]
    rows = with_context(con, rows, width)
    return pl.DataFrame(rows, schema_overrides=CONTEXT_COLUMNS).sort("start", descending=True)


def _touching(
    groups: list[list[dict[str, Any]]], since: dt.datetime, until: dt.datetime
) -> list[list[dict[str, Any]]]:
    """The groups that overlap the range, and, again and again, those overlapping them."""
    spans = [_span(g) for g in groups]
    keep = [_overlaps(g, since, until) for g in groups]
    grown = True
    while grown:
        grown = False
        for i, (start, end) in enumerate(spans):
            if not keep[i] and any(
                keep[k] and start < spans[k][1] and spans[k][0] < end for k in range(len(spans))
            ):
                keep[i] = grown = True
    return [g for g, kept in zip(groups, keep, strict=True) if kept]


def _span(members: list[dict[str, Any]]) -> tuple[dt.datetime, dt.datetime]:
    return min(m["start"] for m in members), max(m["end"] for m in members)


def _overlaps(members: list[dict[str, Any]], since: dt.datetime, until: dt.datetime) -> bool:
    start: dt.datetime = min(m["start"] for m in members)
    end: dt.datetime = max(m["end"] for m in members)
    return start < until and end > since


def _merged(
    groups: list[list[dict[str, Any]]],
    joiners: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> list[list[dict[str, Any]]]:
    """The groups as incidents, each with its ``joiners``. A later group whose clusters all
    belong to an earlier incident (joiners included) that is still going on when it begins is
    that incident, seen again once a quieter cluster of it stood out on its own (its episode
    began late): it is folded in, extending the incident's end."""
    out: list[list[dict[str, Any]]] = []
    for members in groups:
        clusters = {_cluster(m) for m in members}
        start = min(m["start"] for m in members)
        host = next(
            (
                known
                for known in out
                if start < max(m["end"] for m in known) and clusters <= {_cluster(m) for m in known}
            ),
            None,
        )
        if host is None:
            out.append([*members, *joiners(members)])
            continue
        end = max(m["end"] for m in members)
        for member in host:
            if _cluster(member) in clusters:
                member["end"] = max(member["end"], end)
    return out


def _cluster(member: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(member[k] for k in CLUSTER_KEYS)


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
    con: Store,
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


def _no_cells() -> pl.DataFrame:
    return empty_series().with_columns(
        end=pl.lit(None, pl.Datetime("us")), bucket_seconds=pl.lit(None, pl.Int32)
    )


# The columns analysis.incident_context adds to each incident.
CONTEXT_COLUMNS: dict[str, pl.DataType] = {
    "requests": pl.Int64(),  # on the clusters' routes during the incident
    "usual_ratio": pl.Float64(),  # the peak cluster's baseline ratio
    "times_usual": pl.Float64(),  # peak_ratio / usual_ratio
    "endpoints": pl.List(pl.String()),  # "PUT /api/v2/carts/{id}/items/{id}"
    "error_codes": pl.List(pl.String()),
    "annotation": pl.String(),  # the change the incident began just after
    "annotation_at": pl.Datetime("us"),
    "minutes_after_annotation": pl.Int64(),
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
            **CONTEXT_COLUMNS,
        }
    )
