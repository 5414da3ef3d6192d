"""Rotation detection: what happened to a followed file since it was last looked at.

Every kind of rotation is found through the open handle, never by trusting a path:

- rename and create: the scan finds the followed device and inode under another name
  (``track_names``), or no longer under the glob at all (it is drained through its handle
  and its new name, if any, is recorded); the new file at the old path is a new identity;
- copytruncate and truncation: the open file is shorter than what was read from it, or its
  first bytes changed, or a line no longer ends where one was read to (``look``);
- a file replaced: a new device and inode at the path, the old one detached;
- compressed rotated files: recognised by ``identify`` from their uncompressed first bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conflictlens.ingest.identity import FINGERPRINT_BYTES
from conflictlens.ingest.tail.handle import current_name

if TYPE_CHECKING:
    from conflictlens.ingest.tail.followed import FollowedFile


@dataclass(frozen=True)
class Change:
    """What ``look`` found in an open plain file."""

    size: int
    deleted: bool = False  # no name left: drained, then let go
    grew: bool = False
    truncated: str | None = None  # why the content is no longer what was read
    prefix: bytes | None = None  # its first bytes, when there are more of them than known


def look(
    fd: int, *, size: int | None, read_offset: int, continues_line: bool, prefix: bytes
) -> Change:
    """Look at an open plain file that was ``size`` bytes long (None: never looked at) and
    read up to ``read_offset``, whose first bytes were ``prefix``."""
    st = os.fstat(fd)
    now_size = st.st_size
    deleted = st.st_nlink == 0
    grew = size is not None and now_size > size
    if now_size < read_offset:
        return Change(now_size, deleted, grew, f"truncated from {read_offset} to {now_size} bytes")
    if now_size == size:
        return Change(now_size, deleted, grew)
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    same = min(len(head), len(prefix))
    if len(head) < len(prefix) or head[:same] != prefix[:same]:
        return Change(now_size, deleted, grew, "rewritten: its first bytes changed")
    if (
        read_offset > 0
        and not continues_line
        and now_size > read_offset
        and os.pread(fd, 1, read_offset - 1) != b"\n"
    ):
        return Change(now_size, deleted, grew, "truncated and written again past the offset read")
    return Change(now_size, deleted, grew, prefix=head if len(head) > len(prefix) else None)


def track_names(
    files: Iterable[FollowedFile],
    seen: Mapping[tuple[int, int], str],
    now: float,
    rebind: Callable[[FollowedFile], None],
) -> None:
    """Follow renames: ``seen`` is where the scan found each device and inode. A followed
    file found under another name takes it; one not found is detached (drained until it is
    quiet) under the name it has now, if any. ``rebind`` records a new name in the store."""
    for f in files:
        path = seen.get(f.key)
        if path is not None:
            f.attached, f.detached_at = True, None
            if path != f.path:
                f.last_event = f"renamed from {f.path}"
                f.path = path
                rebind(f)
            continue
        if f.attached:
            f.attached, f.detached_at = False, now
            f.last_event = (
                "no longer matches the glob (rotated away or deleted): reading it to its end"
            )
        where = current_name(f.opened)
        if where is not None and where != f.path:
            f.last_event = f"renamed from {f.path} (no longer matching): reading it to its end"
            f.path = where
            rebind(f)
