"""Reads of the alert tables: persisted group states and silences, and the overview of both
that `alerts list` and GET /api/alerts show."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb

from conflictlens.analysis.alerts.rules import AlertsConfig, Silence, duration_text, iso
from conflictlens.analysis.alerts.state import AlertState

_STATES = """
    SELECT rule, fingerprint, labels, state, active_since, firing_since, last_condition_at,
           resolved_at, last_value, last_notified_at, updated_at
    FROM alert_state
    WHERE $rule::VARCHAR IS NULL OR rule = $rule::VARCHAR
    ORDER BY rule, fingerprint
"""

_SILENCES = """
    SELECT id, matchers, starts_at, ends_at, comment
    FROM alert_silences
    WHERE $now::TIMESTAMP IS NULL OR (starts_at <= $now::TIMESTAMP AND ends_at > $now::TIMESTAMP)
    ORDER BY id
"""


@dataclass(frozen=True)
class StoredState:
    rule: str
    fingerprint: str
    labels: dict[str, str]
    state: AlertState
    updated_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "state": s.state,
            "active_since": iso(s.active_since),
            "firing_since": iso(s.firing_since),
            "last_condition_at": iso(s.last_condition_at),
            "resolved_at": iso(s.resolved_at),
            "last_value": s.last_value,
            "last_notified_at": iso(s.last_notified_at),
            "updated_at": iso(self.updated_at),
        }


def read_states(con: duckdb.DuckDBPyConnection, rule: str | None = None) -> list[StoredState]:
    rows = con.execute(_STATES, {"rule": rule}).fetchall()
    return [
        StoredState(r[0], r[1], json.loads(r[2]), AlertState(r[3], *r[4:10]), r[10]) for r in rows
    ]


def read_silences(
    con: duckdb.DuckDBPyConnection, active_at: dt.datetime | None = None
) -> list[Silence]:
    """Silences stored with ``alerts silence add``: all, or those active at ``active_at``."""
    rows = con.execute(_SILENCES, {"now": active_at}).fetchall()
    return [Silence(json.loads(r[1]), r[2], r[3], r[4], int(r[0])) for r in rows]


def overview(
    con: duckdb.DuckDBPyConnection, alerts: AlertsConfig, now: dt.datetime
) -> dict[str, Any]:
    """Every rule with the persisted state of its groups (a group without a row is normal),
    rows of rules no longer configured, and the silences (config and store) with whether each
    is active at ``now``."""
    return overview_of(alerts, read_states(con), read_silences(con), now)


def overview_of(
    alerts: AlertsConfig, states: list[StoredState], stored: list[Silence], now: dt.datetime
) -> dict[str, Any]:
    """The overview from the states and stored silences, however they were read."""
    names = {rule.name for rule in alerts.rules}
    rules = [
        {
            **rule.to_json(),
            "table": rule.to_table(),
            "groups": [s.to_json() for s in states if s.rule == rule.name],
        }
        for rule in alerts.rules
    ]
    silences = [*alerts.silences, *stored]
    return {
        "evaluation_interval": duration_text(alerts.evaluation_interval),
        "channels": sorted(alerts.channels),
        "rules": rules,
        "unconfigured": [s.to_json() for s in states if s.rule not in names],
        "silences": [{**s.to_json(), "active": s.starts_at <= now < s.ends_at} for s in silences],
    }
