"""A rule's metric per group at one or many evaluation times, and its condition.

Live evaluation asks for one end (``floor_minute(now)``), the backtest for thousands; both go
through ``observe`` and the same arithmetic on the same integer window sums (see counts).

Anomaly baselines follow analysis.baselines: the same window in past weeks once three weeks of
history exist, else up to 24 windows before (``plan_baseline``); the median of those samples
and their MAD. The samples are windows of the rule's window grid (counted from the epoch)
before the grid window that holds the end, so a baseline changes once per window, not at
every evaluation: live evaluation reads the samples once per window (``BaselineCache``) and
only the current window at each evaluation.

The threshold is median + k x spread, where the spread is the MAD scaled to a standard
deviation with a floor for counting noise, as in the baselines' score: for counts
max(1.4826 MAD, sqrt(median), 1); for ratios max(1.4826 MAD, sqrt(p(1-p)/n), 1/n) with p the
median ratio and n the window's requests. Without the floor a MAD of 0 (quiet routes) would
fire on a single conflict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conflictlens.analysis.alerts.counts import (
    Counts,
    Cumulative,
    groups_in,
    ordered,
    read_counts,
    window_spans,
)
from conflictlens.analysis.alerts.rules import AlertRule, Group
from conflictlens.analysis.baselines import MAD_TO_SIGMA, MIN_SAMPLES, BaselinePlan, plan_baseline
from conflictlens.analysis.params import MINUTE, data_start
from conflictlens.store.engine import Store

EPOCH = dt.datetime(1970, 1, 1)
# Fewest samples a baseline of trailing windows needs before it may fire an alert: a few
# windows of a fresh store give a median and MAD too rough to page anyone. The same window
# in past weeks needs the baselines' own minimum (three weeks).
MIN_TRAILING_SAMPLES = 12


def floor_minute(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


def grid_base(end: dt.datetime, width: dt.timedelta) -> dt.datetime:
    """The start of the grid window holding ``end``: its samples end a window before it."""
    return end - (end - EPOCH) % width


def plan_at(rule: AlertRule, base: dt.datetime, first: dt.datetime | None) -> BaselinePlan:
    """Anomaly rules: the baselines' plan. Above rules need no baseline; their one sample
    (the window before) only tells whether there was data earlier (for nodata)."""
    history = max(dt.timedelta(0), base - rule.window - (first or base))
    if rule.anomaly is None:
        return BaselinePlan("none", (1,) if history >= rule.window else ())
    return plan_baseline(rule.window, history)


def sample_ends(rule: AlertRule, base: dt.datetime, plan: BaselinePlan) -> list[dt.datetime]:
    return [base - offset * rule.window for offset in plan.offsets]


@dataclass(frozen=True)
class Baseline:
    """The samples' statistics per group for one grid window of one rule."""

    rule: AlertRule
    base: dt.datetime
    method: str
    index: dict[Group, int]
    median: np.ndarray
    mad: np.ndarray
    count: np.ndarray  # samples with a value (a ratio needs requests)
    earlier: np.ndarray  # any requests in the samples
    empty: tuple[float, float, int]  # the statistics of a group with no data in any sample

    def take(self, groups: Sequence[Group]) -> tuple[np.ndarray, ...]:
        """median, mad, count, earlier for ``groups`` (absent ones: ``empty``)."""
        rows = np.array([self.index.get(g, -1) for g in groups], dtype=np.int64)
        known = rows >= 0
        if not known.any():
            size = len(groups)
            median, mad, count = (np.full(size, value) for value in self.empty)
            return median, mad, count, np.zeros(size, dtype=bool)
        safe = np.where(known, rows, 0)
        return (
            np.where(known, self.median[safe], self.empty[0]),
            np.where(known, self.mad[safe], self.empty[1]),
            np.where(known, self.count[safe], self.empty[2]),
            known & self.earlier[safe],
        )


# Baselines live evaluation computed, per rule name: reused until the grid moves on.
BaselineCache = dict[str, Baseline]


@dataclass(frozen=True)
class Series:
    """Per group (rows) and window end (columns): counts, value, threshold and condition.
    A value is NaN where it is undefined (a ratio without requests), a threshold where there
    is no baseline."""

    rule: AlertRule
    groups: list[Group]
    ends: list[dt.datetime]
    methods: list[str]  # the baseline method per end ("none" for above rules)
    conflicts: np.ndarray
    requests: np.ndarray
    value: np.ndarray
    threshold: np.ndarray
    median: np.ndarray
    mad: np.ndarray
    condition: np.ndarray
    nodata: np.ndarray


def observe(
    con: Store,
    rule: AlertRule,
    ends: Sequence[dt.datetime],
    *,
    extra_groups: Sequence[Group] = (),
    start: dt.datetime | None = None,
    counts: Counts | None = None,
    cache: BaselineCache | None = None,
) -> Series:
    """``ends``: ascending, minute-aligned naive-UTC window ends. ``start``: the oldest data
    (default: the store's, asked only when a baseline is computed). ``counts``: the current
    window(s), read already (rules with one match share a read), in buckets dividing the
    window and ending at the last end."""
    if len(ends) == 1:
        return _observe_one(con, rule, ends[0], extra_groups, start, counts, cache)
    return _observe_many(con, rule, list(ends), extra_groups, start)


def _observe_one(
    con: Store,
    rule: AlertRule,
    end: dt.datetime,
    extra: Sequence[Group],
    start: dt.datetime | None,
    counts: Counts | None,
    cache: BaselineCache | None,
) -> Series:
    """Live: the current window from ``counts`` (or one read), the baseline from the cache or
    one read of its samples."""
    width = rule.window
    if counts is None:
        counts = read_counts(con, rule.match, end, width, [(end - width, end)])
    base = grid_base(end, width)
    baseline = cache.get(rule.name) if cache is not None else None
    if baseline is None or baseline.base != base or baseline.rule != rule:
        baseline = _read_baseline(con, rule, base, start)
        if cache is not None:
            cache[rule.name] = baseline
    groups = ordered(groups_in(rule, counts) | set(baseline.index) | set(extra))
    current = Cumulative(rule, groups, counts, end - width).sums([end], width)
    stats = tuple(a[:, None] for a in baseline.take(groups))
    return _finish(rule, groups, [end], [baseline.method], current, stats)


def _read_baseline(
    con: Store, rule: AlertRule, base: dt.datetime, start: dt.datetime | None
) -> Baseline:
    plan = plan_at(rule, base, start if start is not None else data_start(con))
    moments = sample_ends(rule, base, plan)
    if not moments:
        return _baseline(rule, base, plan, [], np.zeros((0, 0)), np.zeros((0, 0)))
    samples = read_counts(con, rule.match, base, rule.window, window_spans(moments, rule.window))
    groups = ordered(groups_in(rule, samples))
    since = min(moments) - rule.window
    sample_c, sample_r = Cumulative(rule, groups, samples, since).sums(moments, rule.window)
    return _baseline(rule, base, plan, groups, sample_c, sample_r)


def _baseline(
    rule: AlertRule,
    base: dt.datetime,
    plan: BaselinePlan,
    groups: list[Group],
    sample_c: np.ndarray,
    sample_r: np.ndarray,
) -> Baseline:
    """From samples (group, sample)."""
    median, mad, count, earlier = _stats(rule, sample_c, sample_r)
    k = len(plan.offsets)
    empty = _stats(rule, np.zeros((1, k), dtype=np.int64), np.zeros((1, k), dtype=np.int64))
    return Baseline(
        rule,
        base,
        plan.method,
        {g: i for i, g in enumerate(groups)},
        median,
        mad,
        count,
        earlier,
        (float(empty[0][0]), float(empty[1][0]), int(empty[2][0])),
    )


def _observe_many(
    con: Store,
    rule: AlertRule,
    ends: list[dt.datetime],
    extra: Sequence[Group],
    start: dt.datetime | None,
) -> Series:
    """Backtest: one read of every minute the ends and their samples need."""
    width = rule.window
    first = start if start is not None else data_start(con)
    bases = [grid_base(end, width) for end in ends]
    plans = {base: plan_at(rule, base, first) for base in dict.fromkeys(bases)}
    reach = max((max(p.offsets, default=0) for p in plans.values()), default=0)
    since = min(bases[0] - (reach + 1) * width, ends[0] - width)
    counts = read_counts(con, rule.match, ends[-1], MINUTE, [(since, ends[-1])])
    groups = ordered(groups_in(rule, counts) | set(extra))
    cumulative = Cumulative(rule, groups, counts, since)
    current = cumulative.sums(ends, width)
    column = {base: i for i, base in enumerate(plans)}
    cols = np.array([column[b] for b in bases], dtype=np.int64)
    per_base = [np.full((len(groups), len(plans)), np.nan) for _ in range(2)]
    per_count = np.zeros((len(groups), len(plans)), dtype=np.int64)
    per_earlier = np.zeros((len(groups), len(plans)), dtype=bool)
    for plan in set(plans.values()):
        mine = [b for b, p in plans.items() if p == plan]
        if not plan.offsets:
            continue
        moments = np.array([sample_ends(rule, b, plan) for b in mine], dtype="datetime64[us]")
        sample_c, sample_r = cumulative.sums(moments, width)
        at = np.array([column[b] for b in mine], dtype=np.int64)
        m, d, n, e = _stats(rule, sample_c, sample_r)
        per_base[0][:, at], per_base[1][:, at], per_count[:, at], per_earlier[:, at] = m, d, n, e
    median, mad = per_base[0][:, cols], per_base[1][:, cols]
    count, earlier = per_count[:, cols], per_earlier[:, cols]
    methods = [plans[b].method for b in bases]
    return _finish(rule, groups, ends, methods, current, (median, mad, count, earlier))


def _finish(
    rule: AlertRule,
    groups: list[Group],
    ends: list[dt.datetime],
    methods: list[str],
    current: tuple[np.ndarray, np.ndarray],
    stats: tuple[np.ndarray, ...],
) -> Series:
    conflicts, requests = current
    median, mad, count, earlier = stats
    minutes = rule.window // MINUTE
    value = _metric(rule, conflicts, requests, minutes)
    if rule.above is not None:  # its one sample only told whether there was data earlier
        threshold = np.full(value.shape, rule.above)
        median, mad = np.full(value.shape, np.nan), np.full(value.shape, np.nan)
    else:
        needed = [MIN_TRAILING_SAMPLES if m == "trailing" else MIN_SAMPLES for m in methods]
        enough = count >= np.array(needed, dtype=np.int64)[None, :]
        threshold = np.where(enough, _threshold(rule, median, mad, requests, minutes), np.nan)
    with np.errstate(invalid="ignore"):
        condition = (value > threshold) & (requests >= rule.min_requests)
    nodata = (requests == 0) & earlier
    if rule.metric == "rate":  # baselines are of counts: shown per minute like the value
        median, mad = median / minutes, mad / minutes
    return Series(
        rule,
        groups,
        ends,
        methods,
        conflicts,
        requests,
        value,
        threshold,
        median,
        mad,
        condition,
        nodata,
    )


def _metric(
    rule: AlertRule, conflicts: np.ndarray, requests: np.ndarray, minutes: int
) -> np.ndarray:
    if rule.metric == "count":
        return conflicts.astype(float)
    if rule.metric == "rate":
        return conflicts / minutes
    out = np.full(conflicts.shape, np.nan)
    np.divide(conflicts, requests, out=out, where=requests > 0)
    return out


def _median(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median along the last axis ignoring NaN, and how many values it had (NaN when none);
    written out because np.nanmedian warns on empty slices."""
    ordered_x = np.sort(x, axis=-1)  # NaN sort last
    n = (~np.isnan(x)).sum(axis=-1)
    low = np.take_along_axis(ordered_x, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    high = np.take_along_axis(ordered_x, np.maximum(n // 2, 0)[..., None], -1)[..., 0]
    median = np.where(n > 0, (low + high) / 2, np.nan)
    return median, n


def _stats(
    rule: AlertRule, sample_c: np.ndarray, sample_r: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median, MAD, number of samples with a value, and whether any sample had requests, over
    the last axis. Counts (for rate too: it is turned per minute at the end); ratios for
    ratio."""
    if sample_c.shape[-1] == 0:
        shape = sample_c.shape[:-1]
        nothing = np.full(shape, np.nan)
        return nothing, nothing.copy(), np.zeros(shape, np.int64), np.zeros(shape, bool)
    if rule.metric == "ratio":
        samples = np.full(sample_c.shape, np.nan)
        np.divide(sample_c, sample_r, out=samples, where=sample_r > 0)
    else:
        samples = sample_c.astype(float)
    median, n = _median(samples)
    mad, _ = _median(np.abs(samples - median[..., None]))
    return median, mad, n, sample_r.sum(axis=-1) > 0


def _threshold(
    rule: AlertRule, median: np.ndarray, mad: np.ndarray, requests: np.ndarray, minutes: int
) -> np.ndarray:
    """median + k x spread (NaN without a median: no alert)."""
    assert rule.anomaly is not None
    if rule.metric == "ratio":
        p = np.clip(np.nan_to_num(median), 0.0, 1.0)
        n = np.maximum(requests, 1)
        noise = np.maximum(np.sqrt(p * (1 - p) / n), 1 / n)
    else:
        noise = np.sqrt(np.maximum(np.nan_to_num(median), 1.0))
    spread = np.maximum(MAD_TO_SIGMA * np.nan_to_num(mad), noise)
    threshold: np.ndarray = median + rule.anomaly * spread
    return threshold / minutes if rule.metric == "rate" else threshold
