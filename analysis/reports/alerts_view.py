"""Alerts fired and resolved in a period, read from the alert tables (store migration 3).

The outbox holds one row per notification and channel, with the alert's payload; the state
table holds each alert group's latest firing and resolution (also for rules that notify no
channel). A report lists each (rule, group, event) once: from the outbox where it was
notified, with the channels it went to, else from the state table. A store without the alert
tables answers with no alerts.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from conflictlens.analysis.params import Filters, TimeRange, closed_range, fetch
from conflictlens.store.engine import Store

ALERT_COLUMNS: dict[str, Any] = {
    "at": pl.Datetime("us"),
    "event": pl.String,  # fired | resolved
    "rule": pl.String,
    "fingerprint": pl.String,
    "severity": pl.String,
    "summary": pl.String,
    "labels": pl.String,  # JSON object
    "channels": pl.List(pl.String),
    "delivered": pl.List(pl.String),  # the channels that have it
}

_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_name IN ('alert_outbox', 'alert_state')
"""

_OUTBOX = """
SELECT min(created_at) AS at,
       CASE status WHEN 'firing' THEN 'fired' ELSE 'resolved' END AS event,
       rule, fingerprint, any_value(payload) AS payload,
       -- sorted, and the NULL of an undelivered row dropped, in Python (_channels): an
       -- ordered list aggregate and FILTER on one have no ClickHouse translation
       list(DISTINCT channel) AS channels,
       list(DISTINCT CASE WHEN delivered_at IS NOT NULL THEN channel END) AS delivered
FROM alert_outbox
WHERE status IN ('firing', 'resolved')
  AND ($since::TIMESTAMP IS NULL OR created_at >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR created_at < $until::TIMESTAMP)
GROUP BY rule, fingerprint, status, created_at
"""

_STATE = """
SELECT firing_since AS at, 'fired' AS event, rule, fingerprint, labels
FROM alert_state
WHERE firing_since IS NOT NULL
  AND ($since::TIMESTAMP IS NULL OR firing_since >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR firing_since < $until::TIMESTAMP)
UNION ALL
SELECT resolved_at, 'resolved', rule, fingerprint, labels
FROM alert_state
WHERE resolved_at IS NOT NULL
  AND ($since::TIMESTAMP IS NULL OR resolved_at >= $since::TIMESTAMP)
  AND ($until::TIMESTAMP IS NULL OR resolved_at < $until::TIMESTAMP)
"""


def no_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema=ALERT_COLUMNS)


def alerts_in_range(
    con: Store,
    time_range: TimeRange,
    filters: Filters,
    *,
    limit: int = 200,
) -> pl.DataFrame:
    """Each alert that fired or resolved in the range, oldest first, with its summary and
    severity (from the notification's payload) and the channels notified."""
    tables = set(fetch(con, _TABLES, {})["table_name"])
    if not tables:
        return no_alerts()
    values = closed_range(con, time_range, None).params()
    rows: list[dict[str, Any]] = []
    notified: set[tuple[str, str, str]] = set()
    if "alert_outbox" in tables:
        for row in fetch(con, _OUTBOX, values).iter_rows(named=True):
            payload = _payload(row.pop("payload"))
            rows.append(
                {
                    **row,
                    "severity": _text(payload.get("severity")),
                    "summary": _text(payload.get("summary")),
                    "labels": json.dumps(payload.get("labels") or {}, sort_keys=True),
                    "channels": _channels(row["channels"]),
                    "delivered": _channels(row["delivered"]),
                }
            )
            notified.add((row["rule"], row["fingerprint"], row["event"]))
    if "alert_state" in tables:
        for row in fetch(con, _STATE, values).iter_rows(named=True):
            if (row["rule"], row["fingerprint"], row["event"]) in notified:
                continue
            rows.append({**row, "severity": None, "summary": None, "channels": [], "delivered": []})
    if not rows:
        return no_alerts()
    frame = pl.DataFrame(rows, schema=ALERT_COLUMNS)
    return _matching(frame, filters).sort("at", "rule", "event").head(limit)


def _channels(names: list[str | None] | None) -> list[str]:
    return sorted({name for name in names or [] if name is not None})


def _payload(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _matching(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """Alerts whose group labels agree with every given filter (an alert grouped by route
    only has no method label: it is kept for any method)."""
    wanted = {
        label: value
        for label, value in (
            ("service", filters.service),
            ("method", filters.method),
            ("route", filters.route),
            ("error_code", filters.code),
            ("kind", filters.kind),
        )
        if value is not None
    }
    if not wanted:
        return frame
    keep = []
    for labels in frame["labels"]:
        parsed = _payload(labels)
        keep.append(all(parsed.get(k) in (None, v) for k, v in wanted.items()))
    return frame.filter(pl.Series(keep, dtype=pl.Boolean))
