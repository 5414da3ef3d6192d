"""One incident: how bad against normal, its clusters' series around its window, the
resources, clients and retry storms in it, and a link to its requests. Opened from an
incident card or row (its window and clusters are in the URL, so it is a link too)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from conflictlens.dashboard import figures_time, page
from conflictlens.dashboard.data import ask
from conflictlens.dashboard.incident_view import (
    clients,
    cluster_filter,
    matching_incident,
    requests_link_query,
    window,
)
from conflictlens.dashboard.incidents_data import began_after, card_numbers, card_title
from conflictlens.dashboard.state import go, link
from conflictlens.dashboard.tables import grid

view = page.start("Incident")
found = window()


def summary() -> None:
    if found is None or not view.clusters:
        st.info("Open an incident from the Overview or Hot spots: its window and clusters "
                "come with the link.")  # fmt: skip
        st.stop()
    start, end = found
    row = matching_incident(view, start, end)
    st.subheader(card_title(row) if row else f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC")
    if row:
        st.text(", ".join(row["endpoints"]) + " — " + ", ".join(row["error_codes"]))
        st.text(card_numbers(row))
        after = began_after(row)
        if after:
            st.text(after)
    link("explore", "Its requests in Explore", ":material/search:", **requests_link_query(view))


def series() -> None:
    timeline = ask("timeline", view.since, view.until, **view.filters)
    mine = timeline.filter(cluster_filter(view.clusters))
    if mine.height == 0:
        st.info("No conflicts of its clusters around the incident.")
        return
    st.markdown("**Its clusters around the window** (shaded)")
    figure = figures_time.conflicts_over_time(mine, "endpoint_code")
    assert found is not None
    bands = pl.DataFrame({"start": [found[0]], "end": [found[1]], "times_usual": [None]},
                         schema_overrides={"times_usual": pl.Float64})  # fmt: skip
    figures_time.add_incidents(figure, bands)
    st.plotly_chart(figure, key="incident_series")


def resources() -> None:
    assert found is not None
    since, until = (t.isoformat() for t in found)
    hot = ask("resources", since, until, **view.filters).filter(
        cluster_filter(view.clusters, code="top_error_code")
    )
    st.markdown("**Resources fought over in it** (click one for its requests)")
    if hot.height == 0:
        st.caption("No identified resources in its clusters.")
    else:
        columns = ["method", "route", "resource", "conflicts", "clients", "top_error_code"]
        picked = grid(hot, "incident_resources", columns=columns, clickable=True)
        if picked is not None:
            one = hot.row(picked, named=True)
            go("resources", method=one["method"], route=one["route"], since=since, until=until,
               cluster=None)  # fmt: skip
    st.markdown("**Clients with most conflicts in it**")
    grid(clients(view, found), "incident_clients")


def storms() -> None:
    assert found is not None
    since, until = (t.isoformat() for t in found)
    found_storms = ask("storms", since, until, **view.filters).filter(
        cluster_filter(view.clusters, code=None)
    )
    st.markdown("**Retry storms in it**")
    if found_storms.height == 0:
        st.caption("No retry storms on its routes.")
        return
    columns = ["client", "method", "route", "resource", "count", "start", "end"]
    picked = grid(found_storms, "incident_storms", columns=columns, clickable=True)
    if picked is not None:
        one = found_storms.row(picked, named=True)
        go("explore", client=one["client"], method=one["method"], route=one["route"],
           since=one["start"], until=one["end"] + figures_time.ONE_SECOND, cluster=None)  # fmt: skip


page.guarded(summary)
page.guarded(series)
page.guarded(resources)
page.guarded(storms)
