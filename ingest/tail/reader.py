"""Reading one open file: byte ranges into complete lines, the partial last line held back.

No database and no threads here. Offsets are content offsets (uncompressed for gzip), like
the store's. A plain file is read without taking end of file as end of line, so an
unterminated last line waits for its newline (also across a restart: the store's offset
stops before it); a gzip file is finished by definition and is read once, to its end.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from conflictlens.ingest.identity import skip_to
from conflictlens.ingest.lines import Chunk, ChunkData, newline_count, read_chunks
from conflictlens.ingest.tail.handle import READ_BLOCK, OpenedFile, Unclosed


@dataclass
class Pending:
    """Lines read and not committed yet: what the next flush parses and commits."""

    chunks: list[Chunk] = field(default_factory=list)
    lines: int = 0
    size: int = 0  # bytes
    since: float | None = None  # when the oldest of them was read

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def add(self, chunk: Chunk, now: float) -> None:
        self.chunks.append(chunk)
        self.lines += newline_count(chunk.data) + len(chunk.overlong)
        self.size += chunk.end - chunk.start
        if self.since is None:
            self.since = now

    def take(self) -> list[Chunk]:
        chunks = self.chunks
        self.chunks = []
        self.lines = self.size = 0
        self.since = None
        return chunks


class LineReader:
    """The complete lines of one open file from an offset on, read into ``pending``."""

    def __init__(self, opened: OpenedFile, offset: int, *, continues_line: bool) -> None:
        self.opened = opened
        self.read_offset = offset  # end of the lines read so far (committed or pending)
        self.continues_line = continues_line  # the byte before read_offset is no newline
        self.scanned_size = -1  # the size the last complete read saw
        self.more = False  # the last read stopped at its budget, not at end of file
        self.finished = False  # gzip: read to its end
        self.pending = Pending()
        self._gz: tuple[gzip.GzipFile, Iterator[Chunk]] | None = None

    def read(self, size: int | None, *, max_line_bytes: int, budget: int, now: float) -> None:
        """Read complete lines up to about ``budget`` bytes; ``size`` is the plain file's
        size as last checked (a gzip file is read to its end whatever it is)."""
        self.more = False
        if self.opened.gz:
            self._read_gz(max_line_bytes=max_line_bytes, budget=budget, now=now)
            return
        if size is None or size == self.scanned_size or size <= self.read_offset:
            if size is not None and size <= self.read_offset:
                self.scanned_size = size
            return
        raw = self.opened.raw
        raw.seek(self.read_offset)
        chunks = read_chunks(
            raw,
            self.read_offset,
            chunk_bytes=min(READ_BLOCK, budget),
            max_line_bytes=max_line_bytes,
            eof_ends_line=False,
            continues_line=self.continues_line,
        )
        if self._take(chunks, budget, now):
            self.scanned_size = size

    def _read_gz(self, *, max_line_bytes: int, budget: int, now: float) -> None:
        if self.finished:
            return
        if self._gz is None:
            stream = gzip.GzipFile(fileobj=Unclosed(self.opened.raw), mode="rb")
            at_line_start = skip_to(cast(BinaryIO, stream), self.read_offset)
            chunks = read_chunks(
                cast(BinaryIO, stream),
                self.read_offset,
                chunk_bytes=min(READ_BLOCK, budget),
                max_line_bytes=max_line_bytes,
                eof_ends_line=True,  # a compressed file is finished
                continues_line=not at_line_start,
            )
            self._gz = (stream, chunks)
        if self._take(self._gz[1], budget, now):
            self.finished = True

    def _take(self, chunks: Iterator[Chunk], budget: int, now: float) -> bool:
        """Move chunks into ``pending`` until the budget is spent (False) or the end (True)."""
        got = 0
        for chunk in chunks:
            if chunk.end != chunk.start:
                self.pending.add(chunk, now)
                self.read_offset = chunk.end
                self.continues_line = False
            got += chunk.end - chunk.start
            if got >= budget:
                self.more = True
                return False
        return True

    def rewind(self, offset: int) -> None:
        """Forget what was read after ``offset`` (the store's word) and read it again."""
        self.pending.take()
        self.read_offset = offset
        self.scanned_size = -1
        self.continues_line = offset > 0 and (
            self.opened.gz or os.pread(self.opened.raw.fileno(), 1, offset - 1) != b"\n"
        )

    def caught_up(self, size: int | None) -> bool:
        """Every complete line up to ``size`` (the size last seen) has been read and taken."""
        if self.pending or self.more:
            return False
        if self.opened.gz:
            return self.finished
        return size is not None and self.scanned_size == size

    def close(self) -> None:
        if self._gz is not None:
            self._gz[0].close()
            self._gz = None
        self.opened.close()


def merge_chunks(chunks: list[Chunk]) -> list[Chunk]:
    """Join contiguous chunks into as few as possible, so that a flush parses and commits once.

    A chunk joins the one before when nothing lies between their lines: it has no overlong
    line before its data, or the one before has no data at all (only overlong lines).
    """
    merged: list[Chunk] = []
    parts: list[ChunkData] = []  # the data of merged[-1], joined at the end
    for chunk in chunks:
        if merged:
            last = merged[-1]
            if chunk.start != last.end:
                raise ValueError(f"chunks are not contiguous: {last.end} then {chunk.start}")
            if not any(parts):
                merged[-1] = Chunk(
                    b"", last.start, chunk.end, chunk.data_start, last.overlong + chunk.overlong
                )
                parts = [chunk.data]
                continue
            if not chunk.overlong and chunk.data_start == chunk.start:
                last.end = chunk.end
                parts.append(chunk.data)
                continue
            last.data = b"".join(parts)
        merged.append(Chunk(b"", chunk.start, chunk.end, chunk.data_start, list(chunk.overlong)))
        parts = [chunk.data]
    if merged:
        merged[-1].data = b"".join(parts)
    return merged
