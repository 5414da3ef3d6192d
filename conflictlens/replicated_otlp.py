"""``POST /v1/logs`` on a serve replica of a ClickHouse store: OTLP records mapped as on the
embedded store (conflictlens.ingest.otlp), written to ClickHouse exactly once.

A replica has no transaction and no offset counter to share with the others, and a sender
retries a request it got no answer to, perhaps through another replica. So what a request
stores is named by the request itself: the digest (SHA-256) of its decompressed body.

- Each resource's ``service.name`` is a source ``otlp:<service>`` whose id is a hash of that
  name (the same on every replica). A record's offset is the request's base (46 bits of the
  digest, times 2^16) plus its position in the request: unique in the source, the same on
  a retry.
- Each table's insert carries the token ``otlp/<digest>/<service>/<table>``: a request sent
  again (to any replica, within the tables' deduplication window) stores nothing more. A
  request that failed half-way is completed by its retry.
- ``otlp_requests`` keeps one row per (source, request): its lines, rejects and conflicts.
  The source's ``sources`` row (what the Status page lists) is their sums, inserted by the
  server itself (INSERT ... SELECT, stamped with the server's clock), so the newest row
  counts every request stored before it, whichever replica took them.

Rejects: at most MAX_REJECTS_PER_REQUEST kept per source and request (all counted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import partial
from typing import Any

import polars as pl

from conflictlens._errors import StoreError
from conflictlens.ingest.batch import batch_from_parsed
from conflictlens.ingest.formats import FORMATS, LogFormat
from conflictlens.ingest.options import IngestOptions
from conflictlens.ingest.otlp import (
    FORMAT,
    SOURCE_PREFIX,
    Accepted,
    detect_body_format,
    parse_stream,
    records_of,
)
from conflictlens.ingest.otlp_decode import Decoded
from conflictlens.store.clickhouse.schema import INSERT_SETTINGS
from conflictlens.store.clickhouse.shipper import TOKEN_SETTING
from conflictlens.store.clickhouse.state import READ_SETTINGS, key_id
from conflictlens.store.writer import Batch

AGENT = "otlp"  # the sources rows' agent: the replicas' intake
MAX_REJECTS_PER_REQUEST = 10_000
RECORD_BITS = 16  # a request holds fewer records than this per service (OTLP batches: ~512)

_SOURCE_ROW = """
    INSERT INTO sources (source_id, device, inode, fingerprint, fingerprint_len, path, format,
                         log_format, `offset`, lines, rejects, conflicts, first_seen,
                         updated_at, agent)
    SELECT source_id, 0, 0, '', 0, any(path), argMax(format, at), NULL, sum(lines),
           sum(lines), sum(rejects), sum(conflicts), min(at), now64(6), {agent:String}
    FROM otlp_requests FINAL
    WHERE source_id = {source:Int64}
    GROUP BY source_id
"""


class StoreUnavailable(StoreError, RuntimeError):
    """The store did not take a request's rows now: the sender should retry (a 503)."""

    status_code = 503


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_base(digest: str) -> int:
    """Where a request's offsets start: 46 bits of its digest, leaving RECORD_BITS free."""
    return (int(digest[:12], 16) >> 2) << RECORD_BITS


class ClickHouseOtlpIntake:
    """``accept(decoded, digest)`` as conflictlens.ingest.otlp.OtlpIntake's, into ClickHouse."""

    def __init__(self, client: Any, options: Callable[[], IngestOptions]) -> None:
        self.client = client
        self._options = options
        self._formats: dict[int, LogFormat | None] = {}  # source → its body lines' format

    def start(self) -> None:
        """(a service of serve: nothing to open)"""

    def stop(self) -> None:
        """(nothing to close: the client is serve's)"""

    def accept(self, decoded: Decoded, digest: str = "") -> Accepted:
        if not digest:
            raise ValueError("an OTLP request on ClickHouse needs its body's digest")
        options = self._options()
        records = records_of(decoded)
        base = request_base(digest)
        rejected: list[pl.DataFrame] = []
        for (name,), stream in records.group_by("service_name", maintain_order=True):
            if stream.height >= 1 << RECORD_BITS:
                raise ValueError(f"over {1 << RECORD_BITS:,} records of one service in a request")
            path = f"{SOURCE_PREFIX}{name}"
            source_id = key_id(path)
            stream = stream.with_columns(offset=pl.int_range(pl.len(), dtype=pl.Int64) + base)
            parsed = parse_stream(stream, options, partial(self._format, source_id))
            # (rows are built with a 32-bit source id: the 63-bit one is set as they are stored)
            batch = batch_from_parsed(parsed, options, 0, base, base + stream.height)
            try:
                self._store(batch, source_id, f"otlp/{digest}/{name}", path, digest)
            except Exception as exc:
                from clickhouse_connect.driver.exceptions import ClickHouseError

                if isinstance(exc, ClickHouseError | OSError):
                    raise StoreUnavailable(" ".join(str(exc).split())[:300]) from exc
                raise
            if batch.rejects.height:
                rejected.append(batch.rejects)
        reason = str(pl.concat(rejected)["reason"][0]) if rejected else None
        return Accepted(records.height, sum(r.height for r in rejected), reason)

    def _format(self, source_id: int, lines: pl.DataFrame) -> LogFormat | None:
        """The format of a source's body lines: remembered, in its sources row, or detected."""
        if source_id not in self._formats:
            rows = self.client.query(
                "SELECT argMax(format, updated_at) FROM sources WHERE agent = {agent:String} "
                "AND source_id = {source:Int64}",
                parameters={"agent": AGENT, "source": source_id},
                settings=READ_SETTINGS,
            ).result_rows
            stored = rows[0][0] if rows else None
            fmt = FORMATS.get(stored) if stored else None
            self._formats[source_id] = fmt or detect_body_format(lines)
        return self._formats[source_id]

    def _store(self, batch: Batch, source_id: int, token: str, path: str, digest: str) -> None:
        """The batch's rows, then its otlp_requests row, then the source's new sources row."""
        tagged = [
            ("conflict_events", batch.events.drop("raw_line", strict=False)),
            ("request_rollups", batch.rollups),
            ("rejects", batch.rejects.head(MAX_REJECTS_PER_REQUEST)),
        ]
        for table, frame in tagged:
            if frame.height:
                settings: dict[str, Any] = {TOKEN_SETTING: f"{token}/{table}"}
                if table != "rejects":
                    settings.update(INSERT_SETTINGS)
                rows = frame.with_columns(pl.lit(AGENT).alias("agent"))
                if "source_id" in rows.columns:
                    rows = rows.with_columns(pl.lit(source_id, pl.Int64).alias("source_id"))
                self.client.insert_arrow(
                    table, rows.to_arrow(compat_level=pl.CompatLevel.oldest()), settings=settings
                )
        known = self._formats.get(source_id)
        self.client.insert(
            "otlp_requests",
            [
                [
                    source_id,
                    digest,
                    path,
                    known.name if known else FORMAT,
                    batch.lines,
                    batch.rejects.height,
                    batch.conflicts,
                    _now(),
                ]
            ],
            column_names=[
                "source_id",
                "digest",
                "path",
                "format",
                "lines",
                "rejects",
                "conflicts",
                "at",
            ],
            settings={TOKEN_SETTING: f"{token}/requests"},
        )
        self.client.command(_SOURCE_ROW, parameters={"agent": AGENT, "source": source_id})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
