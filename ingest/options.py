"""What an import keeps and how: the knobs shared by batch import and tailing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from conflictlens.ingest.kinds import KindRule
from conflictlens.ingest.lines import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES
from conflictlens.ingest.routes import RouteRule

CONFLICT_STATUSES = frozenset({409, 412, 423, 428})
# Timestamps outside this window are rejects: a year-0 or year-10000 stamp is a broken line,
# and stored it would break every question whose range the store's span decides.
EARLIEST = dt.datetime(1991, 1, 1)  # the first year of the web: older times are corrupt
LATEST = dt.datetime(2100, 1, 1)


@dataclass(frozen=True)
class IngestOptions:
    capture_statuses: frozenset[int] = CONFLICT_STATUSES
    keep_all: bool = False  # store every request as an event, not only captured statuses
    keep_query: bool = False  # query strings often carry tokens: dropped unless asked for
    anonymize_clients: bool = False  # IPv4 /24, IPv6 /48
    service: str | None = None  # overrides what the format logs (host, router ...)
    route_rules: tuple[RouteRule, ...] = field(default_factory=tuple)
    kind_rules: tuple[KindRule, ...] = field(default_factory=tuple)
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    workers: int = 2
    earliest: dt.datetime = EARLIEST  # naive UTC, inclusive
    latest: dt.datetime = LATEST  # naive UTC, exclusive
