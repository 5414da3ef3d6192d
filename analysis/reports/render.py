"""One entry point for every output format of a report."""

from __future__ import annotations

from collections.abc import Callable

from analysis.reports.build import Report
from analysis.reports.render_csv import render_csv
from analysis.reports.render_html import render_html
from analysis.reports.render_json import render_json
from analysis.reports.render_md import render_md

RENDERERS: dict[str, Callable[[Report], str]] = {
    "html": render_html,
    "md": render_md,
    "json": render_json,
    "csv": render_csv,
}
FORMATS = tuple(RENDERERS)
EXTENSIONS = {"html": ".html", "md": ".md", "json": ".json", "csv": ".csv"}
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}


def render(report: Report, fmt: str) -> bytes:
    """The report in format ``fmt`` (html, md, json, csv) as UTF-8 bytes."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return renderer(report).encode("utf-8")
