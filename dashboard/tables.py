"""Tables as people read them: no internal columns, no "None" cells, numbers with thousands
separators, times with their zone, ratios as percentages, the key columns pinned on the left
(they stay in sight however far a phone scrolls the table), and a click on a row reported.

Every table of the dashboard goes through ``grid``; the column settings come from the column's
name and type, so a page only says which columns it shows, in which order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import streamlit as st

# Columns that serve the store, not the reader.
INTERNAL = {
    "source_id",
    "offset",
    "rank_in_route",
    "baseline_mad",
    "baseline_method",
    "sparse",
    "span_ms",
    "fingerprint",
    "bucket_seconds",
    "raw_line",
    "incident",
    "annotation_at",
}
PERCENT = {"ratio", "peak_ratio", "usual_ratio", "baseline_ratio", "share", "conflict_ratio"}
KEYS = {"method", "route", "error_code", "top_error_code", "resource", "client", "rule", "when"}
LABELS = {
    "ts": "time",
    "error_code": "error code",
    "top_error_code": "top error code",
    "peak_ratio": "peak ratio",
    "usual_ratio": "usual ratio",
    "baseline_ratio": "usual ratio",
    "times_usual": "\N{MULTIPLICATION SIGN} usual",
    "latency_ms": "latency",
    "median_interval_ms": "median gap",
    "resolution_ms": "clock step",
    "max_overlap": "most in flight",
    "peak_conflicts": "peak conflicts",
    "user_agent": "user agent",
    "request_id": "request id",
    "resource_ids": "resources",
}
MISSING = "\N{EN DASH}"
ROW_HEIGHT = 35
MAX_HEIGHT = 420  # a taller table scrolls inside itself, so a phone's page stays short


def readable(frame: pl.DataFrame) -> pl.DataFrame:
    """Internal columns and columns without any value dropped, lists as text, text gaps as a
    dash (numbers and times stay typed: their gaps show empty)."""
    keep = [c for c in frame.columns if c not in INTERNAL and frame[c].null_count() < frame.height]
    frame = (
        frame.select(keep)
        if frame.height
        else frame.select([c for c in frame.columns if c not in INTERNAL])
    )
    fixes: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List):
            fixes.append(pl.col(name).cast(pl.List(pl.String)).list.join(", ").fill_null(MISSING))
        elif dtype == pl.String:
            fixes.append(pl.col(name).fill_null(MISSING))
        elif dtype == pl.Boolean:
            fixes.append(pl.col(name).fill_null(False))
    return frame.with_columns(fixes) if fixes else frame


def column_config(frame: pl.DataFrame) -> dict[str, Any]:
    """Each column's settings from its name and type."""
    config: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        label = LABELS.get(name, name.replace("_", " "))
        pinned = name in KEYS
        if name in PERCENT:
            config[name] = st.column_config.NumberColumn(label, format="percent", pinned=pinned)
        elif name.endswith("_ms"):
            config[name] = st.column_config.NumberColumn(label, format="%.0f ms")
        elif name == "times_usual":
            config[name] = st.column_config.NumberColumn(
                label, format="\N{MULTIPLICATION SIGN}%.1f"
            )
        elif name == "score":
            config[name] = st.column_config.NumberColumn(label, format="%.1f")
        elif dtype.is_integer():
            config[name] = st.column_config.NumberColumn(label, format="localized")
        elif dtype.is_float():
            config[name] = st.column_config.NumberColumn(label, format="%.2f")
        elif isinstance(dtype, pl.Datetime):
            config[name] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss[Z]")
        else:
            config[name] = st.column_config.Column(label, pinned=pinned)
    return config


def grid(
    frame: pl.DataFrame,
    key: str,
    *,
    columns: Sequence[str] | None = None,
    config: dict[str, Any] | None = None,
    clickable: bool = False,
) -> int | None:
    """``frame`` drawn readable (``columns`` first, in that order, when given); with
    ``clickable`` the index of the row clicked, else None."""
    if columns is not None:
        frame = frame.select([c for c in columns if c in frame.columns])
    shown = readable(frame)
    settings = {**column_config(shown), **(config or {})}
    height = min(MAX_HEIGHT, ROW_HEIGHT * (shown.height + 1) + 3)
    if not clickable:
        st.dataframe(
            shown, hide_index=True, column_config=settings, key=key, height=height, width="stretch"
        )
        return None
    event = st.dataframe(
        shown,
        hide_index=True,
        column_config=settings,
        key=key,
        height=height,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows if event is not None else []
    return int(rows[0]) if rows else None
