"""The one funnel for writes: every batch of rows commits together with its source offset."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import polars as pl

from conflictlens.store import route_map, summaries
from conflictlens.store.route_map import RouteResolver


@dataclass(frozen=True)
class SourceRecord:
    source_id: int
    path: str
    format: str | None
    log_format: str | None
    offset: int
    lines: int


@dataclass(frozen=True)
class Batch:
    """Rows derived from the bytes [start, end) of one source, committed as one transaction."""

    source_id: int
    start: int
    end: int
    lines: int
    events: pl.DataFrame
    rollups: pl.DataFrame
    rejects: pl.DataFrame
    skipped: int = 0  # empty lines: counted in lines, neither rows nor rejects
    # conflict-family responses among the events (with keep_all, events are every request)
    captured: int | None = None

    @property
    def conflicts(self) -> int:
        return self.events.height if self.captured is None else self.captured

    @property
    def parsed(self) -> int:
        """Lines that became rows (events or rollups)."""
        return self.lines - self.rejects.height - self.skipped

    @classmethod
    def joined(cls, batches: Sequence[Batch]) -> Batch:
        """Consecutive batches of one source as one, to commit in one transaction."""
        first, last = batches[0], batches[-1]
        if len(batches) == 1:
            return first
        return cls(
            first.source_id,
            first.start,
            last.end,
            sum(b.lines for b in batches),
            pl.concat([b.events for b in batches], how="vertical_relaxed"),
            pl.concat([b.rollups for b in batches], how="vertical_relaxed"),
            pl.concat([b.rejects for b in batches], how="vertical_relaxed"),
            sum(b.skipped for b in batches),
            sum(b.conflicts for b in batches),
        )


MAX_REJECTS_PER_SOURCE = 10_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class SourceMatch:
    record: SourceRecord
    by_inode: bool  # the same device and inode (the file itself), not only the same content


def _record(row: tuple[object, ...]) -> SourceRecord:
    source_id, _, _, path, fmt, offset, lines, log_format = row
    return SourceRecord(
        int(source_id),  # type: ignore[call-overload]
        str(path),
        None if fmt is None else str(fmt),
        None if log_format is None else str(log_format),
        int(offset),  # type: ignore[call-overload]
        int(lines),  # type: ignore[call-overload]
    )


_INSERTS = {
    "conflict_events": "INSERT INTO conflict_events BY NAME SELECT * FROM _batch_rows",
    "request_rollups": "INSERT INTO request_rollups BY NAME SELECT * FROM _batch_rows",
    "rejects": "INSERT INTO rejects BY NAME SELECT * FROM _batch_rows",
}


# An agent's state file (conflictlens.agent.state) has this table. There, a batch's rows do
# not stay: they are kept for the shipper as Arrow IPC blobs (conflict events without their
# log lines), committed in the same transaction as the offset.
OUTBOUND_TABLE = "outbound"


def ipc_blob(frame: pl.DataFrame) -> bytes | None:
    """A frame as an Arrow IPC file (LZ4; no view types, which readers such as ClickHouse's
    Arrow input may not know), None when it has no rows."""
    if not frame.height:
        return None
    return frame.write_ipc(None, compression="lz4", compat_level=pl.CompatLevel.oldest()).getvalue()


class Writer:
    """Owns the write path of one open connection (of a store, or of an agent's state)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._routes: RouteResolver | None = None
        self._routes_generation = -1
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [OUTBOUND_TABLE]
        ).fetchall()
        self.outbound = bool(found[0][0])

    def resolve_source(
        self, *, device: int, inode: int, prefix: bytes, path: str, full_prefix_len: int
    ) -> SourceRecord:
        """Find the source these bytes belong to, or register a new one.

        Known by device and inode when the stored fingerprint still matches the file's first
        bytes; else by a full-length content fingerprint (a copy, or a rotated sibling that
        was compressed); else it is a new source read from byte 0.
        """
        match = self.find_source(
            device=device, inode=inode, prefix=prefix, full_prefix_len=full_prefix_len
        )
        if match is None:
            return self.register_source(device=device, inode=inode, prefix=prefix, path=path)
        self.rebind_source(
            match.record.source_id, device=device, inode=inode, prefix=prefix, path=path
        )
        return replace(match.record, path=path)

    def find_source(
        self,
        *,
        device: int,
        inode: int,
        prefix: bytes,
        full_prefix_len: int,
        grown: bool = False,
    ) -> SourceMatch | None:
        """The source these bytes belong to, without changing anything (see resolve_source).

        When several sources share the device and inode (a file truncated and rewritten with
        the same first bytes), the newest one wins. With ``grown``, content that begins with
        the whole (short) fingerprinted content of a source, including at least one complete
        line, is that source grown since (tailing: a small file copied or compressed after it
        was last read).
        """
        rows = self.con.execute(
            'SELECT source_id, fingerprint, fingerprint_len, path, format, "offset", lines, log_format '
            "FROM sources WHERE device = ? AND inode = ? AND inode <> 0 ORDER BY source_id DESC",
            [device, inode],
        ).fetchall()
        match = next(
            (r for r in rows if len(prefix) >= r[2] and _sha1(prefix[: r[2]]) == r[1]), None
        )
        if match is not None:
            return SourceMatch(_record(match), by_inode=True)
        if prefix:
            # The same content under another identity: a copy, stdin, or a rotated file that
            # was compressed. Content shorter than a full fingerprint must match a source
            # whose whole known content is exactly that.
            length = min(len(prefix), full_prefix_len)
            found = self.con.execute(
                'SELECT source_id, fingerprint, fingerprint_len, path, format, "offset", lines, log_format '
                "FROM sources WHERE fingerprint_len = ? AND fingerprint = ? "
                'AND (fingerprint_len = ? OR "offset" = fingerprint_len) '
                'ORDER BY "offset" DESC LIMIT 1',
                [length, _sha1(prefix[:length]), full_prefix_len],
            ).fetchall()
            if found:
                return SourceMatch(_record(found[0]), by_inode=False)
        if grown and prefix:
            return self._find_grown(prefix[:full_prefix_len])
        return None

    def _find_grown(self, prefix: bytes) -> SourceMatch | None:
        lengths = self.con.execute(
            "SELECT DISTINCT fingerprint_len FROM sources "
            "WHERE fingerprint_len > 0 AND fingerprint_len < ? ORDER BY 1 DESC",
            [len(prefix)],
        ).fetchall()
        for (length,) in lengths:
            if b"\n" not in prefix[:length]:
                continue
            found = self.con.execute(
                'SELECT source_id, fingerprint, fingerprint_len, path, format, "offset", lines, log_format '
                "FROM sources WHERE fingerprint_len = ? AND fingerprint = ? "
                'ORDER BY "offset" DESC LIMIT 1',
                [length, _sha1(prefix[:length])],
            ).fetchall()
            if found:
                return SourceMatch(_record(found[0]), by_inode=False)
        return None

    def register_source(
        self, *, device: int, inode: int, prefix: bytes, path: str, offset: int = 0
    ) -> SourceRecord:
        """A new source for this file, whose bytes before ``offset`` are taken as read."""
        now = _now()
        row = self.con.execute(
            "INSERT INTO sources (source_id, device, inode, fingerprint, fingerprint_len, path, "
            '"offset", first_seen, updated_at) '
            "VALUES (nextval('source_ids'), ?, ?, ?, ?, ?, ?, ?, ?) RETURNING source_id",
            [device, inode, _sha1(prefix), len(prefix), path, offset, now, now],
        ).fetchall()
        return SourceRecord(int(row[0][0]), path, None, None, offset, 0)

    def rebind_source(
        self, source_id: int, *, device: int, inode: int, prefix: bytes, path: str
    ) -> None:
        """Follow a source to the file now holding it (a new name, a copy, a compressed
        sibling) and lengthen a short fingerprint as the file grows."""
        self.con.execute(
            "UPDATE sources SET device = ?, inode = ?, path = ?, "
            "fingerprint = CASE WHEN ? > fingerprint_len THEN ? ELSE fingerprint END, "
            "fingerprint_len = greatest(fingerprint_len, ?), updated_at = ? WHERE source_id = ?",
            [device, inode, path, len(prefix), _sha1(prefix), len(prefix), _now(), source_id],
        )

    def get_source(self, source_id: int) -> SourceRecord | None:
        rows = self.con.execute(
            'SELECT source_id, fingerprint, fingerprint_len, path, format, "offset", lines, log_format '
            "FROM sources WHERE source_id = ?",
            [source_id],
        ).fetchall()
        return _record(rows[0]) if rows else None

    def set_format(self, source_id: int, name: str, log_format: str | None) -> None:
        self.con.execute(
            "UPDATE sources SET format = ?, log_format = ? WHERE source_id = ?",
            [name, log_format, source_id],
        )

    def restart_source(self, source_id: int) -> None:
        """Forget what was read of a source whose format was never recognised (its lines are
        all rejects), so that it is read again from its start: one transaction."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM rejects WHERE source_id = ?", [source_id])
            con.execute(
                'UPDATE sources SET "offset" = 0, lines = 0, rejects = 0, conflicts = 0, '
                "updated_at = ? WHERE source_id = ?",
                [_now(), source_id],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def stream_source(self, path: str) -> SourceRecord:
        """The source of a stream that is not a file (``otlp:<service>``), found by its path,
        or registered: device and inode 0, which no file has, and an empty fingerprint, which
        no file's content lookup reads. Its offset counts the records committed."""
        rows = self.con.execute(
            'SELECT source_id, fingerprint, fingerprint_len, path, format, "offset", lines, log_format '
            "FROM sources WHERE device = 0 AND inode = 0 AND path = ? ORDER BY source_id LIMIT 1",
            [path],
        ).fetchall()
        if rows:
            return _record(rows[0])
        return self.register_source(device=0, inode=0, prefix=b"", path=path)

    def commit(self, batch: Batch) -> None:
        """Insert the batch's rows and move the source offset, all or nothing.

        The offset only moves forward from where this batch started, so a batch that was
        already committed (by a process that died before it could tell) is refused.
        """
        self.commit_all([batch])

    def commit_all(self, batches: Sequence[Batch]) -> None:
        """Several batches (of different sources: one OTLP request) in one transaction."""
        con = self.con
        routes = self._route_resolver()
        con.execute("BEGIN TRANSACTION")
        try:
            for batch in batches:
                self._commit_rows(batch, routes)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _commit_rows(self, batch: Batch, routes: RouteResolver | None) -> None:
        con = self.con
        moved = con.execute(
            'UPDATE sources SET "offset" = ?, lines = lines + ?, rejects = rejects + ?, '
            'conflicts = conflicts + ?, updated_at = ? WHERE source_id = ? AND "offset" = ? '
            "RETURNING rejects, lines, conflicts",
            [
                batch.end,
                batch.lines,
                batch.rejects.height,
                batch.conflicts,
                _now(),
                batch.source_id,
                batch.start,
            ],
        ).fetchall()
        if not moved:
            raise RuntimeError(
                f"source {batch.source_id} is no longer at offset {batch.start}; "
                "another writer imported it meanwhile"
            )
        # Every reject is counted; only the first MAX_REJECTS_PER_SOURCE are kept, with
        # their samples: a file of garbage must not grow the store by its own size.
        kept_before = int(moved[0][0]) - batch.rejects.height
        rejects = batch.rejects.head(max(0, MAX_REJECTS_PER_SOURCE - kept_before))
        if self.outbound:
            self._keep_outbound(batch, rejects, moved[0])
            return
        for table, frame in zip(_INSERTS, (batch.events, batch.rollups, rejects), strict=True):
            if frame.height:
                self._insert(table, frame, routes)
        self._invalidate_summarised_hours(batch)

    def _keep_outbound(self, batch: Batch, rejects: pl.DataFrame, totals: tuple[Any, ...]) -> None:
        """The batch's rows for the shipper, with the source's totals after it."""
        blobs = [
            ipc_blob(batch.events.drop("raw_line", strict=False)),
            ipc_blob(batch.rollups),
            ipc_blob(rejects),
        ]
        self.con.execute(
            "INSERT INTO outbound (source_id, start_offset, end_offset, lines, "
            "total_rejects, total_lines, total_conflicts, events, rollups, rejects, size, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch.source_id,
                batch.start,
                batch.end,
                batch.lines,
                *totals,
                *blobs,
                sum(len(b) for b in blobs if b is not None),
                _now(),
            ],
        )

    def _invalidate_summarised_hours(self, batch: Batch) -> None:
        """Lines for an hour already summarised (a late line, an older log) mark it stale."""
        if not batch.rollups.height:
            return
        oldest = batch.rollups["minute"].min()
        if isinstance(oldest, dt.datetime) and oldest < summaries.summarised_before(self.con):
            summaries.invalidate_from(self.con, oldest)

    def _route_resolver(self) -> RouteResolver | None:
        """The route map as it is now, or None when it is empty (the common case: then the
        batch is inserted as it is). Reloaded only when this process changed a map."""
        current = route_map.generation()
        if self._routes is None or self._routes_generation != current:
            self._routes = RouteResolver.load(self.con)
            self._routes_generation = current
        return None if self._routes.empty else self._routes

    def _insert(self, table: str, frame: pl.DataFrame, routes: RouteResolver | None) -> None:
        """Insert one table's rows; with a route map, through a join on the routes it changes."""
        con = self.con
        changes = None
        if routes is not None and table in route_map.MAPPED_INSERTS:
            changes = routes.resolve(frame["route"])
        con.register("_batch_rows", frame.to_arrow())
        try:
            if changes is not None and changes.height:
                con.register(route_map.BATCH_ROUTES, route_map.to_arrow(changes))
                try:
                    con.execute(route_map.MAPPED_INSERTS[table])
                finally:
                    con.unregister(route_map.BATCH_ROUTES)
            else:
                con.execute(_INSERTS[table])
        finally:
            con.unregister("_batch_rows")
