"""Live evaluation: every rule, every group, at ``now``; one transaction for all state
changes and their outbox rows (serve's scheduler calls ``evaluate_all`` every
evaluation_interval).

Alert state lives only in the store: each evaluation starts from the states persisted there,
so a restart (a new connection, a new process) neither loses a firing alert nor sends a second
"firing". The one thing kept between evaluations is an optional cache of baselines (they
change once per window), which saves reads and changes no outcome.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from conflictlens.analysis.alerts import payload
from conflictlens.analysis.alerts.counts import Counts, read_counts
from conflictlens.analysis.alerts.reads import StoredState, read_silences, read_states
from conflictlens.analysis.alerts.rules import AlertRule, AlertsConfig, Group, Silence
from conflictlens.analysis.alerts.series import BaselineCache, Series, floor_minute, observe
from conflictlens.analysis.alerts.state import (
    FIRING,
    NORMAL,
    PENDING,
    AlertState,
    Observation,
    step,
)
from conflictlens.analysis.params import MINUTE, naive_utc
from conflictlens.store.alerts import Changes, OutboxRow, commit
from conflictlens.store.engine import Store

LIVELY = (PENDING, FIRING)  # rows rewritten at every evaluation (their value changes)


@dataclass(frozen=True)
class Transition:
    """A group whose state changed, or that enqueued a notification, at ``at``."""

    rule: str
    fingerprint: str
    labels: dict[str, str]
    previous: str
    state: str
    at: dt.datetime
    value: float | None
    notification: str | None  # firing | repeat | resolved: what was enqueued
    silenced: bool


def observation(series: Series, g: int, s: int) -> Observation:
    """Group ``g`` at end ``s`` of a series, as the state machine takes it."""
    value = float(series.value[g, s])
    threshold = float(series.threshold[g, s])
    median = float(series.median[g, s])
    baseline = None
    if not math.isnan(median):
        baseline = {
            "median": round(median, 6),
            "mad": round(float(series.mad[g, s]), 6),
            "method": series.methods[s],
        }
    return Observation(
        value=None if math.isnan(value) else value,
        condition=bool(series.condition[g, s]),
        nodata=bool(series.nodata[g, s]),
        conflicts=int(series.conflicts[g, s]),
        requests=int(series.requests[g, s]),
        threshold=None if math.isnan(threshold) else threshold,
        baseline=baseline,
    )


def evaluate_all(
    con: duckdb.DuckDBPyConnection,
    alerts: AlertsConfig,
    now: dt.datetime,
    *,
    cache: BaselineCache | None = None,
) -> list[Transition]:
    """Evaluate every rule at ``now`` (aware or naive UTC) and commit the outcome. ``cache``
    keeps baselines between evaluations (they change once per window); without it each
    evaluation computes them again, with the same outcome."""
    moment = naive_utc(now)
    assert moment is not None
    states, silences = read_states(con), read_silences(con, moment)
    transitions, changes = evaluate(con, alerts, moment, states, silences, cache=cache)
    commit(con, changes, moment)
    return transitions


def evaluate(
    con: Store,
    alerts: AlertsConfig,
    now: dt.datetime,
    states: list[StoredState],
    stored_silences: list[Silence],
    *,
    cache: BaselineCache | None = None,
) -> tuple[list[Transition], Changes]:
    """Evaluate every rule at ``now`` (naive UTC) from the persisted ``states`` and the
    stored silences active now, reading counts from ``con`` (any engine); the changes to
    commit, which the caller writes (serve on ClickHouse writes them elsewhere)."""
    end = floor_minute(now)
    silences = (*alerts.silences, *stored_silences)
    stored: dict[str, dict[Group, StoredState]] = {}
    for row in states:
        rule = next((r for r in alerts.rules if r.name == row.rule), None)
        group = rule.group_from_labels(row.labels) if rule else ()
        # A row that no longer fits its rule (group_by changed, rule gone) is left alone.
        if rule is not None and rule.fingerprint(group) == row.fingerprint:
            stored.setdefault(row.rule, {})[group] = row
    counts = _current_counts(con, alerts.rules, end)
    changes = Changes()
    transitions: list[Transition] = []
    for rule in alerts.rules:
        known = stored.get(rule.name, {})
        series = observe(
            con, rule, [end], extra_groups=list(known), counts=counts[rule.name], cache=cache
        )
        transitions += _evaluate(con, series, alerts, known, silences, now, changes)
    return transitions, changes


def _current_counts(
    con: Store, rules: tuple[AlertRule, ...], end: dt.datetime
) -> dict[str, Counts]:
    """The current windows, one read per distinct match: rules that count the same requests
    share it, in buckets that divide every one of their windows."""
    by_match: dict[tuple[tuple[str, str], ...], list[AlertRule]] = {}
    for rule in rules:
        by_match.setdefault(tuple(sorted(rule.match.items())), []).append(rule)
    counts: dict[str, Counts] = {}
    for sharing in by_match.values():
        bucket = math.gcd(*(r.window // MINUTE for r in sharing)) * MINUTE
        widest = max(r.window for r in sharing)
        read = read_counts(con, sharing[0].match, end, bucket, [(end - widest, end)])
        counts.update((r.name, read) for r in sharing)
    return counts


def _evaluate(
    con: Store,
    series: Series,
    alerts: AlertsConfig,
    stored: dict[Group, StoredState],
    silences: tuple[Silence, ...],
    now: dt.datetime,
    changes: Changes,
) -> list[Transition]:
    rule, end = series.rule, series.ends[0]
    transitions = []
    for g, group in enumerate(series.groups):
        before = stored.get(group)
        if before is None and not series.condition[g, 0] and not series.nodata[g, 0]:
            continue  # normal and staying so: nothing to decide, nothing to write
        obs = observation(series, g, 0)
        prev = before.state if before else AlertState()
        labels = rule.labels_for(group)
        silenced = any(s.covers(labels, now) for s in silences)
        state, notice = step(prev, obs, now, rule, silenced=silenced)
        _record(con, changes, rule, group, obs, state, notice, before, now, end, alerts)
        if state.state != prev.state or notice:
            fingerprint = rule.fingerprint(group)
            transitions.append(
                Transition(
                    rule.name,
                    fingerprint,
                    labels,
                    prev.state,
                    state.state,
                    now,
                    obs.value,
                    notice,
                    silenced,
                )
            )
    return transitions


def _record(
    con: Store,
    changes: Changes,
    rule: AlertRule,
    group: Group,
    obs: Observation,
    state: AlertState,
    notice: str | None,
    before: StoredState | None,
    now: dt.datetime,
    end: dt.datetime,
    alerts: AlertsConfig,
) -> None:
    """Stage the group's row and its notifications. A group that never fired keeps no row
    while normal; one that fired keeps its last firing and resolution (reports read them)."""
    fingerprint = rule.fingerprint(group)
    if state.state == NORMAL and state.firing_since is None:
        if before is not None:
            changes.dropped.append((rule.name, fingerprint))
    elif before is None or state.state in LIVELY or _moved(before.state, state):
        # Quiet rows (resolved, nodata) are rewritten only when they change: no write per
        # evaluation for every route that once alerted.
        changes.states.append(_row(rule, group, state, now))
    if notice is None:
        return
    status = "resolved" if notice == "resolved" else "firing"
    body = payload.build(con, rule, group, obs, state, status, end, alerts.dashboard_url)
    changes.outbox += [OutboxRow(c, rule.name, fingerprint, status, body) for c in rule.channels]


def _moved(before: AlertState, after: AlertState) -> bool:
    return replace(before, last_value=None) != replace(after, last_value=None)


def _row(rule: AlertRule, group: Group, state: AlertState, now: dt.datetime) -> dict[str, Any]:
    return {
        "rule": rule.name,
        "fingerprint": rule.fingerprint(group),
        "labels": rule.labels_for(group),
        "state": state.state,
        "active_since": state.active_since,
        "firing_since": state.firing_since,
        "last_condition_at": state.last_condition_at,
        "resolved_at": state.resolved_at,
        "last_value": state.last_value,
        "last_notified_at": state.last_notified_at,
        "updated_at": now,
    }


def test_notifications_for(
    con: duckdb.DuckDBPyConnection, alerts: AlertsConfig, rule_name: str, now: dt.datetime
) -> list[OutboxRow]:
    """One status="test" notification per channel of the rule, with the rule's current
    numbers over its whole match (ungrouped), so the receiver sees a realistic message."""
    rule = replace(alerts.rule(rule_name), group_by=())
    moment = naive_utc(now)
    assert moment is not None
    end = floor_minute(moment)
    obs = observation(observe(con, rule, [end]), 0, 0)
    body = payload.build(con, rule, (), obs, AlertState(), "test", end, alerts.dashboard_url)
    return [OutboxRow(c, rule.name, rule.fingerprint(()), "test", body) for c in rule.channels]
