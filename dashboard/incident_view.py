"""The incident page's data: its window and clusters from the URL, the incident itself, its
clients."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import polars as pl
import streamlit as st

from conflictlens.dashboard.explore_data import everything
from conflictlens.dashboard.filters import View
from conflictlens.dashboard.incidents_data import incident_rows
from conflictlens.dashboard.state import iso, parse_cluster

CLIENT_SAMPLE = 20_000  # events read to rank an incident's clients
TOP_CLIENTS = 10


def window() -> tuple[dt.datetime, dt.datetime] | None:
    """The incident's own window (``from`` and ``to`` in the URL)."""
    try:
        start = dt.datetime.fromisoformat(st.query_params.get("from", ""))
        end = dt.datetime.fromisoformat(st.query_params.get("to", ""))
    except ValueError:
        return None
    return (start, end) if end > start else None


def matching_incident(view: View, start: dt.datetime, end: dt.datetime) -> dict[str, Any] | None:
    """The detected incident with this window, for its numbers (None if no longer detected)."""
    around = replace(view, clusters=())
    for row in incident_rows(around):
        if row["start"] == start and row["end"] == end:
            return row
    return None


def cluster_filter(clusters: tuple[str, ...], code: str | None = "error_code") -> pl.Expr:
    """Rows of the clusters (method, route and, when ``code`` names a column, error code)."""
    wanted = [c for c in map(parse_cluster, clusters) if c is not None]
    if not wanted:
        return pl.lit(False)
    expr = pl.lit(False)
    for method, route, error in wanted:
        one = (pl.col("method") == method) & (pl.col("route") == route)
        if code is not None and error is not None:
            one = one & (pl.col(code) == error)
        expr = expr | one
    return expr


def requests_link_query(view: View) -> dict[str, Any]:
    found = window()
    assert found is not None
    return {"since": iso(found[0]), "until": iso(found[1]), "cluster": list(view.clusters)}


def clients(view: View, found: tuple[dt.datetime, dt.datetime]) -> pl.DataFrame:
    """The clients with most conflicts in the incident's window and clusters."""
    inside = replace(view, since=iso(found[0]), until=iso(found[1]), range="custom")
    events = everything(inside, CLIENT_SAMPLE)
    if events.height == 0:
        return pl.DataFrame({"client": [], "conflicts": []})
    return (
        events.group_by("client")
        .agg(conflicts=pl.len(), user_agent=pl.col("user_agent").mode().first())
        .sort(["conflicts", "client"], descending=[True, False])
        .head(TOP_CLIENTS)
    )
