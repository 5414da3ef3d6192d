"""Hot spots' tables: the ranking against the usual with new and growing named, the
incidents as rows, and the heatmap cell a click picked."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from conflictlens.dashboard.figures_time import Usual, label_parts

KEYS = ["service", "method", "route", "error_code", "kind"]
GROWING = 3  # score: spreads above the baseline
RANKED = (
    "status", "method", "route", "error_code", "times_usual", "score", "conflicts", "trend",
    "ratio", "baseline_ratio", "requests", "kind",
)  # fmt: skip


def with_status(spots: pl.DataFrame) -> pl.DataFrame:
    """``times_usual`` (ratio over the usual ratio) and ``status``: new, growing or blank."""
    return spots.with_columns(
        times_usual=pl.when(pl.col("baseline_ratio") > 0).then(
            pl.col("ratio") / pl.col("baseline_ratio")
        ),
        status=pl.when(pl.col("new"))
        .then(pl.lit("new"))
        .when(pl.col("score").fill_null(0) >= GROWING)
        .then(pl.lit("growing"))
        .otherwise(pl.lit("")),
    )


def ranked_table(spots: pl.DataFrame, trends: pl.DataFrame) -> pl.DataFrame:
    table = with_status(spots).join(trends, on=KEYS, how="left", nulls_equal=True)
    return table.select([c for c in RANKED if c in table.columns])


def usual_by_route(spots: pl.DataFrame) -> Usual:
    """A route's usual ratio: the sum of its clusters' (they share its requests)."""
    if spots.height == 0 or "baseline_ratio" not in spots.columns:
        return ()
    usual = spots.group_by("method", "route").agg(pl.col("baseline_ratio").sum())
    return tuple(
        (m, r, float(u)) for m, r, u in usual.sort("method", "route").rows() if u is not None
    )


def incidents_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "start": r["start"],
                "end": r["end"],
                "conflicts": r["conflicts"],
                # Early, in sight: a grid draws (and a screen reader gets) visible columns only.
                "clusters": "; ".join(r["clusters"]),
                "times_usual": r["times_usual"],
                "peak_ratio": r["peak_ratio"],
                "usual_ratio": r["usual_ratio"],
                "began_after": r["annotation"] or "",
            }
            for r in rows
        ],
        schema_overrides={
            "peak_ratio": pl.Float64,
            "usual_ratio": pl.Float64,
            "times_usual": pl.Float64,
        },
    )


def clicked_cell(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The filters of the heatmap cell clicked: its route and its column's time."""
    for point in points:
        data = point.get("customdata")
        if not data or len(data) < 6 or not point.get("y"):
            continue
        method, route = label_parts(str(point["y"]))
        start = dt.datetime.fromisoformat(str(data[4]).replace(" ", "T"))
        return {
            "method": method, "route": route, "since": start,
            "until": dt.datetime.fromisoformat(str(data[3])),
        }  # fmt: skip
    return None
