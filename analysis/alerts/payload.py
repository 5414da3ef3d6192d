"""The JSON of a notification (the outbox's payload column), the contract with notify/.

Keys: rule, status, fingerprint, group_key, labels, annotations, severity, starts_at, ends_at,
metric, window, value, threshold, baseline, requests, conflicts, top_resources, top_clients,
dashboard_url, summary.
"""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
from typing import Any

from conflictlens.analysis.alerts.counts import EVENT_MATCH, match_values
from conflictlens.analysis.alerts.rules import MATCH_KEYS, AlertRule, Group, duration_text, iso
from conflictlens.analysis.alerts.state import AlertState, Observation
from conflictlens.analysis.params import fetch
from conflictlens.store.engine import Store

TOP = 5
_GROUP = " AND ".join(
    f"(NOT $g_{k}_set::BOOLEAN OR {k} IS NOT DISTINCT FROM $g_{k}::VARCHAR)" for k in MATCH_KEYS
)

_TOP_RESOURCES = f"""
    SELECT array_to_string(resource_ids, '/') AS resource, count(*)::BIGINT AS conflicts
    FROM conflict_events
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP AND len(resource_ids) > 0
      AND {EVENT_MATCH} AND {_GROUP}
    GROUP BY ALL ORDER BY conflicts DESC, resource LIMIT {TOP}
"""  # noqa: S608 - fixed fragments only; every value is bound

_TOP_CLIENTS = f"""
    SELECT client, count(*)::BIGINT AS conflicts
    FROM conflict_events
    WHERE ts >= $since::TIMESTAMP AND ts < $until::TIMESTAMP AND client IS NOT NULL
      AND {EVENT_MATCH} AND {_GROUP}
    GROUP BY ALL ORDER BY conflicts DESC, client LIMIT {TOP}
"""  # noqa: S608

# The dashboard's (and the CLI's) names for the filters.
_LINK_NAMES = {"service": "service", "method": "method", "route": "route", "error_code": "code"}


def build(
    con: Store,
    rule: AlertRule,
    group: Group,
    obs: Observation,
    state: AlertState,
    status: str,
    end: dt.datetime,
    dashboard_url: str | None,
) -> dict[str, Any]:
    """``status``: firing | resolved | test. ``end``: the end of the evaluated window."""
    since = end - rule.window
    where = {**match_values(rule.match), **_group_values(rule, group), "since": since, "until": end}
    resources = fetch(con, _TOP_RESOURCES, where).to_dicts()
    clients = fetch(con, _TOP_CLIENTS, where).to_dicts()
    labels = rule.labels_for(group)
    return {
        "rule": rule.name,
        "status": status,
        "fingerprint": rule.fingerprint(group),
        "group_key": rule.group_key(group),
        "labels": labels,
        "annotations": dict(rule.annotations),
        "severity": rule.severity,
        "starts_at": iso(state.active_since or end),
        "ends_at": iso(state.resolved_at) if status == "resolved" else None,
        "metric": rule.metric,
        "window": duration_text(rule.window),
        "value": _number(obs.value),
        "threshold": _number(obs.threshold),
        "baseline": obs.baseline,
        "requests": obs.requests,
        "conflicts": obs.conflicts,
        "top_resources": [
            {"resource": r["resource"], "conflicts": r["conflicts"]} for r in resources
        ],
        "top_clients": [{"client": r["client"], "conflicts": r["conflicts"]} for r in clients],
        "dashboard_url": dashboard_link(dashboard_url, rule, group, since, end),
        "summary": summary(rule, group, obs, status),
    }


def _group_values(rule: AlertRule, group: Group) -> dict[str, Any]:
    values: dict[str, Any] = {}
    given = dict(zip(rule.group_by, group, strict=True))
    for key in MATCH_KEYS:
        values[f"g_{key}_set"] = key in given
        values[f"g_{key}"] = given.get(key)
    return values


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def dashboard_link(
    base: str | None, rule: AlertRule, group: Group, since: dt.datetime, until: dt.datetime
) -> str | None:
    """The dashboard narrowed to the group and the window; exact match values narrow too."""
    if base is None:
        return None
    params: dict[str, str] = {}
    for key, value in rule.match.items():
        if key in _LINK_NAMES and not any(c in value for c in "*?["):
            params[_LINK_NAMES[key]] = value
    for key, value in rule.group_labels(group).items():
        if key in _LINK_NAMES:
            params[_LINK_NAMES[key]] = value
    params["since"], params["until"] = str(iso(since)), str(iso(until))
    return f"{base}/?{urllib.parse.urlencode(params)}"


def show_value(metric: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if metric == "ratio":
        return f"{value:.1%}"
    if metric == "rate":
        return f"{value:.2f}/min"
    return f"{value:g}"


def summary(rule: AlertRule, group: Group, obs: Observation, status: str) -> str:
    """One sentence a person reads first."""
    what = " ".join(v for v in group if v) or "all matched requests"
    measured = (
        f"conflict {rule.metric} {show_value(rule.metric, obs.value)} over the last "
        f"{duration_text(rule.window)} ({obs.conflicts} conflicts in {obs.requests} requests)"
    )
    if status == "test":
        return f"Test notification of alert rule {rule.name}: delivery works."
    if status == "resolved":
        return f"{rule.name} resolved on {what}: {measured}."
    limit = show_value(rule.metric, obs.threshold)
    if rule.anomaly is not None and obs.baseline:
        usual = show_value(rule.metric, _as_float(obs.baseline.get("median")))
        return f"{rule.name} firing on {what}: {measured}, usually {usual} (threshold {limit})."
    return f"{rule.name} firing on {what}: {measured}, above {limit}."


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
