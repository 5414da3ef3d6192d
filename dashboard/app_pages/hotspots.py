"""Hot spots: a tab each for the route-by-time heatmap over the ranked clusters with their
trend and what is new or growing (the page's first view), the route → error code → kind
treemap (two levels at a time), and the incidents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from dashboard import figures, page
from dashboard.data import ask, drawn

view = page.start("Hot spots")
KEYS = ["service", "method", "route", "error_code", "kind"]
GROWING = 3  # score: spreads above the baseline


def chart(name: str, build: Callable[..., Any], key: str, heading: Callable[[], Any]) -> None:
    """Catalog query ``name``'s answer drawn by ``build`` under ``heading``, or one line
    saying there is nothing to draw."""
    if ask(name, view.since, view.until, **view.filters).height == 0:
        st.info("No conflicts in this range.")
        return
    heading()
    st.plotly_chart(drawn(build, name, view.since, view.until, **view.filters), key=key)


def heatmap() -> None:
    chart(
        "timeline",
        figures.route_heatmap,
        "heatmap",
        lambda: st.subheader("Conflicts by route over time"),
    )


def ranked() -> None:
    # A selectbox, as in the sidebar: a segmented control loads a bundle of its own (0.09 s).
    sort = st.selectbox("Rank by", ["growth", "volume", "ratio", "new"], key="sort")
    spots = ask("hotspots", view.since, view.until, sort=sort, **view.filters)
    if spots.height == 0:
        st.info("No conflicts in this range.")
        return
    timeline = ask("timeline", view.since, view.until, **view.filters)
    trends = figures.sparklines(timeline, KEYS)
    table = spots.join(trends, on=KEYS, how="left", nulls_equal=True)
    st.dataframe(
        table.select(
            "method",
            "route",
            "error_code",
            "kind",
            "trend",
            "conflicts",
            "requests",
            "ratio",
            "baseline",
            "score",
            "new",
        ),
        hide_index=True,
        column_config={
            "trend": st.column_config.LineChartColumn("trend"),
            "ratio": st.column_config.NumberColumn(format="percent"),
            "score": st.column_config.NumberColumn(format="%.1f"),
        },
        key="ranked",
    )
    st.markdown(f"**New and growing clusters** (growing: score ≥ {GROWING})")
    st.dataframe(
        spots.filter(pl.col("new") | (pl.col("score").fill_null(0) >= GROWING))
        .with_columns(why=pl.when(pl.col("new")).then(pl.lit("new")).otherwise(pl.lit("growing")))
        .select("why", "method", "route", "error_code", "conflicts", "score"),
        hide_index=True,
        key="changed",
    )


def incidents() -> None:
    found = ask("incidents", view.since, view.until, **view.filters)
    if found.height == 0:
        st.info("No incidents: no clusters rose above their baseline together in this range.")
        return
    st.dataframe(
        found.with_columns(
            clusters=pl.col("clusters").list.eval(
                pl.concat_str(
                    [
                        pl.element().struct.field("method"),
                        pl.element().struct.field("route"),
                        pl.element().struct.field("error_code").fill_null("-"),
                    ],
                    separator=" ",
                )
            )
        ).select("start", "end", "conflicts", "peak_ratio", "clusters"),
        hide_index=True,
        column_config={"peak_ratio": st.column_config.NumberColumn(format="percent")},
        key="incidents",
    )


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
