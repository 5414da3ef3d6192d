"""Backtest: replay the rules over stored history at evaluation-interval steps, through the
same series and state machine as live evaluation, and report the episodes (first firing to
resolution) they would have produced.

Each rule's metric is computed for all steps at once (one query per table, window sums over
per-minute counts), then each group's state machine walks the steps. Silences are not
applied: they hold notifications back, they do not change states.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from conflictlens.analysis.alerts.engine import observation
from conflictlens.analysis.alerts.rules import AlertRule, AlertsConfig, iso
from conflictlens.analysis.alerts.series import Series, floor_minute, observe
from conflictlens.analysis.alerts.state import FIRING, PENDING, RESOLVED, AlertState, step
from conflictlens.analysis.params import check_buckets, data_end, data_start, naive_utc
from conflictlens.store.engine import Store

MAX_STEPS = 500_000  # evaluation steps of one backtest (a year at one a minute)

EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Episode:
    rule: str
    fingerprint: str
    labels: dict[str, str]
    start: dt.datetime  # the step that fired
    end: dt.datetime | None  # the step that resolved; None: still firing at the range's end
    peak_value: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "start": iso(self.start),
            "end": iso(self.end),
            "peak_value": None if self.peak_value is None else round(self.peak_value, 6),
        }


def evaluation_times(
    since: dt.datetime, until: dt.datetime, interval: dt.timedelta
) -> list[dt.datetime]:
    """The steps in [since, until), on the interval's grid counted from the epoch."""
    first = EPOCH + -((EPOCH - since) // interval) * interval
    count = max(0, -(-(until - first) // interval))
    return [first + k * interval for k in range(count)]


def backtest(
    con: Store,
    alerts: AlertsConfig,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    rules: tuple[str, ...] = (),
) -> list[Episode]:
    """Episodes of every rule (or the named ones) in [since, until), default the stored data."""
    start, end = data_start(con), data_end(con)
    since = naive_utc(since) or start
    until = naive_utc(until) or end
    if since is None or until is None or start is None or end is None:
        return []
    # Only where there is data to replay: a range from year 1 is not a billion steps.
    since, until = max(since, start), min(until, end + alerts.evaluation_interval)
    if until <= since:
        return []
    check_buckets(until - since, alerts.evaluation_interval, MAX_STEPS)
    times = evaluation_times(since, until, alerts.evaluation_interval)
    episodes: list[Episode] = []
    for rule in alerts.rules:
        if not rules or rule.name in rules:
            episodes += _replay(con, rule, times, start)
    return sorted(episodes, key=lambda e: (e.start, e.rule, e.fingerprint))


def _replay(
    con: Store,
    rule: AlertRule,
    times: list[dt.datetime],
    start: dt.datetime | None,
) -> list[Episode]:
    if not times:
        return []
    ends = sorted({floor_minute(t) for t in times})
    column = {end: i for i, end in enumerate(ends)}
    cols = [column[floor_minute(t)] for t in times]
    series = observe(con, rule, ends, start=start)
    episodes = []
    for g, group in enumerate(series.groups):
        holds = series.condition[g]
        state = AlertState()
        opened: tuple[dt.datetime, float | None] | None = None
        for now, s in zip(times, cols, strict=True):
            if state.state not in (PENDING, FIRING) and not holds[s]:
                continue  # quiet: no step of the machine could change anything that matters
            obs = observation(series, g, s)
            after, _ = step(state, obs, now, rule, silenced=False)
            if after.state == FIRING and state.state != FIRING:
                opened = (now, obs.value)
            elif after.state == FIRING and opened is not None:
                opened = (opened[0], _max(opened[1], obs.value))
            elif after.state == RESOLVED and state.state == FIRING and opened is not None:
                episodes.append(_episode(rule, group, opened, now))
                opened = None
            state = after
        if opened is not None:
            episodes.append(_episode(rule, group, opened, None))
    return episodes


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _episode(
    rule: AlertRule,
    group: tuple[str | None, ...],
    opened: tuple[dt.datetime, float | None],
    end: dt.datetime | None,
) -> Episode:
    return Episode(
        rule.name, rule.fingerprint(group), rule.labels_for(group), opened[0], end, opened[1]
    )


# The preview chart draws at most this many window ends per group: more than a chart's width
# in pixels would only cost bytes. Its episodes come from the full backtest, step by step.
PREVIEW_POINTS = 400
PREVIEW_GROUPS = 5


def preview(
    con: Store,
    rule: AlertRule,
    interval: dt.timedelta,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    *,
    points: int = PREVIEW_POINTS,
    groups: int = PREVIEW_GROUPS,
) -> dict[str, Any]:
    """What the Alerts page shows for a rule being edited, saved or not: its backtest
    episodes (exactly what ``backtest`` gives for it alone) and, for a chart, its metric and
    threshold at up to ``points`` window ends for the groups that fired first, then the
    highest, up to ``groups`` of them."""
    alone = AlertsConfig(evaluation_interval=interval, rules=(rule,))
    episodes = backtest(con, alone, since, until)
    start, end = data_start(con), data_end(con)
    first = naive_utc(since) or start
    last = naive_utc(until) or end
    if first is not None and start is not None:
        first = max(first, start)
    if last is not None and end is not None:
        last = min(last, end)
    rows: list[dict[str, Any]] = []
    if first is not None and last is not None and last > first:
        ends = _chart_ends(first, last, interval, points)
        if ends:
            rows = _chart_rows(observe(con, rule, ends, start=start), episodes, groups)
    return {
        "rule": rule.name,
        "episodes": [e.to_json() for e in episodes],
        "series": rows,
    }


def _chart_ends(
    since: dt.datetime, until: dt.datetime, interval: dt.timedelta, points: int
) -> list[dt.datetime]:
    minutes = max(interval, (until - since) / points, dt.timedelta(minutes=1))
    step = dt.timedelta(minutes=-(-minutes.total_seconds() // 60))  # whole minutes, up
    first = floor_minute(since) + step
    return [first + k * step for k in range(int((until - first) // step) + 1)]


def _chart_rows(series: Series, episodes: list[Episode], limit: int) -> list[dict[str, Any]]:
    rule = series.rule
    fired = {fp: i for i, fp in enumerate(dict.fromkeys(e.fingerprint for e in episodes))}
    peaks = np.max(np.nan_to_num(series.value, nan=-np.inf), axis=1, initial=-np.inf)

    def rank(g: int) -> tuple[int, float]:
        return fired.get(rule.fingerprint(series.groups[g]), len(fired)), -float(peaks[g])

    order = sorted(range(len(series.groups)), key=rank)
    rows = []
    for g in order[:limit]:
        labels = rule.group_labels(series.groups[g])
        name = ", ".join(f"{k}={v}" for k, v in labels.items()) or "all"
        for s, end in enumerate(series.ends):
            value, threshold = series.value[g, s], series.threshold[g, s]
            rows.append(
                {
                    "time": iso(end),
                    "group": name,
                    "value": None if np.isnan(value) else float(value),
                    "threshold": None if np.isnan(threshold) else float(threshold),
                }
            )
    return rows
