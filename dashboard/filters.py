"""The filters every page shares, kept in the URL query so a view can be shared as a link.

Ranges are relative to the newest data in the store (for a live store that is now; for an
imported log it is where the log ends), or explicit ``since``/``until`` in the URL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from typing import Any

import polars as pl
import streamlit as st

from dashboard.data import ask

RANGES: dict[str, dt.timedelta | None] = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "all": None,
}
FILTER_KEYS = ("service", "method", "route", "code", "kind", "client")
ANY = "(any)"


@dataclass(frozen=True)
class View:
    """What the user is looking at: a range and the cluster filters."""

    since: str | None = None
    until: str | None = None
    range: str = "24h"
    service: str | None = None
    method: str | None = None
    route: str | None = None
    code: str | None = None
    kind: str | None = None
    client: str | None = None

    @property
    def filters(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in FILTER_KEYS}

    def span(self) -> dt.timedelta | None:
        if not self.since or not self.until:
            return None
        return dt.datetime.fromisoformat(self.until) - dt.datetime.fromisoformat(self.since)

    def previous(self) -> View:
        """The period of the same length just before this one."""
        span = self.span()
        if span is None or not self.since:
            return self
        start = dt.datetime.fromisoformat(self.since)
        return replace(self, since=(start - span).isoformat(), until=start.isoformat())


def data_end() -> dt.datetime | None:
    status = ask("store_status", None, None)
    if status.height == 0:
        return None
    values = [status["last_event"][0]]
    totals = ask("totals", None, None)
    if totals.height:
        values.append(totals["last_minute"][0])
    known = [v for v in values if v is not None]
    if not known:
        return None
    newest: dt.datetime = max(known)
    return (newest + dt.timedelta(minutes=1)).replace(second=0, microsecond=0, tzinfo=dt.UTC)


def view_from_url() -> View:
    """The view in the URL query (unknown or empty values ignored)."""
    params = st.query_params
    chosen = params.get("range", "24h")
    found = {k: params.get(k) or None for k in FILTER_KEYS}
    if params.get("since"):
        return View(since=params.get("since"), until=params.get("until"), range="custom", **found)
    end = data_end()
    span = RANGES.get(chosen, RANGES["24h"])
    if end is None:
        return View(range=chosen, **found)
    since = (end - span).isoformat() if span is not None else None
    return View(since=since, until=end.isoformat(), range=chosen, **found)


def sidebar() -> View:
    """Draw the shared filters in the sidebar and return the view they select."""
    view = view_from_url()
    with st.sidebar:
        st.caption("Range (UTC), relative to the newest data")
        choices = [*RANGES, "custom"] if view.range == "custom" else list(RANGES)
        picked = st.selectbox("Range", choices, index=choices.index(view.range), key="range")
        chosen = _cluster_filters(view)
    if picked != view.range:
        _to_url(View(range=picked, **chosen))
        st.rerun()
    wanted = replace(view, **chosen)
    if wanted != view:
        _to_url(wanted)
    return wanted


def _cluster_filters(view: View) -> dict[str, Any]:
    """The cluster filters, in a popover: Streamlit draws a popover's content only while it is
    open, and six widgets drawn on every page load cost 0.15 s (measured paired)."""
    # A pick made in the popover is in the session state already, not yet in the view.
    picked = (st.session_state.get(key, getattr(view, key)) for key in FILTER_KEYS)
    active = sum(1 for value in picked if value and value != ANY)
    options = _options(view)
    chosen: dict[str, Any] = {}
    label = f"Filters ({active} set)" if active else "Filters"
    with st.popover(label, width="stretch", key="filters"):
        for key, label in (
            ("service", "Service"),
            ("method", "Method"),
            ("route", "Route"),
            ("code", "Error code"),
            ("kind", "Kind"),
        ):
            values = [ANY, *options.get(key, [])]
            current = getattr(view, key)
            if current and current not in values:
                values.append(current)
            pick = st.selectbox(label, values, index=values.index(current or ANY), key=key)
            chosen[key] = None if pick == ANY else pick
        chosen["client"] = st.text_input("Client", value=view.client or "", key="client") or None
    return chosen


def _options(view: View) -> dict[str, list[str]]:
    """The values each filter can take in the range (from the clusters in it)."""
    clusters = ask("clusters", view.since, view.until)
    columns = {"service": "service", "method": "method", "route": "route", "code": "error_code"}
    found = {
        key: sorted(v for v in clusters[column].unique().to_list() if v)
        for key, column in {**columns, "kind": "kind"}.items()
        if column in clusters.columns
    }
    return found


def _to_url(view: View) -> None:
    """The view's fields in the URL query; the page's own parameters (a tab) stay."""
    fields = asdict(view)
    if view.range != "custom":
        fields["since"] = fields["until"] = None
    for key, value in fields.items():
        if value:
            st.query_params[key] = value
        elif key in st.query_params:
            del st.query_params[key]


def describe(view: View) -> str:
    """The view in one line of plain text (never Markdown: values come from logs)."""
    where = ", ".join(f"{k}={v}" for k, v in view.filters.items() if v)
    since = (view.since or "the start")[:16].replace("T", " ")
    until = (view.until or "now")[:16].replace("T", " ")
    return f"{since} to {until} UTC" + (f"; {where}" if where else "")


def empty(frame: pl.DataFrame) -> bool:
    return frame.height == 0
