"""Resources, a tab each: the single ids clients fight over with one resource's timeline, and
retry storms."""

from __future__ import annotations

import streamlit as st

from dashboard import figures, page
from dashboard.data import ask, drawn

view = page.start("Resources")


def hot_resources() -> None:
    found = ask("resources", view.since, view.until, **view.filters)
    if found.height == 0:
        st.info("No conflicts on identified resources in this range.")
        return
    st.dataframe(
        found.select(
            "method",
            "route",
            "resource",
            "conflicts",
            "peak_conflicts",
            "peak_start",
            "clients",
            "max_overlap",
            "top_error_code",
        ),
        hide_index=True,
        key="resources",
    )
    labels = [f"{r['method']} {r['route']} {r['resource']}" for r in found.iter_rows(named=True)]
    picked = st.selectbox(
        "Resource", range(len(labels)), format_func=lambda i: labels[i], key="resource"
    )
    one = found.row(picked, named=True)
    chart = drawn(
        figures.resource_timeline,
        "resource_timeline",
        view.since,
        view.until,
        **{**view.filters, "method": one["method"], "route": one["route"]},
        resource=one["resource"],
    )
    st.caption(
        f"{one['conflicts']:,} conflicts from {one['clients']:,} clients; at most "
        f"{one['max_overlap']} conflicting writes in flight at once."
    )
    st.plotly_chart(chart, key="resource_timeline")


def storms() -> None:
    found = ask("storms", view.since, view.until, **view.filters)
    if found.height == 0:
        st.info("No retry storms in this range.")
        return
    st.dataframe(
        found.select(
            "client",
            "method",
            "route",
            "resource",
            "count",
            "start",
            "end",
            "median_interval_ms",
            "resolution_ms",
            "user_agent",
        ),
        hide_index=True,
        key="storms",
    )


page.sections({"Hot resources": hot_resources, "Retry storms": storms})
