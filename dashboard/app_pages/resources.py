"""Resources, a tab each: the single ids clients fight over with one resource's timeline, and
retry storms; a row opens its requests in Explore."""

from __future__ import annotations

import streamlit as st

from conflictlens.dashboard import figures_time, page
from conflictlens.dashboard.data import ask, drawn
from conflictlens.dashboard.state import go
from conflictlens.dashboard.tables import grid

view = page.start("Resources")
RESOURCE_COLUMNS = (
    "method", "route", "resource", "top_error_code", "conflicts", "clients", "max_overlap",
    "peak_conflicts", "peak_start", "first_seen", "last_seen",
)  # fmt: skip
STORM_COLUMNS = (
    "client", "method", "route", "resource", "error_code", "count", "start", "end",
    "median_interval_ms", "resolution_ms", "user_agent",
)  # fmt: skip


def hot_resources() -> None:
    found = ask("resources", view.since, view.until, **view.filters)
    if found.height == 0:
        st.info("No conflicts on identified resources in this range.")
        return
    st.caption("Click a row for its requests in Explore (its route, error code and time).")
    clicked = grid(found, "resources", columns=RESOURCE_COLUMNS, clickable=True)
    if clicked is not None:
        one = found.row(clicked, named=True)
        go("explore", method=one["method"], route=one["route"], code=one["top_error_code"],
           since=one["first_seen"], until=one["last_seen"] + figures_time.ONE_SECOND)  # fmt: skip
    labels = [f"{r['method']} {r['route']} {r['resource']}" for r in found.iter_rows(named=True)]
    picked = st.selectbox(
        "Resource", range(len(labels)), format_func=lambda i: labels[i], key="resource"
    )
    one = found.row(picked, named=True)
    chart = drawn(
        figures_time.resource_timeline,
        "resource_timeline",
        view.since,
        view.until,
        **{**view.filters, "method": one["method"], "route": one["route"]},
        resource=one["resource"],
    )
    st.caption(
        f"{one['conflicts']:,} conflicts from {one['clients']:,} clients; at most "
        f"{one['max_overlap']:,} conflicting writes in flight at once."
    )
    st.plotly_chart(chart, key="resource_timeline")


def storms() -> None:
    found = ask("storms", view.since, view.until, **view.filters)
    if found.height == 0:
        st.info("No retry storms in this range.")
        return
    st.caption("Click a storm for its requests in Explore.")
    clicked = grid(found, "storms", columns=STORM_COLUMNS, clickable=True)
    if clicked is not None:
        one = found.row(clicked, named=True)
        go("explore", client=one["client"], method=one["method"], route=one["route"],
           code=one["error_code"], since=one["start"],
           until=one["end"] + figures_time.ONE_SECOND)  # fmt: skip


page.sections({"Hot resources": hot_resources, "Retry storms": storms})
