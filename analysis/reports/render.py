"""One entry point for every output format of a report, and the one list of those formats:
RENDERERS. Help texts, config validation, file names, media types and attachments all read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conflictlens.analysis.reports.build import Report
from conflictlens.analysis.reports.render_csv import render_csv
from conflictlens.analysis.reports.render_html import render_html
from conflictlens.analysis.reports.render_json import render_json
from conflictlens.analysis.reports.render_md import render_md


@dataclass(frozen=True)
class Renderer:
    render: Callable[[Report], str]
    media_type: str
    suffixes: tuple[str, ...]  # file names that mean this format; the first is the one written
    note: str = ""  # what a help text says about the format, beyond its name


RENDERERS: dict[str, Renderer] = {
    "html": Renderer(
        render_html,
        "text/html; charset=utf-8",
        (".html", ".htm"),
        "one self-contained file with charts",
    ),
    "md": Renderer(render_md, "text/markdown; charset=utf-8", (".md",)),
    "json": Renderer(render_json, "application/json", (".json",)),
    "csv": Renderer(render_csv, "text/csv; charset=utf-8", (".csv",)),
}
FORMATS = tuple(RENDERERS)
EXTENSIONS = {fmt: renderer.suffixes[0] for fmt, renderer in RENDERERS.items()}
MEDIA_TYPES = {fmt: renderer.media_type for fmt, renderer in RENDERERS.items()}
SUFFIXES = {suffix: fmt for fmt, renderer in RENDERERS.items() for suffix in renderer.suffixes}


def formats_text() -> str:
    """The formats for a help text: ``html (one self-contained file with charts), md, json or
    csv``."""
    names = [f"{fmt} ({r.note})" if r.note else fmt for fmt, r in RENDERERS.items()]
    return f"{', '.join(names[:-1])} or {names[-1]}"


def render(report: Report, fmt: str) -> bytes:
    """The report in format ``fmt`` (one of FORMATS) as UTF-8 bytes."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return renderer.render(report).encode("utf-8")
