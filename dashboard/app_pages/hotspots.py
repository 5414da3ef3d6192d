"""Hot spots: a tab each for the route-by-time heatmap (conflicts, ratio or against the usual)
over the clusters ranked against their usual with their trend and what is new or growing (the
page's first view), the route → error code → kind treemap, and the incidents. A cell, a row
or an incident opens the next view on a click."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from conflictlens.dashboard import figures, figures_time, page
from conflictlens.dashboard.data import ask, drawn
from conflictlens.dashboard.hotspots_data import (
    KEYS,
    clicked_cell,
    incidents_table,
    ranked_table,
    usual_by_route,
)
from conflictlens.dashboard.incidents_data import incident_query, incident_rows
from conflictlens.dashboard.state import go
from conflictlens.dashboard.tables import grid

view = page.start("Hot spots")
METRICS = list(figures_time.HEAT_METRICS)


def chart(name: str, build: Callable[..., Any], key: str, heading: Callable[[], Any]) -> None:
    """Catalog query ``name``'s answer drawn by ``build`` under ``heading``, or one line
    saying there is nothing to draw."""
    if ask(name, view.since, view.until, **view.filters).height == 0:
        st.info("No conflicts in this range.")
        return
    heading()
    st.plotly_chart(drawn(build, name, view.since, view.until, **view.filters), key=key)


def heatmap() -> None:
    timeline = ask("timeline", view.since, view.until, **view.filters)
    if timeline.height == 0:
        st.info("No conflicts in this range.")
        return
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    left.subheader("Conflicts by route over time")
    metric = right.selectbox("Colour by", METRICS, key="heat", bind="query-params")
    # The ranking's own question (rank by growth is its default): one answer for both.
    usual = usual_by_route(ask("hotspots", view.since, view.until, sort="growth", **view.filters))
    figure = drawn(
        figures_time.heatmap_figure, "timeline", view.since, view.until, usual, metric,
        **view.filters,
    )  # fmt: skip
    st.caption("Click a cell for the resources of that route at that time.")
    event = st.plotly_chart(
        figure, key=f"heatmap-{view.since}-{view.until}", on_select="rerun",
        selection_mode="points",
    )  # fmt: skip
    cell = clicked_cell(event.selection.points if event is not None else [])
    if cell is not None:
        go("resources", **cell)


def ranked() -> None:
    # A selectbox, as in the sidebar: a segmented control loads a bundle of its own (0.09 s).
    sort = st.selectbox(
        "Rank by", ["growth", "volume", "ratio", "new"], key="sort", bind="query-params"
    )
    spots = ask("hotspots", view.since, view.until, sort=sort, **view.filters)
    if spots.height == 0:
        st.info("No conflicts in this range.")
        return
    timeline = ask("timeline", view.since, view.until, **view.filters)
    table = ranked_table(spots, figures.sparklines(timeline, KEYS))
    st.caption("\N{MULTIPLICATION SIGN} usual: the ratio against the cluster's usual ratio. Click a row for its "
               "resources.")  # fmt: skip
    picked = grid(
        table, "ranked", clickable=True,
        config={"trend": st.column_config.LineChartColumn("trend")},
    )  # fmt: skip
    # New and growing clusters are named in the ranking's status column (and ranked first by
    # "new"), not listed again in a table of their own: a second grid cost every visit ~0.2 s.
    if picked is not None:
        _to_resources(table.row(picked, named=True))


def _to_resources(row: dict[str, Any]) -> None:
    go("resources", method=row["method"], route=row["route"], code=row["error_code"])


def incidents() -> None:
    found = incident_rows(view)
    if not found:
        st.info("No incidents: no clusters rose above their baseline together in this range.")
        return
    st.caption("Click an incident for its own view.")
    picked = grid(incidents_table(found), "incidents", clickable=True)
    if picked is not None:
        go("incident", **incident_query(found[picked]))


def treemap() -> None:
    chart(
        "clusters",
        figures.cluster_treemap,
        "treemap",
        lambda: st.caption("Where the conflicts are: click an endpoint for its kinds."),
    )


def heatmap_and_ranking() -> None:
    # In the first tab, not above the tabs: the other tabs then open at the top of the screen,
    # and without a chart they repeat (measured paired: Treemap -0.14 s, Incidents -0.22 s).
    heatmap()
    ranked()


page.sections(
    {"Heatmap and ranking": heatmap_and_ranking, "Treemap": treemap, "Incidents": incidents}
)
