"""Ingest: the sources with their lag and rate, and rejected lines with reasons and samples."""

from __future__ import annotations

import polars as pl
import streamlit as st

from conflictlens.dashboard import page
from conflictlens.dashboard.data import ask, serve_status
from conflictlens.dashboard.tables import grid

view = page.start("Ingest")


def sources() -> None:
    st.subheader("Sources")
    known = ask("sources", None, None)
    status = serve_status()
    if status is not None:
        live = pl.DataFrame(status.get("following") or [], infer_schema_length=None)
        if "path" in live.columns:
            wanted = [
                c
                for c in ("path", "lag_bytes", "lag_seconds", "lines_per_second", "state")
                if c in live.columns
            ]
            known = known.join(live.select(wanted), on="path", how="left")
        st.caption("Following live through serve.")
    else:
        st.caption("serve is not running: these are the imports so far.")
    grid(known, "sources")


def rejects() -> None:
    st.subheader("Rejected lines")
    found = ask("rejects", None, None)
    if found.height == 0:
        st.info("No rejected lines.")
        return
    grid(found, "rejects")


page.live(lambda: page.guarded(sources))()
page.guarded(rejects)
