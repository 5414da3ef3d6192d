"""The investigation's state in the URL, and the way from one view to the next.

Everything a view shows is chosen by its URL query (range, filters, every view control), so a
view is a link, a reload keeps it and the Back button returns to it. Two things would lose it:
the sidebar's navigation (Streamlit clears the query on a page switch) and widgets whose
session state outlives the URL they came from. So the shared part of the query is remembered
per session and put back when a page is opened without one, and the widgets are set from the
URL whenever the URL changed behind their back (a link, Back, a click-through).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import streamlit as st

PAGES = Path(__file__).parent / "app_pages"
# Carried from page to page: the range and the filters. A page's own controls (its tab, the
# rank-by, Explore's page) are bound widgets (``bind="query-params"``), kept by the URL itself.
SHARED = (
    "range",
    "since",
    "until",
    "service",
    "method",
    "route",
    "code",
    "kind",
    "client",
    "cluster",
)
# The menu: each page's file name, title and icon, in order (the first opens at "/").
MENU = (
    ("overview", "Overview", ":material/dashboard:"),
    ("hotspots", "Hot spots", ":material/local_fire_department:"),
    ("resources", "Resources", ":material/description:"),
    ("explore", "Explore", ":material/search:"),
    ("alerts", "Alerts", ":material/notifications_active:"),
    ("reports", "Reports", ":material/summarize:"),
    ("ingest", "Ingest", ":material/input:"),
)
MEMORY = "_shared_query"
SEEN = "_seen_query"


def page_path(name: str) -> Path:
    return PAGES / f"{name}.py"


def shared_query() -> dict[str, list[str]]:
    """The shared keys of the URL query as it is now (every value of a repeated key)."""
    return {key: st.query_params.get_all(key) for key in SHARED if st.query_params.get_all(key)}


def restore() -> None:
    """Put the remembered shared query back when the page was opened without one (the
    sidebar's navigation drops it); otherwise remember the query the page was opened with."""
    now = shared_query()
    remembered: dict[str, list[str]] = st.session_state.get(MEMORY, {})
    if not now and remembered:
        # In one change of the URL: each change is an entry in the browser's history, and
        # Back would stop at a URL holding only some of the filters.
        st.query_params.update(
            {
                k: v if len(v) > 1 else v[0]
                for k, v in remembered.items()
                if k not in st.query_params
            }
        )
        now = shared_query()
    st.session_state[MEMORY] = now


def remember() -> None:
    """Keep the shared query as the page left it (after its widgets wrote theirs)."""
    st.session_state[MEMORY] = shared_query()


def url_changed(keys: Iterable[str]) -> bool:
    """Whether the URL's values of ``keys`` differ from those the widgets last showed: then
    the URL wins (a link was opened, or Back pressed), and the widgets are set from it."""
    now = {key: st.query_params.get_all(key) for key in keys}
    changed = st.session_state.get(SEEN) != now
    st.session_state[SEEN] = now
    return changed


def mark_seen(keys: Iterable[str]) -> None:
    st.session_state[SEEN] = {key: st.query_params.get_all(key) for key in keys}


def target(changes: Mapping[str, Any], *, keep: bool = True) -> dict[str, str | list[str]]:
    """The query of the next view: the shared query now (unless ``keep`` is false) with
    ``changes`` (None drops a key; a list repeats it)."""
    query: dict[str, str | list[str]] = {}
    if keep:
        # (a page without the filters, as Reports, passes on the ones remembered)
        for key, values in (shared_query() or st.session_state.get(MEMORY, {})).items():
            query[key] = values if len(values) > 1 else values[0]
    for key, value in changes.items():
        if value is None or value == [] or value == "":
            query.pop(key, None)
        elif isinstance(value, list | tuple):
            query[key] = [str(v) for v in value]
        else:
            query[key] = iso(value) if isinstance(value, dt.datetime) else str(value)
    if "since" in query or "until" in query:
        query["range"] = "custom"
    return query


def go(page: str, **changes: Any) -> None:
    """Open ``page`` with the shared query and ``changes`` (the click-through)."""
    query = target(changes)
    st.session_state[MEMORY] = {
        k: v if isinstance(v, list) else [v] for k, v in query.items() if k in SHARED
    }
    st.switch_page(page_path(page), query_params=query)


def link(page: str, label: str, icon: str | None = None, **changes: Any) -> None:
    """A link to ``page`` with the shared query and ``changes``."""
    st.page_link(page_path(page), label=label, icon=icon, query_params=target(changes))


def iso(moment: dt.datetime) -> str:
    """A time as the URL carries it: UTC, to the second, no zone suffix."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def cluster_param(method: str | None, route: str | None, code: str | None) -> str:
    """One cluster in the URL: ``METHOD route CODE`` (routes hold no spaces; '-' for none)."""
    return " ".join(part or "-" for part in (method, route, code))


def parse_cluster(text: str) -> tuple[str | None, str | None, str | None] | None:
    parts = text.split(" ")
    if len(parts) != 3:
        return None
    method, route, code = (None if p == "-" else p for p in parts)
    return method, route, code
