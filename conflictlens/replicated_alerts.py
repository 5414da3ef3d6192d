"""Alerts when serve runs on ClickHouse, as one of several replicas: evaluation, the outbox
and delivery, with every piece of state in the store (store/clickhouse/state.py).

Why a lease for evaluation and deterministic keys for notifications, both:

- **Evaluation: one replica per slot.** Ticks are aligned to the wall-clock grid of
  ``evaluation_interval`` and every replica evaluates "as of" the slot's start, so they agree
  on the time. Each replica claims ``slot|alerts|<slot>``; the one whose claim is stored
  evaluates. A lease alone would suffice while nobody dies; but the winner may die after
  storing a notification and before storing the new state, and the next slot's winner then
  decides the same transition again. Hence:
- **A notification's key** is (rule, group fingerprint, channel, status, episode start), the
  episode start being ``active_since``, a slot time; a repeat adds its slot. The outbox row's
  id is a hash of the key and its insert carries the key as its deduplication token: decided
  twice, stored once. The outbox is written before the state, so a crash between them makes
  the next slot redo the transition into the same key.
- **Delivery: a claim per attempt.** Every replica looks at the undelivered rows every few
  seconds; for each it claims (row, attempt n) with a token; the replica whose claim is stored
  sends, then records ``delivered`` (or ``failed``: attempt n+1 after a backoff). A claim
  without an outcome after CLAIM_TIMEOUT is taken over as attempt n+1.

The guarantee: each notification is stored once and sent once, **unless** the replica that
sent it dies (or loses the store) between the send and recording ``delivered``; then it is
sent again after CLAIM_TIMEOUT, with the same Idempotency-Key header: at least once. A
failed send is retried like the embedded outbox's (up to MAX_ATTEMPTS). A notification is
late by at most one slot when a slot's winner dies before evaluating.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conflictlens.analysis.alerts import AlertsConfig
from conflictlens.analysis.alerts.engine import Transition, evaluate
from conflictlens.analysis.alerts.reads import StoredState
from conflictlens.analysis.alerts.rules import Silence
from conflictlens.analysis.alerts.series import BaselineCache
from conflictlens.analysis.alerts.state import AlertState
from conflictlens.store.alerts import STATE_COLUMNS, Changes
from conflictlens.store.clickhouse.state import (
    READ_SETTINGS,
    Claims,
    Notification,
    enqueue,
    mark_outbox,
    undelivered,
)
from conflictlens.store.engine import Engine

log = logging.getLogger("conflictlens.alerts")

DELIVER_EVERY = 5.0  # seconds between a replica's delivery rounds
CLAIM_TIMEOUT = dt.timedelta(minutes=2)  # a send takes at most a minute (timeouts)
MAX_ATTEMPTS = 12
LOOK_BACK = dt.timedelta(days=2)  # undelivered rows older than this are left alone

_STATES = """
    SELECT rule, fingerprint, labels, state, active_since, firing_since, last_condition_at,
           resolved_at, last_value, last_notified_at, updated_at
    FROM alert_state FINAL
    WHERE NOT (state = 'normal' AND firing_since IS NULL)
    ORDER BY rule, fingerprint
"""


def naive(moment: Any) -> Any:
    """Naive UTC, as the alert engine keeps times (None stays None)."""
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def read_states(client: Any) -> list[StoredState]:
    rows = client.query(_STATES, settings=READ_SETTINGS).result_rows
    return [
        StoredState(
            r[0], r[1], json.loads(r[2]), AlertState(r[3], *map(naive, r[4:10])), naive(r[10])
        )
        for r in rows
    ]


def read_silences(client: Any, now: dt.datetime) -> list[Silence]:
    """The silences active now, read as the API reads them (each one's newest version)."""
    from conflictlens.store.clickhouse.silences import read_silences as stored

    return [
        Silence(matchers, naive(starts), naive(ends), comment, number)
        for number, matchers, starts, ends, comment in stored(client, active_at=now)
    ]


def notification_key(
    row_rule: str, fingerprint: str, channel: str, status: str, payload: Mapping[str, Any]
) -> str:
    """(rule, group, channel, status, episode start): the same decision, the same key."""
    return f"{row_rule}|{fingerprint}|{channel}|{status}|{payload.get('starts_at')}"


def write(
    client: Any, changes: Changes, transitions: list[Transition], slot: dt.datetime
) -> list[Notification]:
    """The outbox first (idempotent by key), then the state rows of slot ``slot``."""
    notices = {(t.rule, t.fingerprint): t.notification for t in transitions}
    queued = []
    for row in changes.outbox:
        key = notification_key(row.rule, row.fingerprint, row.channel, row.status, row.payload)
        if notices.get((row.rule, row.fingerprint)) == "repeat":
            key += f"|repeat@{slot.isoformat()}"
        queued.append(
            Notification(key, row.channel, row.rule, row.fingerprint, row.status, row.payload, slot)
        )
    for notification in queued:
        enqueue(client, notification)
    rows = [[_cell(state[c]) for c in STATE_COLUMNS] for state in changes.states]
    rows += [[rule, fp, "{}", "normal", *[None] * 6, slot] for rule, fp in changes.dropped]
    if rows:
        client.insert(
            "alert_state",
            [[naive_to_utc(v) for v in row] for row in rows],
            column_names=list(STATE_COLUMNS),
            settings={"insert_deduplication_token": f"state|{slot.isoformat()}"},
        )
    return queued


def _cell(value: Any) -> Any:
    return json.dumps(dict(value), sort_keys=True) if isinstance(value, Mapping) else value


def naive_to_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@dataclass
class ReplicatedAlerts:
    """What one replica runs: ``evaluate_slot`` at each grid slot, ``deliver`` every few
    seconds. ``alerts()`` is the config in force; ``send(channel name, outgoing)`` sends."""

    engine: Engine
    client: Any
    claims: Claims
    alerts: Callable[[], AlertsConfig]
    send: Callable[[str, Any], None]
    cache: BaselineCache = field(default_factory=dict)
    evaluated: int = 0  # slots this replica won
    delivered: int = 0
    rounds: int = 0  # delivery rounds run here
    last_run: dt.datetime | None = None
    last_round: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None

    def evaluate_slot(self, slot: dt.datetime) -> bool:
        """Evaluate as of ``slot`` (aware UTC) when this replica wins the slot."""
        config = self.alerts()
        if not config.rules:
            return False
        if not self.claims.claim(f"slot|alerts|{slot.isoformat()}", 0, utc_now()):
            return False
        moment = naive(slot)
        states, silences = read_states(self.client), read_silences(self.client, moment)
        transitions, changes = evaluate(
            self.engine, config, moment, states, silences, cache=self.cache
        )
        for t in transitions:
            if t.notification:
                log.warning("alert %s %s: %s", t.rule, t.notification, t.labels)
        write(self.client, changes, transitions, slot)
        self.evaluated += 1
        return True

    def deliver(self, now: dt.datetime | None = None) -> int:
        """Send the undelivered notifications this replica claims; the number sent."""
        now = now or utc_now()
        self.rounds, self.last_run = self.rounds + 1, now
        try:
            sent, failed = self._deliver_round(now)
        except Exception as exc:  # the store is away: the next round tries again
            self.last_error = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise
        self.last_round, self.last_error = {"delivered": sent, "failed": failed}, None
        self.delivered += sent
        return sent

    def _deliver_round(self, now: dt.datetime) -> tuple[int, int]:
        from conflictlens.notify.send import Outgoing

        channels = self.alerts().channels
        rows = [r for r in undelivered(self.client, now - LOOK_BACK) if r.channel in channels]
        history = self.claims.history([f"outbox|{r.id}" for r in rows])
        sent = failed = 0
        for entry in rows:
            key = f"outbox|{entry.id}"
            attempt = next_attempt(history.get(key, []), now)
            if attempt is None or not self.claims.claim(key, attempt, now):
                continue
            outgoing = Outgoing(entry.id, entry.channel, entry.fingerprint, entry.payload)
            try:
                self.send(entry.channel, outgoing)
            except Exception as exc:  # any failure of a channel is recorded, never raised
                reason = " ".join(str(exc).split()) or type(exc).__name__
                self.claims.outcome(key, attempt, "failed", utc_now(), reason)
                mark_outbox(self.client, entry, attempt, utc_now(), reason)
                log.warning("alert to %s: attempt %d failed: %s", entry.channel, attempt, reason)
                failed += 1
                continue
            self.claims.outcome(key, attempt, "delivered", utc_now(), "")
            mark_outbox(self.client, entry, attempt, utc_now(), "")
            sent += 1
        return sent, failed

    def status(self) -> dict[str, Any]:
        """GET /api/alerts/delivery on this replica: its rounds (the others run their own)."""
        from conflictlens.notify.channels import describe_channel

        return {
            "replica": self.claims.replica,
            "running": True,
            "interval_s": DELIVER_EVERY,
            "rounds": self.rounds,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_summary": self.last_round or None,
            "last_error": self.last_error,
            "channels": [describe_channel(c) for _, c in sorted(self.alerts().channels.items())],
        }


def backoff(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(hours=1), dt.timedelta(seconds=15) * (1 << min(attempts - 1, 10)))


def next_attempt(history: list[tuple[int, str, dt.datetime]], now: dt.datetime) -> int | None:
    """The attempt to claim now, from (attempt, kind, at) rows; None: nothing to do now."""
    if any(kind == "delivered" for _, kind, _ in history):
        return None
    claimed = {attempt: at for attempt, kind, at in history if kind == "claim"}
    if not claimed:
        return 1
    last = max(claimed)
    if last >= MAX_ATTEMPTS:
        return None
    failed = [at for attempt, kind, at in history if attempt == last and kind == "failed"]
    if failed:
        return last + 1 if now >= failed[0] + backoff(last) else None
    return last + 1 if now >= claimed[last] + CLAIM_TIMEOUT else None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
