"""The alert state machine: a pure function of (previous state, observation, now), shared by
live evaluation and the backtest so that both decide alike.

Prometheus/Alertmanager semantics: a condition that holds makes a group *pending*; once it has
held for ``for`` the group is *firing* (notify). A firing group keeps firing until the
condition has not held for ``keep_firing_for``; then it is *resolved* (notify, if its firing
was notified). While firing it is notified again every ``repeat_interval``. *nodata*: no
requests at all in the window although the group had some earlier. A silenced group changes
state like any other but notifies nothing; if it is still firing when the silence ends, the
firing notification goes out then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from conflictlens.analysis.alerts.rules import AlertRule

NORMAL, PENDING, FIRING, RESOLVED, NODATA = "normal", "pending", "firing", "resolved", "nodata"
STATES = (NORMAL, PENDING, FIRING, RESOLVED, NODATA)
# What a step asks to notify: "firing" (the first of an episode), "repeat" (still firing after
# repeat_interval; sent with status firing) or "resolved".
NOTICES = ("firing", "repeat", "resolved")


@dataclass(frozen=True)
class AlertState:
    state: str = NORMAL
    active_since: dt.datetime | None = None
    firing_since: dt.datetime | None = None
    last_condition_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    last_value: float | None = None
    last_notified_at: dt.datetime | None = None

    @property
    def notified_this_episode(self) -> bool:
        return (
            self.last_notified_at is not None
            and self.active_since is not None
            and self.last_notified_at >= self.active_since
        )


@dataclass(frozen=True)
class Observation:
    """What one evaluation saw of one group."""

    value: float | None  # None: undefined (a ratio without requests)
    condition: bool
    nodata: bool = False  # no requests in the window, some in the windows before
    conflicts: int = 0
    requests: int = 0
    threshold: float | None = None
    baseline: dict[str, object] | None = None  # median, mad, method


def step(
    prev: AlertState, obs: Observation, now: dt.datetime, rule: AlertRule, *, silenced: bool
) -> tuple[AlertState, str | None]:
    """The next state, and the notification to enqueue (None when silenced or none is due)."""
    state = replace(prev, last_value=obs.value)
    if obs.condition:
        state = replace(state, last_condition_at=now)
    if prev.state == FIRING:
        return _while_firing(prev, state, obs, now, rule, silenced)
    if not obs.condition:
        # No requests: nodata when the group had data before (the window's samples had some,
        # or the group is being followed already); it stays nodata while the data is absent.
        if obs.requests == 0 and (obs.nodata or prev.state != NORMAL):
            return replace(state, state=NODATA, active_since=None), None
        if prev.state == RESOLVED:
            return state, None
        return replace(state, state=NORMAL, active_since=None), None
    since = prev.active_since if prev.state == PENDING and prev.active_since else now
    state = replace(state, active_since=since)
    if now - since < rule.pending_for:
        return replace(state, state=PENDING), None
    state = replace(state, state=FIRING, firing_since=now, resolved_at=None)
    if silenced:
        return state, None
    return replace(state, last_notified_at=now), "firing"


def _while_firing(
    prev: AlertState,
    state: AlertState,
    obs: Observation,
    now: dt.datetime,
    rule: AlertRule,
    silenced: bool,
) -> tuple[AlertState, str | None]:
    last_held = prev.last_condition_at or prev.firing_since or now
    if obs.condition or now - last_held < rule.keep_firing_for:
        if silenced:
            return state, None
        if not prev.notified_this_episode:  # fired while silenced: the silence has ended
            return replace(state, last_notified_at=now), "firing"
        assert prev.last_notified_at is not None
        if now - prev.last_notified_at >= rule.repeat_interval:
            return replace(state, last_notified_at=now), "repeat"
        return state, None
    resolved = replace(state, state=RESOLVED, resolved_at=now)
    if silenced or not prev.notified_this_episode:
        return resolved, None
    return replace(resolved, last_notified_at=now), "resolved"
