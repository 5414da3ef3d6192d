"""serve's own state in a ClickHouse store, shared by every serve replica: claims, the alert
outbox, alert state and the report archive.

ClickHouse has no transactions and no compare-and-set, but an insert carrying an
``insert_deduplication_token`` that the table has seen in its last DEDUP_WINDOW blocks is
dropped, atomically (under the table's lock; on a Replicated table, through Keeper). That is
the one primitive used here: **a claim** is a row inserted with a token naming what is
claimed (``slot|alerts|2025-01-01T10:00:00``, ``deliver|<notification key>|<attempt>``);
whatever the number of replicas inserting it, one row is stored, and reading it back tells
every replica the same winner. The same tokens make an enqueue idempotent: a notification's
outbox row is keyed by (rule, group fingerprint, channel, status, episode start), so storing
it twice stores it once.

The tables the catalog reads (alert_outbox, alert_state, alert_silences, annotations) are the schema's;
``apply`` adds their deduplication window (a setting, no column changes) and creates the new
ones: ``serve_claims`` (claims and delivery outcomes), ``report_archive`` and
``alert_rules`` (rules edited through the API: store/clickhouse/rules.py) and
``otlp_requests`` (what each OTLP request stored: conflictlens/replicated_otlp.py).

Async inserts must stay off for these tables (a token is per block); on a cluster the state
tables are written through one shard (no Distributed table in front of them) and read back
with ``select_sequential_consistency = 1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conflictlens.store.clickhouse.schema import DEDUP_WINDOW, TS6

# Read back on the replica that took the insert (a Replicated table: any replica up to date).
READ_SETTINGS = {"select_sequential_consistency": 1}
_DEDUP = (
    f"non_replicated_deduplication_window = {DEDUP_WINDOW}, "
    f"replicated_deduplication_window = {DEDUP_WINDOW}"
)
# Tables of the schema that get a deduplication window here.
DEDUPLICATED = ("alert_outbox", "alert_state", "alert_silences", "annotations")


def ddl(database: str, retention_days: int) -> list[str]:
    """The statements ``conflictlens clickhouse init`` applies after the schema's."""
    keep = max(retention_days, 30)
    return [
        *(f"ALTER TABLE {database}.{name} MODIFY SETTING {_DEDUP}" for name in DEDUPLICATED),
        f"""CREATE TABLE IF NOT EXISTS {database}.serve_claims (
    key String,
    attempt UInt32,
    kind LowCardinality(String),
    replica String,
    at {TS6},
    detail String DEFAULT ''
) ENGINE = MergeTree
ORDER BY (key, attempt, kind)
TTL toDateTime(at) + INTERVAL {keep} DAY
SETTINGS {_DEDUP}""",
        f"""CREATE TABLE IF NOT EXISTS {database}.report_archive (
    id String,
    schedule String,
    period String,
    replica String,
    created_at {TS6},
    report String
) ENGINE = ReplacingMergeTree
ORDER BY id
SETTINGS {_DEDUP}""",
        f"""CREATE TABLE IF NOT EXISTS {database}.alert_rules (
    name String,
    version {TS6},
    rule String,
    deleted UInt8,
    replica String
) ENGINE = ReplacingMergeTree(version)
ORDER BY name
SETTINGS {_DEDUP}""",
        f"""CREATE TABLE IF NOT EXISTS {database}.otlp_requests (
    source_id Int64,
    digest String,
    path String,
    format Nullable(String),
    lines Int64,
    rejects Int64,
    conflicts Int64,
    at {TS6}
) ENGINE = ReplacingMergeTree
ORDER BY (source_id, digest)
TTL toDateTime(at) + INTERVAL {max(retention_days, 1)} DAY
SETTINGS {_DEDUP}""",
    ]


def apply(client: Any, database: str, retention_days: int) -> list[str]:
    statements = ddl(database, retention_days)
    for statement in statements:
        client.command(statement)
    return statements


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def key_id(key: str) -> int:
    """A notification key as the outbox's Int64 id: 63 bits of its BLAKE2b digest."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class Claims:
    """Claims and outcomes (``serve_claims``) on one client, as replica ``replica``."""

    client: Any
    replica: str

    def _insert(self, row: Sequence[Any], token: str) -> None:
        self.client.insert(
            "serve_claims",
            [list(row)],
            column_names=["key", "attempt", "kind", "replica", "at", "detail"],
            settings={"insert_deduplication_token": token},
        )

    def claim(self, key: str, attempt: int, now: dt.datetime) -> bool:
        """Claim (key, attempt): True when this replica's row is the one stored."""
        self._insert([key, attempt, "claim", self.replica, _utc(now), ""], f"{key}|{attempt}")
        return self.holder(key, attempt) == self.replica

    def holder(self, key: str, attempt: int) -> str | None:
        rows = self.client.query(
            "SELECT replica FROM serve_claims WHERE key = {key:String} "
            "AND attempt = {attempt:UInt32} AND kind = 'claim' ORDER BY at, replica LIMIT 1",
            parameters={"key": key, "attempt": attempt},
            settings=READ_SETTINGS,
        ).result_rows
        return str(rows[0][0]) if rows else None

    def outcome(self, key: str, attempt: int, kind: str, now: dt.datetime, detail: str) -> None:
        """Record how attempt ``attempt`` of ``key`` ended: ``delivered`` or ``failed``."""
        row = [key, attempt, kind, self.replica, _utc(now), detail[:300]]
        self._insert(row, f"{key}|{attempt}|{kind}")

    def history(self, keys: Sequence[str]) -> dict[str, list[tuple[int, str, dt.datetime]]]:
        """(attempt, kind, at) per key, in attempt order."""
        if not keys:
            return {}
        rows = self.client.query(
            "SELECT key, attempt, kind, at FROM serve_claims WHERE key IN {keys:Array(String)} "
            "ORDER BY key, attempt, kind",
            parameters={"keys": list(keys)},
            settings=READ_SETTINGS,
        ).result_rows
        found: dict[str, list[tuple[int, str, dt.datetime]]] = {}
        for key, attempt, kind, at in rows:
            found.setdefault(key, []).append((int(attempt), str(kind), _utc(at)))
        return found


@dataclass(frozen=True)
class Notification:
    key: str
    channel: str
    rule: str
    fingerprint: str
    status: str
    payload: Mapping[str, Any]
    created_at: dt.datetime

    @property
    def id(self) -> int:
        return key_id(self.key)


_OUTBOX = [
    "id",
    "created_at",
    "channel",
    "rule",
    "fingerprint",
    "status",
    "payload",
    "attempts",
    "next_attempt_at",
    "delivered_at",
    "last_error",
]


def enqueue(client: Any, notification: Notification) -> None:
    """Store a notification once, however many replicas enqueue it (its key is its token)."""
    n = notification
    at = _utc(n.created_at)
    row = [n.id, at, n.channel, n.rule, n.fingerprint, n.status, json.dumps(n.payload)]
    client.insert(
        "alert_outbox",
        [[*row, 0, at, None, None]],
        column_names=_OUTBOX,
        settings={"insert_deduplication_token": f"enqueue|{n.key}"},
    )


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox row as stored (its payload is the JSON text)."""

    id: int
    created_at: dt.datetime
    channel: str
    rule: str
    fingerprint: str
    status: str
    payload: str


def mark_outbox(
    client: Any, entry: OutboxEntry, attempt: int, now: dt.datetime, error: str
) -> None:
    """The outbox row's new version after an attempt (what the catalog's alert views read);
    who delivered is decided by serve_claims, not by this row."""
    at = _utc(now)
    e = entry
    row = [e.id, _utc(e.created_at), e.channel, e.rule, e.fingerprint, e.status, e.payload]
    row += [attempt, at, None if error else at, error or None]
    client.insert(
        "alert_outbox",
        [row],
        column_names=_OUTBOX,
        settings={"insert_deduplication_token": f"mark|{e.id}|{attempt}|{bool(error)}"},
    )


def undelivered(client: Any, since: dt.datetime) -> list[OutboxEntry]:
    """Outbox rows created since ``since`` without a delivery, oldest first."""
    rows = client.query(
        "SELECT id, created_at, channel, rule, fingerprint, status, payload "
        "FROM alert_outbox FINAL "
        "WHERE created_at >= {since:DateTime64(6, 'UTC')} AND delivered_at IS NULL "
        "ORDER BY created_at, id",
        parameters={"since": _utc(since)},
        settings=READ_SETTINGS,
    ).result_rows
    return [OutboxEntry(*r) for r in rows]
