"""Explore: the matching conflict events, a page at a time, and their download."""

from __future__ import annotations

import io

import streamlit as st

from dashboard import page
from dashboard.data import ask, spreadsheet_csv

view = page.start("Explore")
PAGE_SIZE = 100
DOWNLOAD_LIMIT = 1_000_000


def events() -> None:
    total = int(ask("event_count", view.since, view.until, **view.filters)["events"][0])
    if total == 0:
        st.info("No conflict events match.")
        return
    pages = max(1, -(-total // PAGE_SIZE))
    number = st.number_input(f"Page (of {pages:,}; {total:,} events)", 1, pages, 1, key="page")
    rows = ask(
        "events",
        view.since,
        view.until,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
        **view.filters,
    )
    st.dataframe(rows, hide_index=True, key="events")
    download(total)


def download(total: int) -> None:
    """Built only when asked: a download of every match can be large."""
    wanted = min(total, DOWNLOAD_LIMIT)
    if not st.button(f"Prepare a download of {wanted:,} events", key="prepare"):
        return
    everything = ask("events", view.since, view.until, limit=wanted, **view.filters)
    flat = everything.with_columns(everything["resource_ids"].list.join("/"))

    def parquet() -> bytes:
        out = io.BytesIO()
        everything.write_parquet(out)
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
