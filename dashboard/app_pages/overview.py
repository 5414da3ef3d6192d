"""Overview: the incidents in the range first (how bad against normal, which endpoints, the
deploy they began after), then the headline numbers against the previous period, conflicts
over time with the incidents shaded and deploys marked (drag a box over it to zoom the whole
view), active alerts and the top hot spots; every part opens the next view on a click."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import streamlit as st

from conflictlens.dashboard import figures, figures_time, page
from conflictlens.dashboard.alerts_data import active_alerts
from conflictlens.dashboard.data import ask, drawn
from conflictlens.dashboard.filters import set_range
from conflictlens.dashboard.incidents_data import (
    began_after,
    card_numbers,
    card_title,
    deploy_notes,
    incident_query,
    incident_rows,
    requests_query,
)
from conflictlens.dashboard.state import go, link
from conflictlens.dashboard.tables import grid

view = page.start("Overview")
CARDS = 4
# An alert's labels as the filters of the view it opens.
LABEL_FILTERS = {"method": "method", "route": "route", "code": "error_code", "service": "service",
                 "kind": "kind", "client": "client"}  # fmt: skip
STACK_BY = {"error_code": "error code", "endpoint": "endpoint", "kind": "kind"}


def incidents() -> None:
    found = incident_rows(view)
    if not found:
        st.caption("No incidents in this range: no clusters rose above their usual together.")
        return
    st.subheader(f"Incidents ({len(found)})")
    for row, column in zip(found[:CARDS], st.columns(min(len(found), 2) or 1) * CARDS,
                           strict=False):  # fmt: skip
        with column.container(border=True):
            card(row)
    if len(found) > CARDS:
        link("hotspots", f"All {len(found)} incidents", section="Incidents")


def card(row: dict[str, Any]) -> None:
    st.markdown(f"**{card_title(row)}**")
    st.text(", ".join(row["endpoints"]))
    st.text(", ".join(row["error_codes"]))
    st.text(card_numbers(row))
    after = began_after(row)
    if after:
        st.text(after)
    left, right = st.columns(2)
    with left:
        link("incident", "Open the incident", ":material/crisis_alert:", **incident_query(row))
    with right:
        link("explore", "Its requests", ":material/search:", **requests_query(row))


def headline() -> None:
    now = ask("totals", view.since, view.until, **view.filters).row(0, named=True)
    before = ask("totals", *_previous(), **view.filters).row(0, named=True)
    ratio = now["conflicts"] / now["requests"] if now["requests"] else None
    old_ratio = before["conflicts"] / before["requests"] if before["requests"] else None
    left, middle, right = st.columns(3)
    left.metric(
        "Conflicts",
        f"{now['conflicts']:,}",
        _delta(now["conflicts"], before["conflicts"]),
        delta_color="inverse",
    )
    middle.metric("Requests", f"{now['requests']:,}", _delta(now["requests"], before["requests"]))
    right.metric(
        "Conflict ratio",
        f"{ratio:.2%}" if ratio is not None else "-",
        f"{(ratio - old_ratio) * 100:+.2f} pt"
        if ratio is not None and old_ratio is not None
        else None,
        delta_color="inverse",
    )


def _previous() -> tuple[str | None, str | None]:
    before = view.previous()
    return before.since, before.until


def _delta(now: int, before: int) -> str | None:
    if not before:
        return None
    return f"{(now - before) / before:+.1%} vs previous period"


def over_time() -> None:
    timeline = ask("timeline", view.since, view.until, **view.filters)
    if timeline.height == 0:
        st.info("No conflicts in this range.")
        return
    # A selectbox, as in the sidebar: a segmented control loads a bundle of its own.
    by = st.selectbox(
        "Stack by", list(STACK_BY), format_func=STACK_BY.__getitem__, key="stack",
        bind="query-params",
    )  # fmt: skip
    bands = tuple((r["start"], r["end"], r["times_usual"]) for r in incident_rows(view))
    notes = deploy_notes(view.since, view.until, view.service)
    marks = tuple((r["at"], str(r["text"])) for r in notes.iter_rows(named=True))
    stacked = drawn(
        figures_time.overview_chart, "timeline", view.since, view.until, by, bands, marks,
        **view.filters,
    )  # fmt: skip
    st.caption("Drag across the chart to zoom the whole view to that time.")
    event = st.plotly_chart(
        stacked, key=f"stacked-{view.since}-{view.until}", on_select="rerun",
        selection_mode=("box",),
    )  # fmt: skip
    boxes = event.selection.box if event is not None else []
    if boxes and len(boxes[0].get("x", [])) == 2:
        low, high = sorted(_moment(x) for x in boxes[0]["x"])
        set_range(low, high)


def _moment(value: Any) -> dt.datetime:
    """A time from a chart's selection: Plotly writes dates as "2026-11-19 15:35:12.5"."""
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value).replace(" ", "T")).replace(tzinfo=None)


def alerts_now() -> None:
    st.subheader("Active alerts")
    active = active_alerts()
    if not active:
        st.caption("No alert is firing or pending.")
        return
    columns = ["state", "rule", "severity", "labels", "firing_since", "last_value"]
    rows = [{**{c: a.get(c) for c in columns}, "labels": _labels(a["labels"])} for a in active]
    picked = grid(pl.DataFrame(rows), "active", clickable=True)
    if picked is not None:
        labels = active[picked]["labels"]
        go("hotspots", **{k: labels.get(f) for k, f in LABEL_FILTERS.items() if labels.get(f)})


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def top_hot_spots() -> None:
    st.subheader("Top hot spots")
    spots = ask("hotspots", view.since, view.until, limit=10, **view.filters)
    if spots.height == 0:
        st.caption("No conflicts in this range.")
        return
    st.caption("Ranked by growth against their usual; click one for its hot spots.")
    bars = drawn(
        figures.hot_spot_bars, "hotspots", view.since, view.until, limit=10, **view.filters
    )
    event = st.plotly_chart(
        bars, key=f"top-{view.since}-{view.until}", on_select="rerun", selection_mode="points"
    )
    points = event.selection.point_indices if event is not None else []
    if points and points[0] < spots.height:
        one = spots.row(points[0], named=True)
        go("hotspots", method=one["method"], route=one["route"], code=one["error_code"])


page.guarded(incidents)
page.live(lambda: page.guarded(headline))()
page.live(lambda: page.guarded(over_time))()
page.live(lambda: page.guarded(alerts_now))()
page.guarded(top_hot_spots)
