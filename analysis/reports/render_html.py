"""The report as one self-contained HTML file: opens offline, prints well, runs no log content.

* Self-contained: plotly.js is embedded inline (the text ``include_plotlyjs=True`` would
  embed), styles are inline, fonts are the system's; the page loads nothing at all.
* Safe to open: the page is a Jinja2 template with autoescape on (templates/report.html.j2),
  so every log-derived string reaches it as text. Chart labels are escaped too (Plotly
  renders a subset of HTML in labels and hover text, and decodes entities only into text
  nodes). Figure JSON has ``<`` ``>`` ``&`` escaped, so no
  string can close its script element. On top, a Content-Security-Policy allows only the
  page's own scripts by hash: an injected ``<script>`` or ``onerror=`` would not run even if
  escaping were ever missed.
* Prints well: print CSS (A4 margins, no page breaks inside tables or charts, no mode bar),
  and the charts are redrawn at the printable width before printing.

``charts=False`` gives the e-mail body: the same tables, no script at all.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.util
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2

from conflictlens._templates import package_template
from conflictlens.analysis.reports import text as fmt
from conflictlens.analysis.reports.build import Report
from conflictlens.analysis.reports.sections import SECTIONS, TOP, Table, cell, ingest_tables

# Redraw the charts at the printable width for print, and back to the window's width after: a
# file beside the templates, put in the page as it is and hashed for the CSP.
PRINT_JS = (
    resources.files("conflictlens.analysis.reports")
    .joinpath("templates", "print.js")
    .read_text("utf-8")
)


def _page() -> jinja2.Template:
    return package_template("conflictlens.analysis.reports", "report.html.j2")


# plotly.js offers "share to Plotly Cloud" by default (an upload of the data): a report opened
# offline and full of internal routes offers nothing of the kind. No MathJax either.
PLOT_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "plotlyServerURL": "",
    "typesetMath": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "sendDataToCloud"],
}


def plotly_text(value: str) -> str:
    """Text for a Plotly label or hover text: Plotly reads a few HTML tags in them and decodes
    only &amp; &lt; &gt; (and numeric) entities back into plain text, so escaping those three
    keeps every tag out and still shows the text as it is (quotes need no escape here)."""
    return html.escape(value, quote=False)


def script_json(value: Any) -> str:
    """JSON that can sit inside a <script> element: no ``<``, ``>`` or ``&`` (so no
    ``</script>`` or ``<!--``), and no line separators that old parsers treat as newlines."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def render_html(report: Report, *, charts: bool = True, link: str | None = None) -> str:
    """The whole page; with ``charts=False`` the e-mail body (tables only, no script).
    ``link`` (http, https or file URLs only) is shown at the top: where the full report is."""
    figures: dict[str, dict[str, Any]] = {}
    scripts: list[str] = []
    # plotly comes with the [dashboard] extra: a core install's page has the tables alone.
    without_plotly = charts and importlib.util.find_spec("plotly") is None
    charts = charts and not without_plotly
    if charts:
        import plotly.offline

        figures = {"chart-trend": trend_figure(report), "chart-clusters": clusters_figure(report)}
        scripts = [plotly.offline.get_plotlyjs(), _draw_script(figures), PRINT_JS]
    # The hashes are of the very strings the template puts between <script> and </script>.
    policy = (
        "default-src 'none'; "
        f"script-src {' '.join(csp_hash(s) for s in scripts) or 'none'}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return _page().render(
        policy=policy,
        title=f"conflictlens report · {report['period']['label']}",
        scripts=scripts,
        charts=charts,
        without_plotly=without_plotly,
        link=link if _is_shown_link(link) else None,
        bucket=_bucket_text(report),
        **page_view(report),
    )


# --- charts ----------------------------------------------------------------------------------


def trend_figure(report: Report) -> dict[str, Any]:
    """Ratio per bucket (line), conflicts per bucket (bars, right axis), and last week's ratio
    at the same offsets (dotted). Only numbers and times: no log content."""
    tz = report["period"]["timezone"]
    points = report["trend"]["points"]
    x = [fmt.local_time(p["bucket"], tz, "%Y-%m-%d %H:%M") for p in points]
    week = report["trend"]["week_before"][: len(points)]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "conflicts",
            "x": x,
            "y": [p["conflicts"] for p in points],
            "yaxis": "y2",
            "marker": {"color": "rgba(47,91,211,0.22)"},
            "hovertemplate": "%{x}<br>%{y:,} conflicts<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "ratio",
            "x": x,
            "y": [p["ratio"] for p in points],
            "line": {"color": "#b3261e", "width": 2},
            "hovertemplate": "%{x}<br>ratio %{y:.2%}<extra></extra>",
        },
    ]
    if week:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "a week before",
                "x": x[: len(week)],
                "y": [p["ratio"] for p in week],
                "line": {"color": "#5b6475", "width": 1.5, "dash": "dot"},
                "hovertemplate": "a week before<br>ratio %{y:.2%}<extra></extra>",
            }
        )
    layout = {
        **_base_layout(),
        "yaxis": {"title": {"text": "conflict ratio"}, "tickformat": ".1%", "rangemode": "tozero"},
        "yaxis2": {
            "title": {"text": "conflicts"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        "xaxis": {"type": "date"},
        "legend": {"orientation": "h", "y": 1.12},
    }
    return {"data": data, "layout": layout}


def clusters_figure(report: Report, top: int = 10) -> dict[str, Any]:
    """The busiest clusters as horizontal bars. Labels are log-derived: escaped, numbered
    (so equal names never merge), and shortened; hover shows the escaped full name."""
    rows = report["top_clusters"][:top]
    labels = [f"{i}. {plotly_text(fmt.cluster_name(r, 60))}" for i, r in enumerate(rows, 1)]
    names = [plotly_text(fmt.cluster_name(r, 300)) for r in rows]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": [r["conflicts"] for r in rows],
            "y": labels,
            "text": names,
            "textposition": "none",
            "customdata": [fmt.ratio(r["ratio"]) for r in rows],
            "hovertemplate": "%{text}<br>%{x:,} conflicts, ratio %{customdata}<extra></extra>",
            "marker": {"color": "#2f5bd3"},
        }
    ]
    layout = {
        **_base_layout(),
        "margin": {"l": 360, "r": 20, "t": 10, "b": 40},
        "yaxis": {"autorange": "reversed", "automargin": True},
        "xaxis": {"title": {"text": "conflicts"}},
        "showlegend": False,
    }
    return {"data": data, "layout": layout}


def _base_layout() -> dict[str, Any]:
    return {
        "template": "plotly_white",
        "margin": {"l": 60, "r": 60, "t": 30, "b": 40},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif"},
        "hoverlabel": {"align": "left"},
    }


def _draw_script(figures: Mapping[str, Mapping[str, Any]]) -> str:
    import plotly.io

    # Through plotly.io for validation and the template's expansion; then our escaping.
    expanded = {
        key: json.loads(plotly.io.to_json(dict(figure), validate=True))
        for key, figure in figures.items()
    }
    return (
        "(function () {\n"
        f"  var figures = {script_json(expanded)};\n"
        f"  var config = {script_json(PLOT_CONFIG)};\n"
        "  Object.keys(figures).forEach(function (id) {\n"
        "    var el = document.getElementById(id);\n"
        "    if (el) { Plotly.newPlot(el, figures[id].data, figures[id].layout, config); }\n"
        "  });\n"
        "})();\n"
    )


def _bucket_text(report: Report) -> str:
    seconds = report["trend"].get("bucket_seconds") or 0
    if seconds % 3600 == 0 and seconds:
        hours = seconds // 3600
        return "1-hour" if hours == 1 else f"{hours}-hour"
    return f"{seconds // 60}-minute"


# --- what the template shows: plain text, escaped by the template -----------------------------


def page_view(report: Report) -> dict[str, Any]:
    period = report["period"]
    tz = period["timezone"]
    previous = report["previous"]
    return {
        "period": {
            "label": period["label"],
            "from": fmt.local_time(period["from"], tz),
            "to": fmt.local_time(period["to"], tz),
            "tz": tz,
        },
        "generated": fmt.local_time(report["generated"], tz),
        "previous": {
            "from": fmt.local_time(previous["from"], tz),
            "to": fmt.local_time(previous["to"], tz),
        },
        "cards": _cards(report),
        "top": _table(report, TOP),
        "sections": [_table(report, table) for table in SECTIONS],
        "ingest": [_table(report, table) for table in ingest_tables(report)],
    }


def _is_shown_link(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("https://", "http://", "file://"))


def _change(value: Any, bad_when_up: bool | None) -> dict[str, str | None]:
    """A change's text, and its tone (``bad``/``good``) when it is big enough to have one."""
    change: dict[str, str | None] = {"text": fmt.change(value), "direction": None, "tone": None}
    if isinstance(value, int | float) and abs(value) >= 0.0005 and bad_when_up is not None:
        change["direction"] = "up" if value > 0 else "down"
        change["tone"] = "bad" if bad_when_up else "good"
    return change


def _cards(report: Report) -> list[dict[str, Any]]:
    changes = report["changes"]
    return [
        {
            "label": label,
            "value": show(report[key]),
            "previous": show(report["previous"][key]),
            "previous_change": _change(changes["previous"][key], bad_when_up),
            "week_before": show(report["week_before"][key]),
            "week_before_change": _change(changes["week_before"][key], bad_when_up),
        }
        for key, label, show, bad_when_up in (
            ("conflicts", "Conflicts", fmt.count, True),
            ("requests", "Requests", fmt.count, None),
            ("ratio", "Conflict ratio", fmt.ratio, True),
        )
    ]


def _table(report: Report, table: Table) -> dict[str, Any]:
    tz = report["period"]["timezone"]
    columns = table.columns
    return {
        "title": table.title,
        "empty": table.empty,
        "numbered": table.numbered,
        "headers": [(header, cls) for _, header, _, cls in columns],
        "rows": [
            [(cell(kind, row.get(key), tz), cls) for key, _, kind, cls in columns]
            for row in table.rows(report)
        ],
    }
