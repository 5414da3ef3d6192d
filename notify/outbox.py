"""Delivering the ``alert_outbox`` rows: at least once, each channel on its own.

The alert engine writes a row per (alert, channel); this module sends the due rows and marks
them. Sending happens outside any transaction and each row is marked right after its send, so
a crash between the two sends that row again on restart: every request carries the same
``Idempotency-Key`` (``<outbox id>-<fingerprint>``) on every attempt for the receiver to drop
the repeat. Nothing is ever given up: a failing row is retried with an exponential backoff
(5 s doubling, under 10 min) with a jitter derived from the row, so runs are reproducible.

A failing channel stops for the round after its first failure, and each channel sends from its
own thread, so a channel that is down or slow never holds back the others. Rows of one alert
(one fingerprint) leave a channel in order: a "resolved" never overtakes its "firing".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import duckdb

from conflictlens.notify.channels import ChannelConfig, describe_channel
from conflictlens.notify.render import RenderError
from conflictlens.notify.send import DeliveryError, Outgoing, deliver, scrub

log = logging.getLogger("conflictlens.notify")

NOT_CONFIGURED = "channel not configured"
BASE_DELAY_S = 5.0
MAX_DELAY_S = 600.0
DEFAULT_BUDGET_S = 30.0  # a channel's sending time per round before it yields to the next round

_DUE = """
    SELECT id, channel, fingerprint, payload, attempts
    FROM (
        SELECT id, channel, fingerprint, payload, attempts,
               row_number() OVER (PARTITION BY channel ORDER BY id) AS n
        FROM alert_outbox AS o
        WHERE delivered_at IS NULL
          AND next_attempt_at <= $now
          AND list_contains($channels::VARCHAR[], channel)
          -- an earlier row of the same alert still waiting for its retry goes first
          AND NOT EXISTS (
              SELECT 1 FROM alert_outbox AS e
              WHERE e.channel = o.channel AND e.fingerprint = o.fingerprint
                AND e.delivered_at IS NULL AND e.id < o.id AND e.next_attempt_at > $now
          )
    )
    WHERE n <= $limit
    ORDER BY channel, id
"""

_UNCONFIGURED = """
    SELECT count(*) FROM alert_outbox
    WHERE delivered_at IS NULL AND NOT list_contains($channels::VARCHAR[], channel)
"""

# Said once per row, not rewritten every round; attempts and next_attempt_at stay as they are
# so that the rows leave at once when the channel is configured again.
_FLAG_UNCONFIGURED = """
    UPDATE alert_outbox SET last_error = $reason
    WHERE delivered_at IS NULL AND NOT list_contains($channels::VARCHAR[], channel)
      AND last_error IS DISTINCT FROM $reason
"""

_DELIVERED = """
    UPDATE alert_outbox SET delivered_at = $now, attempts = attempts + 1, last_error = NULL
    WHERE id = $id
"""

_FAILED = """
    UPDATE alert_outbox
    SET attempts = attempts + 1, last_error = $error, next_attempt_at = $next
    WHERE id = $id AND delivered_at IS NULL
"""


class _Row(NamedTuple):
    id: int
    channel: str
    fingerprint: str
    payload: str
    attempts: int


@dataclass
class ChannelRound:
    """What one round did on one channel."""

    delivered: int = 0
    failed: int = 0
    deferred: int = 0  # due rows left for a later round (after a failure, or out of time)
    error: str | None = None  # the reason the channel stopped this round


@dataclass
class DeliverySummary:
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    unconfigured: int = 0  # undelivered rows whose channel is not in the config
    channels: dict[str, ChannelRound] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff(attempts: int, key: str) -> dt.timedelta:
    """The wait after a row's failure number ``attempts + 1``: ``b = min(5 s · 2^attempts,
    10 min)``, jittered into ``[b/2, b)`` by a hash of ``key`` and ``attempts`` (rows that
    failed together spread out, and the same row always waits the same)."""
    base = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(max(attempts, 0), 30))
    digest = hashlib.sha256(f"{key}:{attempts}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return dt.timedelta(seconds=base / 2 + base / 2 * fraction)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """The store's timestamps are naive UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def deliver_due(
    con: duckdb.DuckDBPyConnection,
    channels: Mapping[str, ChannelConfig],
    now: dt.datetime,
    *,
    limit: int = 100,
    budget_s: float = DEFAULT_BUDGET_S,
) -> DeliverySummary:
    """Send the undelivered rows with ``next_attempt_at <= now``: per channel in id order, at
    most ``limit`` per channel, channels in parallel (each on its own cursor of ``con``).

    Run one call at a time per store (:class:`Deliverer` does): two overlapping calls would
    send the same rows twice.
    """
    now = _naive_utc(now)
    names = sorted(channels)
    summary = DeliverySummary()
    _execute(con, _FLAG_UNCONFIGURED, {"channels": names, "reason": NOT_CONFIGURED})
    summary.unconfigured = int(con.execute(_UNCONFIGURED, {"channels": names}).fetchall()[0][0])
    if not names:
        return summary
    rows = [
        _Row(*r)
        for r in con.execute(_DUE, {"now": now, "channels": names, "limit": limit}).fetchall()
    ]
    by_channel: dict[str, list[_Row]] = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row)
    # A command must not inherit the variables other channels' secrets came from.
    hidden = {name for channel in channels.values() for name in channel.secret_env}
    deadline = time.monotonic() + budget_s
    if len(by_channel) == 1:
        name, todo = next(iter(by_channel.items()))
        summary.channels[name] = _deliver_channel(con, channels[name], todo, now, deadline, hidden)
    elif by_channel:
        cursors = {name: con.cursor() for name in by_channel}  # one per thread
        try:
            with ThreadPoolExecutor(len(by_channel), thread_name_prefix="notify") as pool:
                futures = {
                    name: pool.submit(
                        _deliver_channel, cursors[name], channels[name], todo, now, deadline, hidden
                    )
                    for name, todo in by_channel.items()
                }
                for name, future in futures.items():
                    summary.channels[name] = future.result()
        finally:
            for cursor in cursors.values():
                cursor.close()
    for result in summary.channels.values():
        summary.delivered += result.delivered
        summary.failed += result.failed
        summary.deferred += result.deferred
    return summary


def _deliver_channel(
    con: duckdb.DuckDBPyConnection,
    channel: ChannelConfig,
    rows: list[_Row],
    now: dt.datetime,
    deadline: float,
    hidden: Collection[str],
) -> ChannelRound:
    result = ChannelRound()
    held: set[str] = set()  # fingerprints with a row that failed this round: keep their order
    for index, row in enumerate(rows):
        if row.fingerprint in held:
            result.deferred += 1
            continue
        if time.monotonic() > deadline:
            result.deferred += len(rows) - index
            break
        outgoing = Outgoing(row.id, row.channel, row.fingerprint, row.payload)
        try:
            deliver(channel, outgoing, hidden_env=hidden)
        except RenderError as exc:
            # The row is at fault, not the channel: the channel goes on with its other rows.
            _record_failure(con, row, now, f"cannot render: {exc}")
            result.failed += 1
            held.add(row.fingerprint)
            continue
        except Exception as exc:
            reason = (
                str(exc)
                if isinstance(exc, DeliveryError)
                else scrub(f"{type(exc).__name__}: {exc}", channel.secrets())
            )
            _record_failure(con, row, now, reason)
            result.failed += 1
            result.error = reason
            result.deferred += len(rows) - index - 1
            break
        _execute(con, _DELIVERED, {"now": now, "id": row.id})
        result.delivered += 1
        log.info(
            "alert delivered: channel %s, outbox row %d, attempt %d",
            row.channel,
            row.id,
            row.attempts + 1,
        )
    return result


def _record_failure(
    con: duckdb.DuckDBPyConnection, row: _Row, now: dt.datetime, reason: str
) -> None:
    retry = now + backoff(row.attempts, f"{row.id}-{row.fingerprint}")
    _execute(con, _FAILED, {"id": row.id, "error": reason, "next": retry})
    log.warning(
        "alert delivery failed: channel %s, outbox row %d, attempt %d: %s; next try at %s UTC",
        row.channel,
        row.id,
        row.attempts + 1,
        reason,
        retry.isoformat(sep=" ", timespec="seconds"),
    )


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> None:
    """One autocommitted statement; retried when another writer of the same rows got there
    first (DuckDB's optimistic concurrency)."""
    for attempt in range(5):
        try:
            con.execute(sql, params)
            return
        except duckdb.TransactionException:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def backlog(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per channel: rows waiting, of which failed at least once, the oldest waiting row's
    creation time and the latest error: for a status page (errors hold no secrets)."""
    rows = con.execute(
        """
        SELECT channel, count(*), count(*) FILTER (WHERE attempts > 0), min(created_at),
               arg_max(last_error, id) FILTER (WHERE last_error IS NOT NULL)
        FROM alert_outbox WHERE delivered_at IS NULL
        GROUP BY channel ORDER BY channel
        """
    ).fetchall()
    return [
        {
            "channel": channel,
            "pending": pending,
            "failing": failing,
            "oldest": oldest.isoformat() + "+00:00" if oldest else None,
            "last_error": last_error,
        }
        for channel, pending, failing, oldest, last_error in rows
    ]


ChannelSource = Mapping[str, ChannelConfig] | Callable[[], Mapping[str, ChannelConfig]]


class Deliverer:
    """Runs :func:`deliver_due` every ``interval`` seconds on a thread of its own.

    ``cursor()`` gives a fresh cursor of the process's one connection (serve's ``con.cursor``);
    each round uses one and closes it. ``channels`` is the mapping or a callable returning the
    current one (so a config reload takes effect at the next round). ``clock`` gives "now".
    """

    def __init__(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        channels: ChannelSource,
        *,
        interval: float = 5.0,
        clock: Callable[[], dt.datetime] = utc_now,
        limit: int = 100,
        budget_s: float = DEFAULT_BUDGET_S,
    ) -> None:
        self._cursor = cursor
        self._channels = channels
        self.interval = interval
        self._clock = clock
        self.limit = limit
        self.budget_s = budget_s
        self._exit = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one round at a time: overlapping rounds double-send
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.last_run: dt.datetime | None = None
        self.last_summary: DeliverySummary | None = None
        self.last_error: str | None = None

    def channels(self) -> Mapping[str, ChannelConfig]:
        return self._channels() if callable(self._channels) else self._channels

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the round in flight (its sends are bounded by the channels' timeouts)."""
        self._exit.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Deliver now rather than at the next tick (the engine has just written rows)."""
        self._wake.set()

    def run_once(self) -> DeliverySummary:
        with self._lock, self._cursor() as con:
            now = self._clock()
            summary = deliver_due(
                con, self.channels(), now, limit=self.limit, budget_s=self.budget_s
            )
        self.rounds += 1
        self.last_run = now
        self.last_summary = summary
        self.last_error = None
        return summary

    def status(self) -> dict[str, Any]:
        """For ``/api/status``: never a secret (channels are described, errors scrubbed)."""
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "interval_s": self.interval,
            "rounds": self.rounds,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_summary": self.last_summary.as_dict() if self.last_summary else None,
            "last_error": self.last_error,
            "channels": [describe_channel(c) for _, c in sorted(self.channels().items())],
        }

    def _run(self) -> None:
        while not self._exit.is_set():
            # Cleared before the round, not after the wait: a wake that comes during the
            # round (rows written after it read the due ones) brings another round at once.
            self._wake.clear()
            try:
                self.run_once()
            except Exception as exc:
                secrets = [s for c in self.channels().values() for s in c.secrets()]
                reason = scrub(f"{type(exc).__name__}: {exc}", secrets)
                if reason != self.last_error:  # once per distinct error, not every tick
                    log.error("alert delivery round failed: %s", reason)
                self.last_error = reason
            self._wake.wait(self.interval)
