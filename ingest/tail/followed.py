"""One followed file: its reader, the source it feeds and where it stands (for the status).

The reader reads, ``rotation.look`` says what changed; what a change means for the store is
the follower's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conflictlens.ingest.formats import LogFormat
from conflictlens.ingest.tail.handle import OpenedFile
from conflictlens.ingest.tail.reader import LineReader, Pending
from conflictlens.ingest.tail.rotation import Change, look
from conflictlens.ingest.tail.status import Totals


@dataclass
class FollowedFile:
    """One open file being read, with the lines read but not committed yet."""

    path: str
    spec_index: int
    reader: LineReader
    source_id: int
    offset: int  # committed: every line before it is in the store
    stored_format: str | None = None  # the source's format as the store has it
    stored_log_format: str | None = None
    fmt: LogFormat | None = None  # the format chosen for this file
    format_blocked_at: int | None = None  # the size at which the format could not be detected
    prefix: bytes = b""  # the first bytes known (the fingerprint grows with the file)
    size: int | None = None  # plain files: the size at the last look
    attached: bool = True  # matched a glob at the last scan
    deleted: bool = False
    last_growth: float = 0.0
    detached_at: float | None = None
    totals: Totals = field(default_factory=Totals)
    last_error: str | None = None
    last_event: str | None = None

    def __post_init__(self) -> None:
        if not self.prefix:
            self.prefix = self.opened.prefix

    @property
    def opened(self) -> OpenedFile:
        return self.reader.opened

    @property
    def gz(self) -> bool:
        return self.opened.gz

    @property
    def key(self) -> tuple[int, int]:
        return self.opened.key

    @property
    def read_offset(self) -> int:
        return self.reader.read_offset

    @property
    def pending(self) -> Pending:
        return self.reader.pending

    @property
    def caught_up(self) -> bool:
        """Every complete line up to the size last seen is committed."""
        return self.reader.caught_up(self.size)

    def check(self, now: float) -> Change | None:
        """Look at the open file (a gzip file does not change: None)."""
        if self.gz:
            return None
        change = look(
            self.opened.raw.fileno(),
            size=self.size,
            read_offset=self.reader.read_offset,
            continues_line=self.reader.continues_line,
            prefix=self.prefix,
        )
        self.size, self.deleted = change.size, change.deleted
        if change.grew:
            self.last_growth = now
        if change.prefix is not None:
            self.prefix = change.prefix
        return change

    def read(self, *, max_line_bytes: int, budget: int, now: float) -> None:
        before = self.reader.read_offset
        self.reader.read(self.size, max_line_bytes=max_line_bytes, budget=budget, now=now)
        if self.reader.read_offset != before:
            self.last_growth = now

    def rewind(self, offset: int) -> None:
        """Read again from ``offset``, the store's word."""
        self.reader.rewind(offset)
        self.offset = offset

    def restart(self, source_id: int, prefix: bytes) -> None:
        """The content is a new source, read from byte 0."""
        self.rewind(0)
        self.prefix = prefix
        self.source_id = source_id
        self.totals.lines = self.totals.rejects = self.totals.conflicts = 0
        self.stored_format = self.stored_log_format = None

    def close(self) -> None:
        self.reader.close()
