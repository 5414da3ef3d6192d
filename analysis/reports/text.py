"""How a report's values read: counts, ratios, changes, local times, cluster names, and the
one-line summary that messages carry. Plain text only; each renderer escapes for its format."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from conflictlens.analysis.reports.periods import zone

MAX_LABEL = 120  # characters of a log-derived name shown in a table cell or chart label
NONE = "\u2013"  # an en dash: no value
MINUS = "\u2212"  # a minus sign, the width of a plus


# C0 and C1 control characters, DEL, and the bidirectional overrides that reorder what a
# terminal or an editor shows: a log line's ESC[2J or OSC title sequence is shown, not sent.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(value: str) -> str:
    """``value`` with every control character written as an escape (``\\x1b``): log-derived
    text never drives the terminal or the viewer it is printed to."""
    return _UNPRINTABLE.sub(_escaped, value)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) else NONE


def ratio(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else NONE


def decimal(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else NONE


def resolution(value: Any) -> str:
    """A timestamp resolution in milliseconds as a unit: 1 s, 1 ms, 1 µs."""
    units = {1000.0: "1 s", 1.0: "1 ms", 0.001: "1 \u00b5s"}
    return units.get(float(value), f"{value:g} ms") if isinstance(value, int | float) else NONE


def change(value: Any) -> str:
    """+12.5 %, minus 3.0 %, ±0 %, or NONE when there is nothing to compare with."""
    if not isinstance(value, int | float):
        return NONE
    if abs(value) < 0.0005:
        return "±0 %"
    sign = "+" if value > 0 else MINUS
    return f"{sign}{abs(value) * 100:,.1f} %"


def text(value: Any, limit: int = MAX_LABEL) -> str:
    """A log-derived value as one line of at most ``limit`` characters (NONE when empty)."""
    if value is None or value == "":
        return NONE
    flat = " ".join(str(value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def local_time(value: Any, tz: str | zoneinfo.ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO-8601 instant from the report, on the report zone's clock."""
    if not isinstance(value, str):
        return NONE
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return text(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone(tz) if isinstance(tz, str) else tz).strftime(fmt)


def cluster_name(row: Mapping[str, Any], limit: int = MAX_LABEL) -> str:
    """``PUT /api/v1/users/{id} 409 VERSION_MISMATCH``: method, route, status, code."""
    parts = [row.get("method"), row.get("route"), row.get("status"), row.get("error_code")]
    return text(" ".join(str(p) for p in parts if p not in (None, "")), limit)


def headline(report: Mapping[str, Any]) -> str:
    """One line: the period, conflicts, ratio and the change against the period before."""
    changes = report.get("changes", {}).get("previous", {})
    return (
        f"{report['period']['label']}: {count(report['conflicts'])} conflicts in "
        f"{count(report['requests'])} requests ({ratio(report['ratio'])}), "
        f"{change(changes.get('conflicts'))} conflicts vs the period before"
    )


def summary_lines(report: Mapping[str, Any], top: int = 3) -> list[str]:
    """The headline, then the top clusters and what is new or alarming, as plain lines."""
    lines = [headline(report)]
    for row in report.get("top_clusters", [])[:top]:
        lines.append(f"• {cluster_name(row)}: {count(row['conflicts'])} ({ratio(row['ratio'])})")
    extras = []
    for key, name in (
        ("new_clusters", "new clusters"),
        ("incidents", "incidents"),
        ("storms", "retry storms"),
        ("alerts", "alert events"),
    ):
        if report.get(key):
            extras.append(f"{len(report[key])} {name}")
    ingest = report.get("ingest", {})
    if ingest.get("gaps") or ingest.get("silent_sources") or ingest.get("rejected_lines"):
        extras.append("ingest problems (see the report)")
    if extras:
        lines.append("Also: " + ", ".join(extras) + ".")
    return lines
