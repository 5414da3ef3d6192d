"""The report as Markdown (GitHub-flavoured tables), for terminals, chat and wikis.

Log-derived text is made inert for Markdown renderers, which pass HTML through: ``<``, ``>``
and ``&`` become entities, and the characters that would start emphasis, code, links or end a
table cell are backslash-escaped, so a route like ``/a|b/[x](javascript:…)`` stays text.
"""

from __future__ import annotations

import html
import re

from conflictlens.analysis.reports import text as fmt
from conflictlens.analysis.reports.build import Report
from conflictlens.analysis.reports.sections import SECTIONS, TOP, Table, cell, ingest_tables

# Characters that start emphasis, code, links or strike-through, or end a table cell; the
# line-start ones (#, -, +, digits) never lead a cell or a heading's text here.
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def md(value: str) -> str:
    """Plain text as inert Markdown: HTML entities, then backslash escapes."""
    return _MARKDOWN.sub(r"\\\1", html.escape(fmt.printable(value), quote=False))


def render_md(report: Report) -> str:
    period = report["period"]
    tz = period["timezone"]
    changes = report["changes"]
    lines = [
        f"# Conflicts: {md(period['label'])}",
        "",
        f"{md(fmt.local_time(period['from'], tz))} to {md(fmt.local_time(period['to'], tz))} "
        f"{md(tz)}, generated {md(fmt.local_time(report['generated'], tz))}",
        "",
        "| | this period | previous period | change | a week before | change |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label, show in (
        ("conflicts", "conflicts", fmt.count),
        ("requests", "requests", fmt.count),
        ("ratio", "conflict ratio", fmt.ratio),
    ):
        lines.append(
            f"| {label} | {md(show(report[key]))} | {md(show(report['previous'][key]))} | "
            f"{md(fmt.change(changes['previous'][key]))} | "
            f"{md(show(report['week_before'][key]))} | "
            f"{md(fmt.change(changes['week_before'][key]))} |"
        )
    for table in (TOP, *SECTIONS):
        lines += ["", f"## {md(table.title)}", "", *_table(report, table)]
    lines += ["", "## Ingest health"]
    for table in ingest_tables(report):
        lines += ["", f"### {md(table.title)}", "", *_table(report, table)]
    return "\n".join(lines) + "\n"


def _table(report: Report, table: Table) -> list[str]:
    rows = table.rows(report)
    if not rows:
        return [f"_{md(table.empty)}_"]
    tz = report["period"]["timezone"]
    headers = [header for _, header, _, _ in table.columns]
    aligns = ["---:" if cls == "num" else "---" for _, _, _, cls in table.columns]
    if table.numbered:
        headers, aligns = ["#", *headers], ["---:", *aligns]
    out = [f"| {' | '.join(md(h) for h in headers)} |", f"| {' | '.join(aligns)} |"]
    for number, row in enumerate(rows, 1):
        cells = [md(cell(kind, row.get(key), tz)) for key, _, kind, _ in table.columns]
        if table.numbered:
            cells.insert(0, str(number))
        out.append(f"| {' | '.join(cells)} |")
    return out
