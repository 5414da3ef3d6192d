"""The report as CSV: one table of the period's clusters for a spreadsheet.

One row per top cluster (with whether it is new and its growth score), preceded by one
``total`` row each for the period, the previous period and the week before. Cells that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading apostrophe: a route or error code from a log never becomes
a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import polars as pl

from conflictlens.analysis.reports.build import Report

COLUMNS = (
    "section",
    "from",
    "to",
    "rank",
    "service",
    "method",
    "route",
    "status",
    "error_code",
    "kind",
    "conflicts",
    "requests",
    "ratio",
    "share",
    "new",
    "growth_score",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


def formula_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` as safe_cell writes it, vectorized: for CSV downloads."""
    starts = "^[" + "".join(_FORMULA).replace("-", "\\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(starts))
        .then("'" + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )


def render_csv(report: Report) -> str:
    period = report["period"]
    keys = ("service", "method", "route", "error_code", "kind")
    scores: dict[tuple[Any, ...], Any] = {
        tuple(r.get(k) for k in keys): r.get("score") for r in report["growing_clusters"]
    }
    new = {tuple(r.get(k) for k in keys) for r in report["new_clusters"]}
    rows: list[Mapping[str, Any]] = [
        {"section": "total", "from": period["from"], "to": period["to"], **_totals(report)},
        {"section": "previous", **_totals(report["previous"]), **_span(report["previous"])},
        {
            "section": "week_before",
            **_totals(report["week_before"]),
            **_span(report["week_before"]),
        },
    ]
    for rank, row in enumerate(report["top_clusters"], 1):
        key = tuple(row.get(k) for k in keys)
        rows.append(
            {
                **row,
                "section": "cluster",
                "from": period["from"],
                "to": period["to"],
                "rank": rank,
                "new": key in new,
                "growth_score": scores.get(key),
            }
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: safe_cell(row.get(column)) for column in COLUMNS})
    return out.getvalue()


def _totals(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in ("conflicts", "requests", "ratio")}


def _span(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"from": values.get("from"), "to": values.get("to")}
