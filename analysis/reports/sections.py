"""What the report's tables show, shared by the HTML and Markdown renderers: the sections in
order, their columns, and each cell as plain text (the renderer escapes it for its format)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conflictlens.analysis.reports import text as fmt

Column = tuple[str, str, str, str]  # key, header, how to show it (see cell), alignment class


def cell(kind: str, value: Any, tz: str) -> str:
    """A cell's plain text."""
    if kind == "time":
        return fmt.local_time(value, tz)
    if kind == "clusters":
        return _clusters_text(value)
    if kind == "channels":
        return _channels_text(value)
    return _PLAIN[kind](value)


_PLAIN = {
    "text": fmt.text,
    "count": fmt.count,
    "ratio": fmt.ratio,
    "decimal": fmt.decimal,
    "resolution": fmt.resolution,
}


def _clusters_text(value: Any) -> str:
    if not isinstance(value, Iterable) or isinstance(value, str):
        return fmt.NONE
    return "; ".join(fmt.cluster_name(c, 80) for c in value if isinstance(c, Mapping))


def _channels_text(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) and value else fmt.NONE


TOP_COLUMNS: tuple[Column, ...] = (
    ("method", "method", "text", "code"),
    ("route", "route", "text", "code"),
    ("status", "status", "text", "num"),
    ("error_code", "error code", "text", "code"),
    ("kind", "kind", "text", ""),
    ("conflicts", "conflicts", "count", "num"),
    ("requests", "requests", "count", "num"),
    ("ratio", "ratio", "ratio", "num"),
    ("share", "share", "ratio", "num"),
)
NEW_COLUMNS: tuple[Column, ...] = (
    ("method", "method", "text", "code"),
    ("route", "route", "text", "code"),
    ("error_code", "error code", "text", "code"),
    ("kind", "kind", "text", ""),
    ("conflicts", "conflicts", "count", "num"),
    ("requests", "requests", "count", "num"),
    ("ratio", "ratio", "ratio", "num"),
)
GROWTH_COLUMNS: tuple[Column, ...] = (
    ("method", "method", "text", "code"),
    ("route", "route", "text", "code"),
    ("error_code", "error code", "text", "code"),
    ("conflicts", "conflicts", "count", "num"),
    ("baseline", "baseline", "decimal", "num"),
    ("score", "score", "decimal", "num"),
    ("ratio", "ratio", "ratio", "num"),
    ("baseline_ratio", "usual ratio", "ratio", "num"),
)
RESOURCE_COLUMNS: tuple[Column, ...] = (
    ("method", "method", "text", "code"),
    ("route", "route", "text", "code"),
    ("resource", "resource", "text", "code"),
    ("conflicts", "conflicts", "count", "num"),
    ("peak_conflicts", "peak", "count", "num"),
    ("peak_start", "peak at", "time", "time"),
    ("clients", "clients", "count", "num"),
    ("max_overlap", "in flight", "count", "num"),
    ("top_error_code", "error code", "text", "code"),
)
STORM_COLUMNS: tuple[Column, ...] = (
    ("client", "client", "text", "code"),
    ("method", "method", "text", "code"),
    ("route", "route", "text", "code"),
    ("resource", "resource", "text", "code"),
    ("count", "tries", "count", "num"),
    ("start", "start", "time", "time"),
    ("end", "end", "time", "time"),
    ("median_interval_ms", "interval ms", "decimal", "num"),
    ("resolution_ms", "stamped to", "resolution", "num"),
    ("user_agent", "user agent", "text", "code"),
)
INCIDENT_COLUMNS: tuple[Column, ...] = (
    ("start", "start", "time", "time"),
    ("end", "end", "time", "time"),
    ("conflicts", "conflicts", "count", "num"),
    ("peak_ratio", "peak ratio", "ratio", "num"),
    ("clusters", "clusters", "clusters", "code"),
)
ALERT_COLUMNS: tuple[Column, ...] = (
    ("at", "at", "time", "time"),
    ("event", "event", "text", ""),
    ("rule", "rule", "text", "code"),
    ("severity", "severity", "text", ""),
    ("summary", "summary", "text", ""),
    ("channels", "notified", "channels", ""),
    ("delivered", "delivered", "channels", ""),
)
REJECT_COLUMNS: tuple[Column, ...] = (
    ("path", "source", "text", "code"),
    ("reason", "reason", "text", ""),
    ("lines", "lines", "count", "num"),
    ("last_seen", "last", "time", "time"),
)
SILENT_COLUMNS: tuple[Column, ...] = (
    ("path", "source", "text", "code"),
    ("last_line_at", "last new line", "time", "time"),
    ("files", "files", "count", "num"),
)
GAP_COLUMNS: tuple[Column, ...] = (
    ("start", "from", "time", "time"),
    ("end", "to", "time", "time"),
    ("minutes", "minutes", "count", "num"),
)


@dataclass(frozen=True)
class Table:
    """One table of the report: where its rows are, its columns, what to say when empty."""

    title: str
    path: tuple[str, ...]  # keys leading to the rows in the report
    columns: tuple[Column, ...]
    empty: str = "None in this period."
    numbered: bool = False

    def rows(self, report: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        value: Any = report
        for key in self.path:
            value = value.get(key, []) if isinstance(value, Mapping) else []
        return value if isinstance(value, list) else []


TOP = Table("Top clusters", ("top_clusters",), TOP_COLUMNS, numbered=True)
SECTIONS: tuple[Table, ...] = (
    Table("New clusters", ("new_clusters",), NEW_COLUMNS),
    Table("Fastest-growing clusters", ("growing_clusters",), GROWTH_COLUMNS),
    Table("Hot resources", ("hot_resources",), RESOURCE_COLUMNS),
    Table("Retry storms", ("storms",), STORM_COLUMNS),
    Table("Incidents", ("incidents",), INCIDENT_COLUMNS),
    Table("Alerts fired and resolved", ("alerts",), ALERT_COLUMNS),
)


def ingest_tables(report: Mapping[str, Any]) -> tuple[Table, ...]:
    """The three parts of ingest health, titled with the report's thresholds."""
    ingest = report.get("ingest", {})
    return (
        Table(
            "Rejected lines (recorded during the period)",
            ("ingest", "rejects"),
            REJECT_COLUMNS,
            "No line was rejected.",
        ),
        Table(
            f"Sources silent for the last {ingest.get('silent_minutes', '?')} minutes or more",
            ("ingest", "silent_sources"),
            SILENT_COLUMNS,
            "Every source kept logging.",
        ),
        Table(
            f"Gaps of {ingest.get('gap_minutes', '?')} minutes or more without a request",
            ("ingest", "gaps"),
            GAP_COLUMNS,
            "No gap.",
        ),
    )
