"""Explore: the matching conflict events, sorted and paged by the store, each event's stored
fields (and its raw log line, where it is kept) on a click, and their download."""

from __future__ import annotations

import io

import polars as pl
import streamlit as st

from conflictlens.dashboard import page
from conflictlens.dashboard.data import spreadsheet_csv
from conflictlens.dashboard.explore_data import (
    SHOWN,
    SORTS,
    event_page,
    event_total,
    everything,
    sortable,
)
from conflictlens.dashboard.tables import grid, readable

view = page.start("Explore")
PAGE_SIZE = 100
DOWNLOAD_LIMIT = 1_000_000


def events() -> None:
    if view.clusters:
        st.caption("The requests of an incident's clusters: " + "; ".join(view.clusters))
    total = event_total(view)
    if total == 0:
        st.info("No conflict events match.")
        return
    sort, descending = order()
    pages = max(1, -(-total // PAGE_SIZE))
    number = st.number_input(
        f"Page (of {pages:,}; {total:,} events)", 1, pages, 1, key="page", bind="query-params"
    )
    rows = event_page(view, (int(number) - 1) * PAGE_SIZE, PAGE_SIZE, sort, descending)
    st.caption("Click a row for all of its stored fields.")
    picked = grid(rows, "events", columns=SHOWN, clickable=True)
    if picked is not None and picked < rows.height:
        details(rows.row(picked, named=True))
    download(total)


def order() -> tuple[str, bool]:
    """The store's order of the events (the grid's own sorting would sort one page only)."""
    if not sortable():
        st.caption("Newest first.")
        return "ts", True
    left, right = st.columns([3, 2])
    sort = left.selectbox("Sort by", SORTS, key="sort_by", bind="query-params", format_func=_label)
    first = right.selectbox("Order", ["descending", "ascending"], key="order", bind="query-params")
    return sort, first == "descending"


def _label(column: str) -> str:
    return {"ts": "time", "latency_ms": "latency", "error_code": "error code"}.get(column, column)


def details(row: dict[str, object]) -> None:
    """One event's stored fields, and the log line it came from when the store keeps it."""
    st.subheader("The event")
    fields = readable(pl.DataFrame([row]))
    pairs = pl.DataFrame(
        {"field": fields.columns, "value": [str(v) for v in fields.row(0)]},
    )
    grid(pairs, "event_fields")
    raw = row.get("raw_line")
    if raw:
        st.caption("Raw log line")
        st.code(str(raw), language=None, wrap_lines=True)


def download(total: int) -> None:
    """Built only when asked: a download of every match can be large."""
    wanted = min(total, DOWNLOAD_LIMIT)
    if not st.button(f"Prepare a download of {wanted:,} events", key="prepare"):
        return
    found = everything(view, wanted)
    flat = found.with_columns(found["resource_ids"].list.join("/"))

    def parquet() -> bytes:
        out = io.BytesIO()
        found.write_parquet(out)
        return out.getvalue()

    # Deferred: a file is made only when this session clicks, not served to whoever learns
    # a URL from the page.
    left, right = st.columns(2)
    left.download_button(
        "CSV", lambda: spreadsheet_csv(flat), "conflicts.csv", "text/csv", key="csv"
    )
    right.download_button(
        "Parquet", parquet, "conflicts.parquet", "application/octet-stream", key="parquet"
    )


page.guarded(events)
