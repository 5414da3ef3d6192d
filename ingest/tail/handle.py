"""Opening a matched file: a regular file's open handle and its identity, never its path.

The identity (device, inode and up to FINGERPRINT_BYTES of the *uncompressed* content) is
taken from the open handle, so a rename between a stat and the open cannot pair one file's
identity with another's bytes, and a followed file is not lost when it is renamed or deleted.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass
from typing import BinaryIO, cast

from conflictlens._errors import InputError
from conflictlens.ingest.identity import FINGERPRINT_BYTES

READ_BLOCK = 4 << 20  # bytes per read() call
GZIP_MAGIC = b"\x1f\x8b"

# What reading a damaged or half-written gzip file raises.
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


class NotRegularFile(InputError, OSError):
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


def is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


@dataclass
class OpenedFile:
    raw: io.FileIO
    stat: os.stat_result  # of the open handle, not of the path
    gz: bool
    prefix: bytes  # up to FINGERPRINT_BYTES of the (uncompressed) content

    @property
    def key(self) -> tuple[int, int]:
        return (self.stat.st_dev, self.stat.st_ino)

    def close(self) -> None:
        self.raw.close()


def open_file(path: str) -> OpenedFile:
    """Open a regular file (plain or gzip) without ever blocking on a FIFO or a device."""
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
            with gzip.GzipFile(fileobj=Unclosed(raw), mode="rb") as stream:
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


def current_name(opened: OpenedFile) -> str | None:
    """Where an open file is now (Linux), or None when deleted or unknown."""
    try:
        where = os.readlink(f"/proc/self/fd/{opened.raw.fileno()}")
    except OSError:
        return None
    return None if where.endswith(" (deleted)") or not where.startswith("/") else where


class Unclosed(io.RawIOBase):
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
    with gzip.GzipFile(fileobj=Unclosed(raw), mode="rb") as stream:
        while data := stream.read(READ_BLOCK):
            total += len(data)
    return total
