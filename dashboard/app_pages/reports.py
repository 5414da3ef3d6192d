"""Reports: the archived reports (open one, download its files) and "Generate now"."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import polars as pl
import streamlit as st

from conflictlens.dashboard import page
from conflictlens.dashboard.reports_data import (
    REPORT_FORMATS,
    archived_reports,
    generate_defaults,
    generate_report,
    last_day_with_data,
    media_type,
    period_requests,
    report_file,
    reports_directory,
)

LAST_DAY = "The last day with data"
PERIODS = {
    LAST_DAY: None,
    "A date": None,
    "Yesterday": "yesterday",
    "Last 24 hours": "last-24h",
    "Last 7 days": "last-7d",
}
TABLE = ("period", "created", "size", "formats", "deliveries", "summary")
VIEWER_HEIGHT = 800

st.title("Reports")
page.menu()


def generate() -> None:
    """First on the page, so the list below already holds what it made. A period without
    data is refused with a warning (an empty report helps nobody); the report made is the
    one the viewer below opens."""
    zone, formats = generate_defaults()
    last = last_day_with_data()
    with st.expander("Generate now"), st.form("generate"):
        choice = st.selectbox(
            "Period", list(PERIODS), key="gen_period",
            format_func=lambda p: f"{p} ({last})" if p == LAST_DAY and last else p,
        )  # fmt: skip
        day = st.date_input(
            "Date (for “A date”)", last or dt.date.today() - dt.timedelta(days=1), key="gen_day"
        )
        tz = st.text_input("Time zone", zone, key="gen_tz")
        wanted = st.multiselect("Formats", REPORT_FORMATS, list(formats), key="gen_formats")
        if not st.form_submit_button("Generate now"):
            return
        period = PERIODS[choice] or str(last if choice == LAST_DAY and last else day)
        label, requests = period_requests(period, tz.strip())
        if requests == 0:
            st.warning(f"No data from {label}: nothing was archived. Pick a period with data"
                       f"{f' (the newest is {last})' if last else ''}.")  # fmt: skip
            return
        with st.spinner("Building the report…"):
            entry = generate_report(period, tz.strip(), wanted)
    st.session_state["report"] = entry["id"]  # the viewer opens the report just made
    st.success(f"Report for {entry['period']['label']} archived ({entry['size']:,} bytes).")


def archive() -> None:
    reports = archived_reports()
    if not reports:
        st.info(
            f"No reports yet in {reports_directory()}: schedule them with a [reports.nightly] "
            "table in the config file, or use “Generate now” above."
        )
        return
    st.subheader("Archive")
    table = pl.DataFrame([{k: r[k] for k in TABLE} for r in reports])
    st.dataframe(table, hide_index=True, key="reports")
    labels = {r["id"]: f"{r['period']} (created {r['created']})" for r in reports}
    if st.session_state.get("report") not in labels:
        st.session_state.pop("report", None)
    chosen = st.selectbox("Report", list(labels), format_func=labels.__getitem__, key="report")
    show(next(r for r in reports if r["id"] == chosen))


def show(report: dict[str, Any]) -> None:
    files = report["files"]
    for column, f in zip(st.columns(len(files)), files, strict=True):
        column.download_button(
            f"Download {f['format']}",
            partial(report_file, f["name"]),  # read on the click: an HTML report is megabytes
            f["name"],
            media_type(f["format"]),
            key=f"download-{f['format']}",
            on_click="ignore",
        )
    view(files)


def view(files: list[dict[str, str]]) -> None:
    """The HTML report as it is (it escapes log content itself); other formats as text only,
    never rendered, since they carry log strings as they are."""
    by_format = {f["format"]: f["name"] for f in files}
    if "html" in by_format:
        st.iframe(report_file(by_format["html"]).decode("utf-8"), height=VIEWER_HEIGHT)
        return
    fmt = next(f for f in ("md", "json", "csv") if f in by_format)
    text = report_file(by_format[fmt]).decode("utf-8")
    language = {"md": "markdown", "json": "json", "csv": None}[fmt]
    st.code(text, language=language, wrap_lines=True, height=VIEWER_HEIGHT)


page.guarded(generate)
page.guarded(archive)
