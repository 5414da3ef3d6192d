"""Committing a followed file's lines: rows and the source's new offset in one transaction.

Exactly once: ``store_chunk`` hands each parsed batch to ``Writer.commit``, which inserts the
rows and moves the offset together or not at all. When the store refuses (its offset moved,
an I/O error), the store's offset is the truth and the file is read again from there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from conflictlens._errors import first_line
from conflictlens.ingest.batch import store_chunk
from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.format_choice import FormatChoice
from conflictlens.ingest.tail.reader import Pending, merge_chunks
from conflictlens.ingest.tail.spec import SourceSpec
from conflictlens.store import Writer

log = logging.getLogger("conflictlens.tail")

FLUSH_BYTES = 8 << 20  # this much pending is committed without waiting for flush_ms


def flush_due(pending: Pending, now: float, *, flush_lines: int, flush_s: float) -> bool:
    """Every ``flush_lines`` lines, FLUSH_BYTES bytes, or ``flush_s`` after the oldest line."""
    return bool(pending) and (
        pending.lines >= flush_lines
        or pending.size >= FLUSH_BYTES
        or (pending.since is not None and now - pending.since >= flush_s)
    )


class Committer:
    """Parses and commits the pending lines of followed files through the store's writer."""

    def __init__(
        self, writer: Writer, specs: Sequence[SourceSpec], *, flush_lines: int, flush_s: float
    ) -> None:
        self.writer = writer
        self.formats = FormatChoice(writer, specs)
        self._options = [spec.ingest_options() for spec in specs]
        self._flush_lines = flush_lines
        self._flush_s = flush_s

    def flush(self, f: FollowedFile, now: float, *, force: bool) -> bool:
        """Commit the pending lines of ``f`` when due (always when ``force``). False when
        nothing of them may be trusted any more: the caller reads again from the store's
        offset (``stored_offset``)."""
        if not f.pending:
            return True
        if not (
            force or flush_due(f.pending, now, flush_lines=self._flush_lines, flush_s=self._flush_s)
        ):
            return True
        chunks = merge_chunks(f.pending.take())
        options = self._options[f.spec_index]
        try:
            fmt = self.formats.choose(f, chunks)
            if fmt is None:
                f.format_blocked_at = f.size
                return False
            committed = [
                batch
                for chunk in chunks
                for batch in store_chunk(chunk, fmt, options, f.source_id, self.writer.commit)
            ]
            for parsed in committed:
                f.offset = parsed.end
                f.totals.lines += parsed.lines
                f.totals.conflicts += parsed.conflicts
                if parsed.rejects.height:
                    f.totals.rejects += parsed.rejects.height
                    last = parsed.rejects.sort("offset").row(-1, named=True)
                    f.last_error = (
                        f"{parsed.rejects.height} line(s) rejected, the last at offset "
                        f"{last['offset']}: {last['reason']}"
                    )
        except Exception as exc:  # the store refused (offset moved, I/O): trust the store
            log.warning("commit for %s failed: %s", f.path, exc)
            f.last_error = f"commit failed: {first_line(exc)}"
            return False
        return True

    def stored_offset(self, f: FollowedFile) -> int:
        """Where the store says the source of ``f`` is committed up to."""
        try:
            record = self.writer.get_source(f.source_id)
        except duckdb.Error:
            record = None
        return record.offset if record is not None else f.offset
