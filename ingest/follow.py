"""Following one file: its open handle, the bytes read from it and how the file changed.

No database and no threads here: the follower (``ingest.tail``) decides what a change means
for the store. A followed file is known by its open handle, so a rename or an unlink does not
lose it: whatever is appended to it before it is let go is still read.

Offsets are content offsets (uncompressed for gzip), like the store's. Plain files are read
without taking end of file as end of line, so an unterminated last line waits for its newline;
a gzip file is finished by definition and is read once, to its end.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from ingest.formats import LogFormat
from ingest.identity import FINGERPRINT_BYTES, skip_to
from ingest.lines import Chunk, ChunkData, newline_count, read_chunks

READ_BLOCK = 4 << 20  # bytes per read() call
GZIP_MAGIC = b"\x1f\x8b"

# What reading a damaged or half-written gzip file raises.
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


class NotRegularFile(OSError):
    """A path that matched a glob but is a directory, a FIFO, a socket or a device."""


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


@dataclass
class OpenedFile:
    raw: io.FileIO
    stat: os.stat_result  # of the open handle, not of the path
    gz: bool
    prefix: bytes  # up to FINGERPRINT_BYTES of the (uncompressed) content

    def close(self) -> None:
        self.raw.close()


def open_file(path: str) -> OpenedFile:
    """Open a regular file (plain or gzip) without ever blocking on a FIFO or a device.

    The identity comes from the open handle, so a rename between a stat and the open cannot
    pair one file's identity with another's bytes.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{file_kind(st.st_mode)}, not a log file")
        os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    try:
        gz = os.pread(fd, 2, 0) == GZIP_MAGIC
        if gz:
            with gzip.GzipFile(fileobj=_Unclosed(raw), mode="rb") as stream:
                prefix = _read_up_to(cast(BinaryIO, stream), FINGERPRINT_BYTES)
                if len(prefix) < FINGERPRINT_BYTES:
                    # All of it, or the beginning of a file still being compressed: only a
                    # complete stream (this read raises otherwise) may be fingerprinted.
                    stream.read(1)
        else:
            prefix = os.pread(fd, FINGERPRINT_BYTES, 0)
    except BaseException:
        raw.close()
        raise
    return OpenedFile(raw, st, gz, prefix)


class _Unclosed(io.RawIOBase):
    """A view of a raw file that GzipFile may close without closing the file."""

    def __init__(self, raw: io.FileIO) -> None:
        self._raw = raw
        raw.seek(0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._raw.readinto(buffer)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def last_line_end(raw: io.FileIO, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    end = size
    block = 64 * 1024
    while end > 0:
        start = max(0, end - block)
        data = os.pread(raw.fileno(), end - start, start)
        cut = data.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def gzip_content_length(raw: io.FileIO) -> int:
    """The uncompressed length of a gzip file (reads it all)."""
    total = 0
    with gzip.GzipFile(fileobj=_Unclosed(raw), mode="rb") as stream:
        while data := stream.read(READ_BLOCK):
            total += len(data)
    return total


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


@dataclass
class Change:
    """What ``FollowedFile.check`` found."""

    truncated: str | None = None  # why the content is no longer what was read
    prefix_grew: bool = False  # the first bytes are longer now (the fingerprint can grow)
    grew: bool = False


@dataclass
class FollowedFile:
    """One open file being read, with the lines read but not committed yet."""

    path: str
    spec_index: int
    opened: OpenedFile
    source_id: int
    offset: int  # committed: every line before it is in the store
    continues_line: bool  # the byte before ``offset`` is not a newline (batch import's EOF)
    stored_format: str | None = None
    stored_log_format: str | None = None
    prefix: bytes = b""
    read_offset: int = 0  # end of the lines read so far (committed or buffered)
    size: int | None = None  # plain files: the size at the last check
    scanned_size: int = -1  # the size the last complete read attempt saw
    buffer: list[Chunk] = field(default_factory=list)
    buffered_lines: int = 0
    buffered_bytes: int = 0
    first_buffered_at: float | None = None
    more: bool = False  # the last read stopped at its budget, not at end of file
    finished: bool = False  # gzip: read to its end
    attached: bool = True  # matched a glob at the last scan
    deleted: bool = False
    last_growth: float = 0.0
    detached_at: float | None = None
    fmt: LogFormat | None = None
    format_blocked_at: int | None = None  # the size at which the format could not be detected
    # totals for the status
    lines: int = 0
    rejects: int = 0
    conflicts: int = 0
    rate: float = 0.0
    rate_lines: int = 0
    rate_at: float = 0.0
    last_error: str | None = None
    last_event: str | None = None
    _gz_stream: gzip.GzipFile | None = None
    _gz_chunks: Iterator[Chunk] | None = None

    def __post_init__(self) -> None:
        self.read_offset = self.offset
        if not self.prefix:
            self.prefix = self.opened.prefix

    @property
    def gz(self) -> bool:
        return self.opened.gz

    @property
    def device(self) -> int:
        return self.opened.stat.st_dev

    @property
    def inode(self) -> int:
        return self.opened.stat.st_ino

    @property
    def key(self) -> tuple[int, int]:
        return (self.device, self.inode)

    def close(self) -> None:
        if self._gz_stream is not None:
            self._gz_stream.close()
            self._gz_stream = None
        self._gz_chunks = None
        self.opened.close()

    # -- plain files ---------------------------------------------------------------------

    def check(self, now: float) -> Change:
        """Look at the open file: has it grown, been truncated or rewritten, been deleted?"""
        change = Change()
        if self.gz:
            return change
        fd = self.opened.raw.fileno()
        st = os.fstat(fd)
        size = st.st_size
        self.deleted = st.st_nlink == 0
        if self.size is not None and size > self.size:
            change.grew = True
            self.last_growth = now
        if size < self.read_offset:
            change.truncated = f"truncated from {self.read_offset} to {size} bytes"
        elif size != self.size:
            head = os.pread(fd, FINGERPRINT_BYTES, 0)
            same = min(len(head), len(self.prefix))
            if len(head) < len(self.prefix) or head[:same] != self.prefix[:same]:
                change.truncated = "rewritten: its first bytes changed"
            elif (
                self.read_offset > 0
                and not self.continues_line
                and size > self.read_offset
                and os.pread(fd, 1, self.read_offset - 1) != b"\n"
            ):
                change.truncated = "truncated and written again past the offset read"
            elif len(head) > len(self.prefix):
                self.prefix = head
                change.prefix_grew = True
        self.size = size
        return change

    def read(self, *, max_line_bytes: int, budget: int, now: float) -> None:
        """Read complete lines into the buffer, up to about ``budget`` bytes."""
        self.more = False
        if self.gz:
            self._read_gz(max_line_bytes=max_line_bytes, budget=budget, now=now)
            return
        if self.size is None or self.size == self.scanned_size or self.size <= self.read_offset:
            if self.size is not None and self.size <= self.read_offset:
                self.scanned_size = self.size
            return
        size = self.size
        raw = self.opened.raw
        raw.seek(self.read_offset)
        got = 0
        for chunk in read_chunks(
            raw,
            self.read_offset,
            chunk_bytes=min(READ_BLOCK, budget),
            max_line_bytes=max_line_bytes,
            eof_ends_line=False,
            continues_line=self.continues_line,
        ):
            self._add(chunk, now)
            got += chunk.end - chunk.start
            if got >= budget:
                self.more = True
                return
        self.scanned_size = size

    # -- gzip files ----------------------------------------------------------------------

    def _read_gz(self, *, max_line_bytes: int, budget: int, now: float) -> None:
        if self.finished:
            return
        if self._gz_chunks is None:
            self._gz_stream = gzip.GzipFile(fileobj=_Unclosed(self.opened.raw), mode="rb")
            stream = cast(BinaryIO, self._gz_stream)
            at_line_start = skip_to(stream, self.offset)
            self._gz_chunks = read_chunks(
                stream,
                self.offset,
                chunk_bytes=min(READ_BLOCK, budget),
                max_line_bytes=max_line_bytes,
                eof_ends_line=True,  # a compressed file is finished
                continues_line=not at_line_start,
            )
        got = 0
        for chunk in self._gz_chunks:
            self._add(chunk, now)
            got += chunk.end - chunk.start
            if got >= budget:
                self.more = True
                return
        self.finished = True

    # -- the buffer ----------------------------------------------------------------------

    def _add(self, chunk: Chunk, now: float) -> None:
        if chunk.end == chunk.start:
            return
        self.buffer.append(chunk)
        self.read_offset = chunk.end
        self.continues_line = False
        self.buffered_lines += newline_count(chunk.data) + len(chunk.overlong)
        self.buffered_bytes += chunk.end - chunk.start
        if self.first_buffered_at is None:
            self.first_buffered_at = now
        self.last_growth = now

    def take_buffer(self) -> list[Chunk]:
        chunks = self.buffer
        self.buffer = []
        self.buffered_lines = self.buffered_bytes = 0
        self.first_buffered_at = None
        return chunks

    def rewind(self, offset: int) -> None:
        """Forget what was read after ``offset`` (the store's word) and read it again."""
        self.take_buffer()
        self.offset = self.read_offset = offset
        self.scanned_size = -1
        self.continues_line = offset > 0 and (
            self.gz or os.pread(self.opened.raw.fileno(), 1, offset - 1) != b"\n"
        )

    @property
    def caught_up(self) -> bool:
        """Every complete line up to the size last seen is committed."""
        if self.buffer or self.more:
            return False
        if self.gz:
            return self.finished
        return self.size is not None and self.scanned_size == self.size
