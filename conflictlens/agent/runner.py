"""The agent: follow the gateway's logs into the local state, ship the batches to the store.

Two threads around one state file (conflictlens.agent.state):

- the follower (ingest.tail, as ``serve`` runs it): rotation, format detection and exactly
  once are its own; its Writer keeps each batch in ``outbound`` with the offset;
- the ship loop: every ``ship_interval`` it sends the waiting batches oldest first
  (store/clickhouse/shipper.py) and deletes each once every insert succeeded.

While the store cannot be reached the follower goes on and the batches wait on disk: one
warning when an outage starts, one line when it ends, retries every 1, 2, 4 … 30 s. The
buffer is bounded by ``max_buffer_bytes``: past it the follower is stopped (the logs on disk
hold the rest, as long as rotation keeps them) and started again below 80 % of it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from conflictlens._errors import first_line
from conflictlens.agent import state
from conflictlens.ingest.tail import Follower, SourceSpec
from conflictlens.store.clickhouse.shipper import ShipBatch, Shipper, status_row

log = logging.getLogger("conflictlens.agent")

MAX_BACKOFF_S = 30.0
RESUME_AT = 0.8  # of the buffer's bound: reading starts again below it
FINAL_SHIP_S = 10.0  # at stop, how long the last batches may take to go


@dataclass(frozen=True)
class AgentOptions:
    name: str
    state: Path
    specs: Sequence[SourceSpec]
    connect: Callable[[], Shipper]  # a shipper on a new client; raises when unreachable
    ship_interval_s: float = 2.0
    max_buffer_bytes: int = 1 << 30
    flush_ms: int = 1000
    flush_lines: int = 200_000
    poll_ms: int = 1000


class ShipLoop(threading.Thread):
    """Sends the outbound batches to the store, oldest first, on its own thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: AgentOptions) -> None:
        super().__init__(name="conflictlens-ship", daemon=True)
        self._con = con
        self._options = options
        self._wake = threading.Event()
        self._draining = False
        self._drain_until = 0.0
        self._shipper: Shipper | None = None
        self.outage_since: float | None = None
        self.shipped = 0  # batches
        self.last_error: str | None = None

    def finish(self) -> None:
        """Ship what waits (for at most FINAL_SHIP_S) and stop."""
        self._draining = True
        self._drain_until = time.monotonic() + FINAL_SHIP_S
        self._wake.set()
        self.join(FINAL_SHIP_S + 5)

    def run(self) -> None:
        backoff = 0.0
        try:
            while True:
                if self.ship_waiting():
                    backoff = 0.0
                    wait = self._options.ship_interval_s
                else:
                    backoff = min(max(1.0, 2 * backoff), MAX_BACKOFF_S)
                    wait = backoff
                if self._draining and (
                    self.outage_since is None or time.monotonic() + wait > self._drain_until
                ):
                    break
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            if self._shipper is not None:
                self._shipper.close()
            self._con.close()

    def ship_waiting(self) -> bool:
        """Every waiting batch; False when the store refused or could not be reached."""
        try:
            if self._shipper is None:
                self._shipper = self._options.connect()
            while (row := state.oldest(self._con)) is not None:
                self._shipper.ship(self._batch(row))
                state.shipped(self._con, row)
                self.shipped += 1
        except Exception as exc:  # unreachable, refused, timed out: the batch stays
            self._failed(exc)
            return False
        if self.outage_since is not None:
            log.info(
                "store reachable again after %.0f s; the batches buffered meanwhile are shipped",
                time.monotonic() - self.outage_since,
            )
            self.outage_since = None
        return True

    def _failed(self, exc: Exception) -> None:
        self.last_error = first_line(exc)
        if self._shipper is not None:
            with contextlib.suppress(Exception):  # the client is dropped either way
                self._shipper.close()
            self._shipper = None
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning(
                "cannot ship to the store (%s); buffering in %s and retrying",
                self.last_error,
                self._options.state,
            )

    def _batch(self, row: state.OutboundRow) -> ShipBatch:
        source = state.identity(self._con, self._options.name, row.source_id)
        status = status_row(
            path=source.path,
            fmt=source.format,
            log_format=source.log_format,
            device=source.device,
            inode=source.inode,
            fingerprint=source.fingerprint,
            fingerprint_len=source.fingerprint_len,
            first_seen=source.first_seen,
            offset=row.end,
            lines=row.total_lines,
            rejects=row.total_rejects,
            conflicts=row.total_conflicts,
        )
        return ShipBatch(
            self._options.name,
            source.key,
            source.source_id,
            row.start,
            row.end,
            (row.events, row.rollups, row.rejects),
            status,
        )


class Agent:
    """Runs until ``stop`` is set; then commits what was read and ships what it can."""

    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.ship_loop: ShipLoop | None = None

    def run(self, stop: threading.Event) -> None:
        options = self.options
        con = state.open_state(options.state, options.name)
        follower: Follower | None = None
        try:
            self.ship_loop = ShipLoop(con.cursor(), options)
            self.ship_loop.start()
            follower = self._follow(con)
            while not stop.wait(0.5):
                follower = self._bound_buffer(con, follower)
        finally:
            if follower is not None:
                follower.stop()
            if self.ship_loop is not None:
                self.ship_loop.finish()
            con.close()

    def _follow(self, con: duckdb.DuckDBPyConnection) -> Follower:
        follower = Follower(
            con,
            self.options.specs,
            flush_ms=self.options.flush_ms,
            flush_lines=self.options.flush_lines,
            poll_ms=self.options.poll_ms,
        )
        follower.start()
        return follower

    def _bound_buffer(
        self, con: duckdb.DuckDBPyConnection, follower: Follower | None
    ) -> Follower | None:
        """Stop reading when the buffer is full, start again once it drained enough."""
        _, size = state.backlog(con)
        bound = self.options.max_buffer_bytes
        if follower is not None and size > bound:
            follower.stop()
            log.warning(
                "buffer full (%d MB): reading paused until the store catches up", size >> 20
            )
            return None
        if follower is None and size <= bound * RESUME_AT:
            log.info("buffer at %d MB: reading again", size >> 20)
            return self._follow(con)
        return follower
