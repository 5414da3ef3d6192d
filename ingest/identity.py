"""Who a file is: device, inode and a fingerprint of its first bytes, never its path.

The fingerprint is taken over the *uncompressed* content, so a rotated sibling that was
compressed afterwards (access.log.1 → access.log.1.gz) is recognised as the file already read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISFIFO, S_ISSOCK
from typing import Any, BinaryIO, cast

from conflictlens._errors import InputError

FINGERPRINT_BYTES = 1024
STDIN = "-"


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int
    prefix: bytes  # up to FINGERPRINT_BYTES of the uncompressed content

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.prefix)


def fingerprint(prefix: bytes) -> str:
    return hashlib.sha1(prefix, usedforsecurity=False).hexdigest()


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


class PeekableStream(io.RawIOBase):
    """A stream whose first bytes were already read (to fingerprint stdin) and are replayed."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read()
        head, self._head = self._head[:size], self._head[size:]
        return head

    def readinto(self, buffer: Any) -> int | None:
        if not self._head:
            return cast(io.RawIOBase, self._rest).readinto(buffer)
        size = min(len(self._head), len(buffer))
        buffer[:size] = self._head[:size]
        self._head = self._head[size:]
        return size


def open_source(name: str) -> tuple[BinaryIO, FileIdentity, int | None]:
    """Open a path (plain or gzip) or ``-`` for stdin.

    Returns the binary stream positioned at byte 0 of the content, its identity, and the
    content size when it is known without reading (plain files only).
    """
    if name == STDIN:
        return _stream(sys.stdin.buffer)
    path = Path(name)
    stat = path.stat()
    if S_ISFIFO(stat.st_mode):  # read once, as a stream: a FIFO's bytes cannot be read twice
        return _stream(path.open("rb"))
    if S_ISCHR(stat.st_mode) or S_ISBLK(stat.st_mode) or S_ISSOCK(stat.st_mode):
        # /dev/zero and its like never end and hold no log: refused, not read forever
        raise NotALogFile(f"{name}: a device or socket, not a log file")
    if is_gzip(path):
        gz = gzip.GzipFile(path, "rb")  # closed by the caller, like the plain handle below
        head = gz.read(FINGERPRINT_BYTES)
        gz.seek(0)
        return cast(BinaryIO, gz), FileIdentity(stat.st_dev, stat.st_ino, head), None
    handle = path.open("rb")  # returned open: the caller closes it
    head = handle.read(FINGERPRINT_BYTES)
    handle.seek(0)
    return handle, FileIdentity(stat.st_dev, stat.st_ino, head), stat.st_size


class NotALogFile(InputError, OSError):
    """A path that is a device or a socket: nothing to import from."""


def _stream(raw: BinaryIO) -> tuple[BinaryIO, FileIdentity, int | None]:
    """A pipe (stdin or a FIFO), gzip'd or not, read from its start exactly once."""
    head = raw.read(FINGERPRINT_BYTES)
    if head[:2] == b"\x1f\x8b":
        stream: BinaryIO = gzip.GzipFile(fileobj=PeekableStream(head, raw))  # type: ignore[assignment]
        head = stream.read(FINGERPRINT_BYTES)
        stream = PeekableStream(head, stream)  # type: ignore[assignment]
    else:
        stream = PeekableStream(head, raw)  # type: ignore[assignment]
    return stream, FileIdentity(0, 0, head), None


def skip_to(stream: BinaryIO, offset: int) -> bool:
    """Position a stream at ``offset`` bytes of content (seekable or not).

    Returns whether the byte before ``offset`` was a newline (True at offset 0): when it was
    not, an earlier import took end of file as the end of an unterminated last line.
    """
    if offset <= 0:
        return True
    if stream.seekable() and not isinstance(stream, gzip.GzipFile):
        stream.seek(offset - 1, os.SEEK_SET)
        return stream.read(1) == b"\n"
    remaining = offset - 1
    while remaining > 0:
        data = stream.read(min(remaining, 1 << 20))
        if not data:
            return True
        remaining -= len(data)
    return stream.read(1) == b"\n"
