"""Which stored source a newly matched file is, and from which offset it is read.

A file is known by device and inode first, else by the fingerprint of its first bytes
(uncompressed): a renamed file, a copytruncate copy or a compressed rotated sibling is the
source it was, so nothing is read twice or skipped. A file whose source is still being read
under another name waits until that one is let go.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import duckdb

from conflictlens.ingest.identity import FINGERPRINT_BYTES
from conflictlens.ingest.tail.handle import OpenedFile, gzip_content_length, last_line_end
from conflictlens.store import SourceRecord, Writer


class Held(Protocol):
    """A file being followed, as far as identifying another one is concerned."""

    @property
    def path(self) -> str: ...
    @property
    def source_id(self) -> int: ...
    @property
    def prefix(self) -> bytes: ...


@dataclass(frozen=True)
class Identified:
    """What to do with a newly matched file. Neither a record nor a reason to wait: look at
    it again at the next scan (``settle``: only once it has changed)."""

    record: SourceRecord | None = None  # follow it as this source, from record.offset
    continues_line: bool = False  # the byte before record.offset is not a newline
    event: str | None = None  # how it was recognised, for the status
    waiting: str | None = None  # why it waits for another file
    settle: bool = False


def identify(
    writer: Writer, opened: OpenedFile, path: str, *, from_end: bool, followed: Iterable[Held]
) -> Identified:
    """Resolve ``opened`` (found at ``path``) to a source, registering a new one when it is
    new: from its last complete line when ``from_end`` (a first start at the end)."""
    st, prefix = opened.stat, opened.prefix
    if not opened.gz and len(prefix) < FINGERPRINT_BYTES and b"\n" not in prefix:
        return Identified()  # not one complete line yet: nothing to identify it by
    match = writer.find_source(
        device=st.st_dev,
        inode=st.st_ino,
        prefix=prefix,
        full_prefix_len=FINGERPRINT_BYTES,
        grown=True,
    )
    holder = holder_of(followed, match.record.source_id if match else None, opened)
    if holder is not None:
        return Identified(waiting=f"same content as {holder.path}, which is still being read")
    if match is None:
        offset, event = 0, None
        if from_end:
            offset = (
                gzip_content_length(opened.raw)
                if opened.gz
                else last_line_end(opened.raw, st.st_size)
            )
            event = f"present at first start: following from byte {offset}"
        record = writer.register_source(
            device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path, offset=offset
        )
        return Identified(record, event=event)
    record = match.record
    if not opened.gz and st.st_size < record.offset:
        if not match.by_inode:
            # A copy of content read already (copytruncate's copy, taken before the last
            # lines were read from the original): nothing in it is new.
            return Identified(settle=True)
        event = (
            f"truncated while not followed ({st.st_size} < {record.offset} bytes): "
            "reading it from byte 0 as a new source"
        )
        record = writer.register_source(device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path)
        return Identified(record, event=event)
    writer.rebind_source(
        record.source_id, device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path
    )
    event = (
        None
        if match.by_inode
        else f"same content as {record.path}: reading from byte {record.offset}"
    )
    continues = (
        record.offset > 0
        and not opened.gz
        and os.pread(opened.raw.fileno(), 1, record.offset - 1) != b"\n"
    )
    return Identified(record, continues, event)


def holder_of(followed: Iterable[Held], source_id: int | None, opened: OpenedFile) -> Held | None:
    """The followed file that holds this source, or (for a short file, maybe a copy in
    progress) whose first bytes this file's content is the beginning of."""
    followed = list(followed)
    for f in followed:
        if source_id is not None and f.source_id == source_id:
            return f
    if source_id is not None or opened.gz or len(opened.prefix) >= FINGERPRINT_BYTES:
        return None
    for f in followed:
        if len(f.prefix) > len(opened.prefix) and f.prefix.startswith(opened.prefix):
            return f
    return None


# -- what the store knows -------------------------------------------------------------------


def known_identities(con: duckdb.DuckDBPyConnection) -> set[tuple[int, int]]:
    """The device and inode of every stored source."""
    return {
        (int(d), int(i)) for d, i in con.execute("SELECT device, inode FROM sources").fetchall()
    }


def stored_paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(row[0]) for row in con.execute("SELECT path FROM sources").fetchall()]


def stored_totals(con: duckdb.DuckDBPyConnection, source_id: int) -> tuple[int, int, int]:
    """Lines, rejects and conflicts stored from a source, all time."""
    rows = con.execute(
        "SELECT lines, rejects, conflicts FROM sources WHERE source_id = ?", [source_id]
    ).fetchall()
    return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else (0, 0, 0)
