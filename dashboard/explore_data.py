"""Explore's data: the matching events a page at a time, sorted by the store (not the 100 rows
on screen), for the view's filters or for an incident's clusters.

An incident spans clusters (several routes and error codes) that one set of filters cannot
name, so its events are asked per cluster and merged: the total is the sum of the clusters'
counts, and a page is the first ``offset + limit`` rows of each cluster, merged and cut, which
stays small for the pages anyone reads.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from conflictlens.analysis.catalog import QUERIES
from conflictlens.dashboard.data import ask
from conflictlens.dashboard.filters import View
from conflictlens.dashboard.state import parse_cluster

SORTS = ("ts", "method", "route", "path", "status", "error_code", "kind", "client", "latency_ms",
         "bytes")  # fmt: skip
SHOWN = (
    "ts",
    "method",
    "path",
    "status",
    "error_code",
    "client",
    "latency_ms",
    "bytes",
    "user_agent",
    "route",
    "kind",
    "service",
    "request_id",
    "resource_ids",
    "upstream",
)


def sortable() -> bool:
    """Whether the catalog's events query sorts by a column given (issue 19's backend)."""
    return "sort" in QUERIES["events"].params


def scopes(view: View) -> list[dict[str, Any]]:
    """The filters of each question to ask: the view's, once per incident cluster when the
    view names clusters (a cluster its own filters rule out is left out)."""
    base = dict(view.filters)
    if not view.clusters:
        return [base]
    found = []
    for text in view.clusters:
        parsed = parse_cluster(text)
        if parsed is None:
            continue
        wanted = dict(zip(("method", "route", "code"), parsed, strict=True))
        if any(base[k] and wanted[k] and base[k] != wanted[k] for k in wanted):
            continue
        found.append({**base, **{k: v for k, v in wanted.items() if v}})
    return found


def event_total(view: View) -> int:
    return sum(
        int(ask("event_count", view.since, view.until, **scope)["events"][0])
        for scope in scopes(view)
    )


def event_page(
    view: View, offset: int, limit: int, sort: str = "ts", descending: bool = True
) -> pl.DataFrame:
    """Rows ``offset`` to ``offset + limit`` of the matching events in the order asked."""
    order: dict[str, Any] = {"sort": sort, "descending": descending} if sortable() else {}
    parts = scopes(view)
    if len(parts) == 1:
        return ask(
            "events", view.since, view.until, limit=limit, offset=offset, **order, **parts[0]
        )
    frames = [
        ask("events", view.since, view.until, limit=offset + limit, **order, **scope)
        for scope in parts
    ]
    merged = (
        pl.concat([f for f in frames if f.height], how="diagonal_relaxed")
        if any(f.height for f in frames)
        else frames[0]
    )
    key = sort if sortable() and sort in merged.columns else "ts"
    keys = [key, "ts"] if key != "ts" else ["ts"]
    merged = merged.sort(keys, descending=descending if sortable() else True, nulls_last=True)
    return merged.slice(offset, limit)


def everything(view: View, limit: int) -> pl.DataFrame:
    """Up to ``limit`` matching events, for a download."""
    frames = [ask("events", view.since, view.until, limit=limit, **scope) for scope in scopes(view)]
    return pl.concat(frames, how="diagonal_relaxed").head(limit)
