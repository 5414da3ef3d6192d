"""Writes of the alert tables: an evaluation's state changes and its outbox rows in one
transaction (so a notification is enqueued exactly when its state change commits), test
notifications, and silences. Values are plain Python: the store knows nothing of rules."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

STATE_COLUMNS: tuple[str, ...] = (
    "rule",
    "fingerprint",
    "labels",
    "state",
    "active_since",
    "firing_since",
    "last_condition_at",
    "resolved_at",
    "last_value",
    "last_notified_at",
    "updated_at",
)


@dataclass(frozen=True)
class OutboxRow:
    channel: str
    rule: str
    fingerprint: str
    status: str  # firing | resolved | test
    payload: Mapping[str, Any]


@dataclass
class Changes:
    """What one evaluation writes: state rows to put (keyed by STATE_COLUMNS), (rule,
    fingerprint) rows to drop, and notifications to enqueue."""

    states: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.states or self.dropped or self.outbox)


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def commit(con: duckdb.DuckDBPyConnection, changes: Changes, now: dt.datetime) -> list[int]:
    """Apply an evaluation atomically; return the outbox ids."""
    if not changes:
        return []
    with _transaction(con):
        if changes.dropped:
            con.executemany(
                "DELETE FROM alert_state WHERE rule = ? AND fingerprint = ?",
                [list(key) for key in changes.dropped],
            )
        if changes.states:
            con.executemany(
                f"INSERT OR REPLACE INTO alert_state ({', '.join(STATE_COLUMNS)}) "  # noqa: S608 - fixed column names
                f"VALUES ({', '.join('?' for _ in STATE_COLUMNS)})",
                [[_cell(row[c]) for c in STATE_COLUMNS] for row in changes.states],
            )
        return _enqueue(con, changes.outbox, now)


def enqueue(
    con: duckdb.DuckDBPyConnection, rows: Sequence[OutboxRow], now: dt.datetime
) -> list[int]:
    """Enqueue notifications outside an evaluation (``alerts test``)."""
    with _transaction(con):
        return _enqueue(con, rows, now)


def _enqueue(
    con: duckdb.DuckDBPyConnection, rows: Sequence[OutboxRow], now: dt.datetime
) -> list[int]:
    ids = []
    for row in rows:
        # One statement per row: RETURNING gives each id (at most a few rows per evaluation).
        found = con.execute(
            "INSERT INTO alert_outbox (created_at, channel, rule, fingerprint, status, payload, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [now, row.channel, row.rule, row.fingerprint, row.status, json.dumps(row.payload), now],
        ).fetchall()
        ids.append(int(found[0][0]))
    return ids


def add_silence(
    con: duckdb.DuckDBPyConnection,
    matchers: Mapping[str, str],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    comment: str,
    now: dt.datetime,
) -> int:
    rows = con.execute(
        "INSERT INTO alert_silences (matchers, starts_at, ends_at, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        [json.dumps(dict(matchers), sort_keys=True), starts_at, ends_at, comment, now],
    ).fetchall()
    return int(rows[0][0])


def expire_silence(con: duckdb.DuckDBPyConnection, silence_id: int, now: dt.datetime) -> bool:
    """End a silence now; False when there is no such silence or it has ended already."""
    rows = con.execute(
        "UPDATE alert_silences SET ends_at = greatest(starts_at, ?) "
        "WHERE id = ? AND ends_at > ? RETURNING id",
        [now, silence_id, now],
    ).fetchall()
    return bool(rows)


def _cell(value: Any) -> Any:
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return value
