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

from conflictlens.dashboard.data import ask
from conflictlens.dashboard.state import (
    SHARED,
    iso,
    mark_seen,
    parse_cluster,
    remember,
    restore,
    url_changed,
)

RANGES: dict[str, dt.timedelta | None] = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "all": None,
}
LATEST_INCIDENT = "latest incident"
CUSTOM = "custom"
RANGE_CHOICES = [*RANGES, LATEST_INCIDENT, CUSTOM]
RANGE_LABELS = {
    LATEST_INCIDENT: "around the latest incident",
    CUSTOM: "custom (pick below)",
    "all": "all data",
}
INCIDENT_MARGIN = dt.timedelta(hours=1)  # shown around the latest incident
INCIDENT_LOOKBACK = dt.timedelta(days=7)  # how far back "the latest incident" is looked for
FILTER_KEYS = ("service", "method", "route", "code", "kind", "client")
ANY = "(any)"
URL_KEYS = SHARED


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
    clusters: tuple[str, ...] = ()  # "METHOD route CODE" each (an incident's), or all

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
    found: dict[str, Any] = {k: params.get(k) or None for k in FILTER_KEYS}
    found["clusters"] = tuple(c for c in params.get_all("cluster") if parse_cluster(c))
    if params.get("since") or params.get("until"):
        since, until = _valid(params.get("since")), _valid(params.get("until"))
        return View(since=since, until=until, range=CUSTOM, **found)
    if chosen == LATEST_INCIDENT:
        window = latest_incident_window()
        if window is not None:
            return View(since=window[0], until=window[1], range=chosen, **found)
        chosen = "24h"
    end = data_end()
    span = RANGES.get(chosen, RANGES["24h"])
    if chosen not in RANGES:
        chosen = "24h"
    if end is None:
        return View(range=chosen, **found)
    since = (end - span).isoformat() if span is not None else None
    return View(since=since, until=end.isoformat(), range=chosen, **found)


def _valid(text: str | None) -> str | None:
    """An ISO time from the URL, or None when it is not one (a hand-edited link)."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


def latest_incident_window() -> tuple[str, str] | None:
    """The latest incident of the last week of data, widened by INCIDENT_MARGIN each side."""
    end = data_end()
    if end is None:
        return None
    found = ask("incidents", (end - INCIDENT_LOOKBACK).isoformat(), end.isoformat())
    if found.height == 0:
        return None
    latest = found.sort("start", descending=True).row(0, named=True)
    start = latest["start"].replace(tzinfo=None) - INCIDENT_MARGIN
    stop = min(latest["end"].replace(tzinfo=None) + INCIDENT_MARGIN, end.replace(tzinfo=None))
    return start.isoformat(), stop.isoformat()


def sidebar(page: str = "") -> View:
    """Draw the shared filters in the sidebar and return the view they select (``page``:
    the page drawing them; its widgets are new ones, set from the URL, on every switch)."""
    restore()
    view = view_from_url()
    switched = st.session_state.get("_widgets_page") != page
    st.session_state["_widgets_page"] = page
    if url_changed(URL_KEYS) or switched or "range" not in st.session_state:
        _widgets_from(view)
    with st.sidebar:
        st.caption("Range (times in UTC), relative to the newest data")
        picked = st.selectbox(
            "Range", RANGE_CHOICES, format_func=lambda r: RANGE_LABELS.get(r, r), key="range"
        )
        since, until = _custom_range(view) if picked == CUSTOM else (view.since, view.until)
        chosen = _cluster_filters(view)
    if picked != view.range and picked != CUSTOM:
        _to_url(View(range=picked, **chosen, clusters=view.clusters))
        st.rerun()
    if picked == CUSTOM:
        chosen.update(since=since, until=until, range=CUSTOM)
    wanted = replace(view, **chosen)
    if wanted != view:
        _to_url(wanted)
        if (wanted.since, wanted.until) != (view.since, view.until):
            st.rerun()
    remember()
    return wanted


def _widgets_from(view: View) -> None:
    """The sidebar's widgets set to the view in the URL (opened as a link, or Back)."""
    st.session_state["range"] = view.range if view.range in RANGE_CHOICES else "24h"
    for key in FILTER_KEYS:
        st.session_state[key] = getattr(view, key) or ("" if key == "client" else ANY)
    for key, value in (("since_at", view.since), ("until_at", view.until)):
        if value:
            st.session_state[key] = dt.datetime.fromisoformat(value).replace(tzinfo=None)


def _custom_range(view: View) -> tuple[str | None, str | None]:
    """Date and time pickers for a range of one's own (UTC, as every time on the pages)."""
    for key, value in (("since_at", view.since), ("until_at", view.until)):
        if key not in st.session_state or view.range != CUSTOM:
            st.session_state[key] = (
                dt.datetime.fromisoformat(value).replace(tzinfo=None) if value else None
            )
    since = st.datetime_input("From (UTC)", key="since_at", step=dt.timedelta(minutes=5))
    until = st.datetime_input("To (UTC)", key="until_at", step=dt.timedelta(minutes=5))
    if since and until and until <= since:
        st.warning("“To” is before “From”: the range is unchanged.")
        return view.since, view.until
    return (iso(since) if since else None, iso(until) if until else None)


def set_range(since: dt.datetime, until: dt.datetime) -> None:
    """A range chosen on a chart (a box drawn over it): into the URL, and the page again."""
    if until <= since:
        return
    st.query_params.update(range=CUSTOM, since=iso(since), until=iso(until))  # one history entry
    st.rerun()


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
        if view.clusters:
            st.caption(f"Also limited to {len(view.clusters)} cluster(s) of an incident.")
        for key, label in (
            ("service", "Service"),
            ("method", "Method"),
            ("route", "Route"),
            ("code", "Error code"),
            ("kind", "Kind"),
        ):
            values = [ANY, *options.get(key, [])]
            current = st.session_state.get(key) or getattr(view, key)
            if current and current not in values:
                values.append(current)
            if st.session_state.get(key) not in values:
                st.session_state[key] = ANY
            pick = st.selectbox(label, values, key=key)
            chosen[key] = None if pick == ANY else pick
        chosen["client"] = st.text_input("Client", key="client") or None
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
    fields["cluster"] = list(fields.pop("clusters"))
    if view.range != CUSTOM:
        fields["since"] = fields["until"] = None
    # Only what differs, in one change: each change of the URL is an entry in the browser's
    # history (Back would stop at a URL that holds some of the view).
    changed = {k: v for k, v in fields.items() if v and st.query_params.get_all(k) != _listed(v)}
    if changed:
        st.query_params.update(changed)
    for key in [k for k, v in fields.items() if not v and k in st.query_params]:
        del st.query_params[key]
    mark_seen(URL_KEYS)


def _listed(value: Any) -> list[str]:
    """A value as the URL query holds it: a list of strings."""
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def describe(view: View) -> str:
    """The view in one line of plain text (never Markdown: values come from logs)."""
    where = ", ".join(f"{k}={v}" for k, v in view.filters.items() if v)
    since = (view.since or "the start")[:16].replace("T", " ")
    until = (view.until or "now")[:16].replace("T", " ")
    clusters = f"; {len(view.clusters)} incident cluster(s)" if view.clusters else ""
    return f"{since} to {until} UTC" + (f"; {where}" if where else "") + clusters


def empty(frame: pl.DataFrame) -> bool:
    return frame.height == 0
