"""The report as one self-contained HTML file: opens offline, prints well, runs no log content.

* Self-contained: plotly.js is embedded inline (the text ``include_plotlyjs=True`` would
  embed), styles are inline, fonts are the system's; the page loads nothing at all.
* Safe to open: every log-derived string is ``html.escape``d before it reaches the page, and
  chart labels are escaped too (Plotly renders a subset of HTML in labels and hover text, and
  decodes entities only into text nodes). Figure JSON has ``<`` ``>`` ``&`` escaped, so no
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
import json
from collections.abc import Mapping
from typing import Any

from analysis.reports import text as fmt
from analysis.reports.build import Report
from analysis.reports.sections import SECTIONS, TOP, Table, cell, ingest_tables

CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #dfe3ea;
  --bad: #b3261e; --good: #1b6e3a; --accent: #2f5bd3; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1080px; padding: 24px 28px 48px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
.meta, .note, .empty { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 600; margin: 2px 0 4px; }
.card .delta { font-size: 12px; color: var(--muted); }
.up.bad, .down.good { color: var(--bad); } .down.bad, .up.good { color: var(--good); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: break-word; word-break: break-word; }
td.time { white-space: nowrap; }
.wide { overflow-x: auto; }
.chart { width: 100%; height: 320px; }
.chart.tall { height: 380px; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; }
  section, table, tr, .chart, .cards { break-inside: avoid; }
  .modebar, .modebar-container { display: none !important; }
  .chart { height: 260px; }
  .wide { overflow: visible; }
  td.code { word-break: break-all; }
  a { color: inherit; text-decoration: none; }
}
"""

# Redraw the charts at the printable width (A4 portrait less margins at 96 dpi) for print,
# and back to the window's width after.
PRINT_JS = """
(function () {
  function charts() { return document.querySelectorAll(".js-plotly-plot"); }
  window.addEventListener("beforeprint", function () {
    charts().forEach(function (el) { Plotly.relayout(el, {width: 700}); });
  });
  window.addEventListener("afterprint", function () {
    charts().forEach(function (el) { Plotly.relayout(el, {width: null, autosize: true}); });
  });
})();
"""

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


def e(value: Any) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


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
    if charts:
        figures = {"chart-trend": trend_figure(report), "chart-clusters": clusters_figure(report)}
    body = [
        _header(report),
        _link(link),
        _cards(report),
        _section(
            "Conflict ratio over time",
            _chart("chart-trend", figures)
            + '<p class="note">All conflicts over all requests per '
            + e(_bucket_text(report))
            + " bucket; dotted: the same time a week before.</p>",
        )
        if charts
        else "",
        _section(
            "Top clusters", _chart("chart-clusters", figures, tall=True) + _table(report, TOP)
        ),
        *(_section(table.title, _table(report, table)) for table in SECTIONS),
        _section(
            "Ingest health",
            "".join(f"<h3>{e(t.title)}</h3>{_table(report, t)}" for t in ingest_tables(report)),
        ),
        _footer(report),
    ]
    scripts = []
    if figures:
        import plotly.offline

        scripts = [plotly.offline.get_plotlyjs(), _draw_script(figures), PRINT_JS]
    policy = (
        "default-src 'none'; "
        f"script-src {' '.join(csp_hash(s) for s in scripts) or 'none'}; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    title = f"conflictlens report · {report['period']['label']}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{e(policy)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            '<meta name="referrer" content="no-referrer">\n',
            f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            "\n".join(part for part in body if part),
            "\n",
            *(f"<script>{s}</script>\n" for s in scripts),
            "</body></html>\n",
        ]
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


def _chart(element_id: str, figures: Mapping[str, Any], *, tall: bool = False) -> str:
    if element_id not in figures:
        return ""
    return f'<div class="chart{" tall" if tall else ""}" id="{e(element_id)}"></div>'


def _bucket_text(report: Report) -> str:
    seconds = report["trend"].get("bucket_seconds") or 0
    if seconds % 3600 == 0 and seconds:
        hours = seconds // 3600
        return "1-hour" if hours == 1 else f"{hours}-hour"
    return f"{seconds // 60}-minute"


# --- page parts ------------------------------------------------------------------------------


def _header(report: Report) -> str:
    period = report["period"]
    tz = period["timezone"]
    return (
        "<header>"
        f"<h1>Conflicts: {e(period['label'])}</h1>"
        f'<p class="meta">{e(fmt.local_time(period["from"], tz))} to '
        f"{e(fmt.local_time(period['to'], tz))} {e(tz)} · generated "
        f"{e(fmt.local_time(report['generated'], tz))}</p>"
        "</header>"
    )


def _link(url: str | None) -> str:
    if not url or not url.lower().startswith(("https://", "http://", "file://")):
        return ""
    return f'<p>The full report, with charts: <a href="{e(url)}">{e(url)}</a></p>'


def _delta(value: Any, bad_when_up: bool | None) -> str:
    direction = "up" if isinstance(value, int | float) and value > 0 else "down"
    if not isinstance(value, int | float) or abs(value) < 0.0005 or bad_when_up is None:
        return f"<span>{e(fmt.change(value))}</span>"
    tone = "bad" if bad_when_up else "good"
    return f'<span class="{direction} {tone}">{e(fmt.change(value))}</span>'


def _cards(report: Report) -> str:
    changes = report["changes"]
    cards = []
    for key, label, show, bad_when_up in (
        ("conflicts", "Conflicts", fmt.count, True),
        ("requests", "Requests", fmt.count, None),
        ("ratio", "Conflict ratio", fmt.ratio, True),
    ):
        cards.append(
            '<div class="card">'
            f'<div class="label">{e(label)}</div>'
            f'<div class="value">{e(show(report[key]))}</div>'
            f'<div class="delta">vs previous period ({e(show(report["previous"][key]))}): '
            f"{_delta(changes['previous'][key], bad_when_up)}<br>"
            f"vs a week before ({e(show(report['week_before'][key]))}): "
            f"{_delta(changes['week_before'][key], bad_when_up)}</div>"
            "</div>"
        )
    return f'<section class="cards">{"".join(cards)}</section>'


def _section(title: str, content: str) -> str:
    return f"<section><h2>{e(title)}</h2>{content}</section>"


def _table(report: Report, table: Table) -> str:
    rows = table.rows(report)
    if not rows:
        return f'<p class="empty">{e(table.empty)}</p>'
    tz = report["period"]["timezone"]
    columns = table.columns
    head = "".join(f'<th class="{cls}">{e(header)}</th>' for _, header, _, cls in columns)
    if table.numbered:
        head = '<th class="num">#</th>' + head
    lines = []
    for number, row in enumerate(rows, 1):
        cells = [f'<td class="num">{number}</td>'] if table.numbered else []
        for key, _, kind, cls in columns:
            cells.append(f'<td class="{cls}">{e(cell(kind, row.get(key), tz))}</td>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    return f'<div class="wide">{table_html}</div>'  # a long user agent scrolls, not the page


def _footer(report: Report) -> str:
    tz = report["period"]["timezone"]
    return (
        "<footer>conflictlens · times in "
        f"{e(tz)} · ratio = conflicts ÷ requests on the same routes · previous period "
        f"{e(fmt.local_time(report['previous']['from'], tz))} to "
        f"{e(fmt.local_time(report['previous']['to'], tz))}</footer>"
    )
