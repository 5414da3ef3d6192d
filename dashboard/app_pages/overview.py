"""Overview: the headline numbers against the previous period, conflicts over time with the
ratio, active alerts and the top hot spots."""

from __future__ import annotations

import streamlit as st

from dashboard import figures, page
from dashboard.alerts_data import active_alerts
from dashboard.data import ask, drawn

view = page.start("Overview")


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
    by = st.selectbox("Stack by", ["error_code", "kind"], key="stack")
    stacked = drawn(
        figures.conflicts_over_time, "timeline", view.since, view.until, by, **view.filters
    )
    st.plotly_chart(stacked, key="stacked")


def alerts_now() -> None:
    st.subheader("Active alerts")
    active = active_alerts()
    if not active:
        st.caption("No alert is firing or pending.")
        return
    columns = ["state", "rule", "severity", "labels", "firing_since", "last_value"]
    rows = [{**{c: a.get(c) for c in columns}, "labels": _labels(a["labels"])} for a in active]
    st.dataframe(rows, hide_index=True, key="active")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def top_hot_spots() -> None:
    st.subheader("Top hot spots")
    spots = ask("hotspots", view.since, view.until, limit=10, **view.filters)
    if spots.height == 0:
        st.caption("No conflicts in this range.")
        return
    st.caption("Ranked by growth; Hot spots has them all, with their trends.")
    bars = drawn(
        figures.hot_spot_bars, "hotspots", view.since, view.until, limit=10, **view.filters
    )
    st.plotly_chart(bars, key="top")


page.live(lambda: page.guarded(headline))()
page.live(lambda: page.guarded(over_time))()
page.live(lambda: page.guarded(alerts_now))()
page.guarded(top_hot_spots)
