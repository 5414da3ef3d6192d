"""Firing alerts pushed to Alertmanager again while they fire, as Prometheus does.

An alert pushed to Alertmanager ends by itself at its ``endsAt`` (4 resend intervals after
the push): a conflictlens that stopped, or lost its alert state, never leaves an alert firing
there forever. So while an alert fires, every ``alertmanager`` channel gets it again each
``resend_interval`` with a later ``endsAt``; its "resolved" (the outbox row) sets the end.
What is pushed again is the last firing notification delivered on that channel, as long as
its group is still firing in the store. A push that fails is logged and tried at the next
interval: the outbox stays the record of what was delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import duckdb

from conflictlens.notify.channels import ChannelConfig, HttpChannel
from conflictlens.notify.render import Alert, RenderError
from conflictlens.notify.send import DeliveryError, push_alerts

log = logging.getLogger("conflictlens.notify")

TICK_SECONDS = 1.0  # how often serve asks whether a channel is due

_FIRING = """
    SELECT o.channel, o.payload
    FROM (
        SELECT channel, fingerprint, payload, status, delivered_at,
               row_number() OVER (PARTITION BY channel, fingerprint ORDER BY id DESC) AS n
        FROM alert_outbox WHERE list_contains($channels::VARCHAR[], channel)
    ) AS o
    WHERE o.n = 1 AND o.status = 'firing' AND o.delivered_at IS NOT NULL
      AND EXISTS (
          SELECT 1 FROM alert_state AS s WHERE s.fingerprint = o.fingerprint AND s.state = 'firing'
      )
    ORDER BY o.channel, o.fingerprint
"""


class Resender:
    """Pushes the firing alerts of each due alertmanager channel (``run`` every tick)."""

    def __init__(
        self,
        channels: Callable[[], Mapping[str, ChannelConfig]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channels = channels
        self._clock = clock
        self._due: dict[str, float] = {}
        self.pushed = 0  # alerts pushed again, all channels, since start

    def run(self, con: duckdb.DuckDBPyConnection) -> int:
        """Push again on every due channel; returns how many alerts were pushed."""
        now = self._clock()
        channels = {
            name: channel
            for name, channel in self._channels().items()
            if isinstance(channel, HttpChannel) and channel.type == "alertmanager"
        }
        due = sorted(name for name in channels if self._due.get(name, 0.0) <= now)
        if not due:
            return 0
        by_channel: dict[str, list[Alert]] = {name: [] for name in due}
        for channel, payload in con.execute(_FIRING, {"channels": due}).fetchall():
            try:
                by_channel[channel].append(Alert.parse(payload))
            except RenderError:
                continue  # the outbox row that carried it says why
        pushed = 0
        for name in due:
            channel = channels[name]
            self._due[name] = now + channel.resend_seconds
            if not by_channel[name]:
                continue
            try:
                push_alerts(channel, by_channel[name], f"resend-{name}")
            except DeliveryError as exc:
                log.warning("channel %s: firing alerts not pushed again: %s", name, exc)
                continue
            pushed += len(by_channel[name])
        self.pushed += pushed
        return pushed
