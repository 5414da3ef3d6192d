"""The agent's local state: one DuckDB file holding its checkpoints and its disk buffer.

It is a store (``store.connect``: the same ``sources`` table, so the follower finds its files
and offsets as ``serve`` would) plus the ``outbound`` table. In a file with that table the
store's Writer does not keep a batch's rows: it writes them here as Arrow IPC blobs in the
transaction that moves the source's offset (store/writer.py). The shipper sends each row to
the central store and deletes it once every insert succeeded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from conflictlens.store import StoreError, connect
from conflictlens.store.writer import OUTBOUND_TABLE

_OUTBOUND_DDL = f"""
CREATE TABLE IF NOT EXISTS {OUTBOUND_TABLE} (
    source_id       INTEGER NOT NULL,   -- the local source (sources.source_id)
    start_offset    BIGINT NOT NULL,    -- the bytes [start_offset, end_offset) of the source
    end_offset      BIGINT NOT NULL,
    lines           BIGINT NOT NULL,
    total_rejects   BIGINT NOT NULL,    -- the source's totals once this batch is counted
    total_lines     BIGINT NOT NULL,
    total_conflicts BIGINT NOT NULL,
    events          BLOB,               -- Arrow IPC files; NULL when the batch has none
    rollups         BLOB,
    rejects         BLOB,
    size            BIGINT NOT NULL,    -- bytes of the blobs: the buffer's bound counts these
    created_at      TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_identity (name VARCHAR NOT NULL);
"""


@dataclass(frozen=True)
class SourceIdentity:
    """What the central store knows a local source as."""

    key: str  # a stable hash of the agent and the source: part of every dedup token
    source_id: int  # 63 bits of it: the source_id column of the central store
    path: str
    format: str | None
    log_format: str | None
    device: int
    inode: int
    fingerprint: str
    fingerprint_len: int
    first_seen: dt.datetime


@dataclass(frozen=True)
class OutboundRow:
    source_id: int
    start: int
    end: int
    lines: int
    total_rejects: int
    total_lines: int
    total_conflicts: int
    events: bytes | None
    rollups: bytes | None
    rejects: bytes | None

    @property
    def size(self) -> int:
        return sum(len(b) for b in (self.events, self.rollups, self.rejects) if b is not None)


def source_key(agent: str, local_id: int, first_seen: dt.datetime) -> str:
    """Stable for the life of a source. ``first_seen`` tells a source from the one that has
    its local id after the state file was lost and made again (its ranges start at 0 too)."""
    text = f"{agent}\0{local_id}\0{first_seen.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_state(path: str | Path, agent: str) -> duckdb.DuckDBPyConnection:
    """Open (or create) the state file of the agent named ``agent``.

    A store that holds events (a serve's file) is refused, and so is the state of an agent
    of another name: its sources' keys would change and its backlog be sent again."""
    con = connect(path)
    try:
        has_outbound = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [OUTBOUND_TABLE],
        ).fetchall()[0][0]
        if not has_outbound:
            stored = con.execute("SELECT count(*) FROM conflict_events").fetchall()[0][0]
            if stored:
                raise StoreError(f"{path} is a store with events, not an agent's state file")
        con.execute(_OUTBOUND_DDL)
        names = con.execute("SELECT name FROM agent_identity").fetchall()
        if not names:
            con.execute("INSERT INTO agent_identity VALUES (?)", [agent])
        elif names[0][0] != agent:
            raise StoreError(
                f"{path} is the state of agent {names[0][0]!r}, not {agent!r} "
                "(set [agent] name, or give another state file)"
            )
    except BaseException:
        con.close()
        raise
    return con


def oldest(con: duckdb.DuckDBPyConnection) -> OutboundRow | None:
    """The batch committed first that is not shipped yet (a source's batches in order)."""
    rows = con.execute(
        "SELECT source_id, start_offset, end_offset, lines, total_rejects, total_lines, "
        "total_conflicts, events, rollups, rejects FROM outbound "
        "ORDER BY created_at, source_id, start_offset LIMIT 1"
    ).fetchall()
    if not rows:
        return None
    r = rows[0]
    n = [int(v) for v in r[:7]]
    blobs = [None if b is None else bytes(b) for b in r[7:]]
    return OutboundRow(n[0], n[1], n[2], n[3], n[4], n[5], n[6], blobs[0], blobs[1], blobs[2])


def shipped(con: duckdb.DuckDBPyConnection, row: OutboundRow) -> None:
    con.execute(
        "DELETE FROM outbound WHERE source_id = ? AND start_offset = ? AND end_offset = ?",
        [row.source_id, row.start, row.end],
    )


def backlog(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Batches waiting and their bytes."""
    rows = con.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbound").fetchall()
    return int(rows[0][0]), int(rows[0][1])


def identity(con: duckdb.DuckDBPyConnection, agent: str, local_id: int) -> SourceIdentity:
    rows = con.execute(
        "SELECT path, format, log_format, device, inode, fingerprint, fingerprint_len, "
        "first_seen FROM sources WHERE source_id = ?",
        [local_id],
    ).fetchall()
    if not rows:
        raise StoreError(f"the state file has no source {local_id}")
    path, fmt, log_format, device, inode, fingerprint, fingerprint_len, first_seen = rows[0]
    key = source_key(agent, local_id, first_seen)
    return SourceIdentity(
        key,
        int(key, 16) >> 1,
        path,
        fmt,
        log_format,
        int(device),
        int(inode),
        fingerprint,
        int(fingerprint_len),
        first_seen,
    )
