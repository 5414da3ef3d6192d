"""Shipping one agent batch into the ClickHouse store, exactly once.

A batch is the rows of the bytes [start, end) of one source (Arrow IPC blobs, as the agent's
Writer kept them: store/writer.py). Each table's insert carries the token
``{agent}/{source_key}/{start}-{end}/{table}``: the same batch sent again (after a crash, a
timeout whose insert did land, a network error) has the same tokens, and ClickHouse drops
the repeated blocks (the tables keep a deduplication window: store/clickhouse/schema.py).
The source's status row goes last; the caller forgets the batch only when all succeeded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from conflictlens.store.clickhouse.schema import INSERT_SETTINGS

TOKEN_SETTING = "insert_deduplication_token"
# What each blob holds, by the table it goes to.
TABLES = ("conflict_events", "request_rollups", "rejects")


@dataclass(frozen=True)
class ShipBatch:
    agent: str
    source_key: str  # a stable hash of the agent's source identity
    source_id: int  # the central source_id (63 bits of the key)
    start: int
    end: int
    blobs: tuple[bytes | None, bytes | None, bytes | None]  # events, rollups, rejects
    status: dict[str, Any]  # the sources row after this batch (without agent and source_id)


def token(agent: str, source_key: str, start: int, end: int, table: str) -> str:
    return f"{agent}/{source_key}/{start}-{end}/{table}"


def _frame(blob: bytes, batch: ShipBatch) -> pa.Table:
    """A blob as the rows to insert: the central source_id, and the agent that sent them."""
    table = pyarrow.ipc.open_file(pa.py_buffer(blob)).read_all()
    if "source_id" in table.column_names:
        index = table.column_names.index("source_id")
        table = table.set_column(
            index, "source_id", pa.repeat(pa.scalar(batch.source_id, pa.int64()), table.num_rows)
        )
    return table.append_column("agent", pa.repeat(pa.scalar(batch.agent), table.num_rows))


def _status(batch: ShipBatch) -> pa.Table:
    row = {**batch.status, "source_id": batch.source_id, "agent": batch.agent}
    return pa.Table.from_pylist([row])


class Shipper:
    """Inserts agent batches through a clickhouse_connect client."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database

    def ship(self, batch: ShipBatch) -> None:
        """Every table's rows, then the status row; raises on the first failure."""
        for table, blob in zip(TABLES, batch.blobs, strict=True):
            if blob is not None:
                self._insert(table, _frame(blob, batch), batch)
        self._insert("sources", _status(batch), batch)

    def _insert(self, table: str, rows: pa.Table, batch: ShipBatch) -> None:
        settings: dict[str, Any] = {
            TOKEN_SETTING: token(batch.agent, batch.source_key, batch.start, batch.end, table)
        }
        if table in ("conflict_events", "request_rollups"):
            settings.update(INSERT_SETTINGS)  # the summary views skip a repeated block too
        self.client.insert_arrow(table, rows, database=self.database, settings=settings)

    def close(self) -> None:
        self.client.close()


def status_row(
    *,
    path: str,
    fmt: str | None,
    log_format: str | None,
    device: int,
    inode: int,
    fingerprint: str,
    fingerprint_len: int,
    first_seen: dt.datetime,
    offset: int,
    lines: int,
    rejects: int,
    conflicts: int,
) -> dict[str, Any]:
    """The columns of a ``sources`` row; ``updated_at`` is now (ReplacingMergeTree keeps the
    newest)."""
    return {
        "device": device,
        "inode": inode,
        "fingerprint": fingerprint,
        "fingerprint_len": fingerprint_len,
        "path": path,
        "format": fmt,
        "log_format": log_format,
        "offset": offset,
        "lines": lines,
        "rejects": rejects,
        "conflicts": conflicts,
        "first_seen": first_seen,
        "updated_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
    }
