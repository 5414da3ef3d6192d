"""The follower: files matching globs, followed into the store on one thread.

Each cycle of its ``Watcher`` thread it

1. scans the globs (``scan_globs``, every ``poll_ms``, or sooner when ``FolderEvents`` saw
   something created, renamed or deleted), follows renames (``rotation.track_names``) and
   resolves every file it does not follow yet by identity (``identify``), never by path;
2. checks every followed file through its open handle (``rotation.look``) and reads its
   new complete lines (``LineReader``), and
3. commits them (``Committer``: rows and the new offset in one transaction) every
   ``flush_lines`` lines or ``flush_ms`` milliseconds, and at stop.

A file that cannot be read (a FIFO or a directory matching the glob, permission denied, a
damaged gzip file, a format that cannot be recognised) is reported in the status and the
other files go on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import duckdb

from conflictlens._errors import first_line
from conflictlens.ingest.identity import FINGERPRINT_BYTES
from conflictlens.ingest.tail.commit import Committer
from conflictlens.ingest.tail.events import FolderEvents
from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.handle import GZIP_ERRORS
from conflictlens.ingest.tail.identify import stored_paths
from conflictlens.ingest.tail.scan import FileKey, ScanSchedule, scan_globs
from conflictlens.ingest.tail.spec import START_END, SourceSpec
from conflictlens.ingest.tail.status import SourceStatus, StatusCallback, snapshot
from conflictlens.ingest.tail.tracking import FileSet
from conflictlens.ingest.tail.watcher import Watcher
from conflictlens.store import Writer, connect

log = logging.getLogger("conflictlens.tail")

READ_BUDGET = 8 << 20  # bytes read from one file per cycle, so that others get their turn


@dataclass(frozen=True)
class Timing:
    flush_lines: int  # commit every this many lines read,
    flush_s: float  # or this long after the oldest line not committed
    poll_s: float  # scan the globs this often, with or without file-system events
    linger_s: float  # let a file go once it is out of the globs and quiet this long
    status_s: float  # call on_status this often


class Follower:
    """Follows the files of one or more ``SourceSpec``s into the store, on its own thread.

    ``db`` is the store's path (opened for writing with ``store.connect`` on ``start()``) or
    an open connection, of which the follower then uses its own cursor. ``status()`` and
    ``on_status`` report every followed, waiting or unreadable file.
    """

    def __init__(
        self,
        db: str | Path | duckdb.DuckDBPyConnection,
        specs: Sequence[SourceSpec],
        *,
        flush_ms: int = 500,
        flush_lines: int = 10_000,
        poll_ms: int = 1000,
        linger_ms: int = 5000,
        status_ms: int = 1000,
        on_status: StatusCallback | None = None,
        watch: bool = True,
    ) -> None:
        if not specs:
            raise ValueError("nothing to follow: no source given")
        if flush_ms < 0 or flush_lines < 1 or poll_ms < 10 or linger_ms < 0 or status_ms < 10:
            raise ValueError("flush_ms, flush_lines, poll_ms, linger_ms or status_ms out of range")
        self._db = db
        self._specs = list(specs)
        self._patterns = [spec.absolute_pattern for spec in self._specs]
        self._timing = Timing(
            flush_lines, flush_ms / 1000, poll_ms / 1000, linger_ms / 1000, status_ms / 1000
        )
        self._on_status = on_status
        self._watch = watch
        self._watcher = Watcher(
            cycle=self._cycle, deadline=self._deadline, failed=self._failed, finish=self._shutdown
        )
        self._lock = threading.Lock()
        self._started = False
        self._con: duckdb.DuckDBPyConnection | None = None
        self._committer: Committer | None = None
        self._events: FolderEvents | None = None
        self._own_files: set[str] = set()
        self._tracked = FileSet(len(self._specs))
        self._scans = ScanSchedule(self._timing.poll_s)
        self._next_status = 0.0
        self._busy = False
        self._caught_up = False
        self._caught_up_at = 0.0  # when the cycle that set _caught_up began
        self._followed_paths: frozenset[str] = frozenset()
        self._statuses: list[SourceStatus] = []
        self.last_error: str | None = None  # a problem of the follower itself, not of a file

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the store and start following. Store errors (locked, newer schema) raise here."""
        if self._started:
            raise RuntimeError("this follower was already started")
        con = (
            self._db.cursor()
            if isinstance(self._db, duckdb.DuckDBPyConnection)
            else connect(self._db)
        )
        self._con = con
        try:
            for row in con.execute("PRAGMA database_list").fetchall():
                if row[2]:  # the store's own files never count as logs, whatever the glob
                    path = os.path.abspath(str(row[2]))
                    self._own_files |= {path, f"{path}.wal", f"{path}.tmp"}
            self._committer = Committer(
                Writer(con),
                self._specs,
                flush_lines=self._timing.flush_lines,
                flush_s=self._timing.flush_s,
            )
            paths = stored_paths(con)
            self._tracked.from_end = [
                spec.start == START_END and not any(fnmatch(p, pattern) for p in paths)
                for spec, pattern in zip(self._specs, self._patterns, strict=True)
            ]
            if self._watch:
                self._events = FolderEvents(
                    self._patterns, self._own_files, self._nudge, lambda: self._followed_paths
                )
                if not self._events.start():
                    self._events = None
        except BaseException:
            con.close()
            raise
        self._started = True
        self._watcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what was read, close the files and the store. Safe to call twice."""
        self._watcher.stop(timeout)

    def __enter__(self) -> Follower:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._watcher.running

    # -- what others may ask -------------------------------------------------------------

    def statuses(self) -> list[SourceStatus]:
        with self._lock:
            return list(self._statuses)

    def status(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.statuses()]

    @property
    def caught_up(self) -> bool:
        """Every followed file is stored up to its size at the last cycle (but for a last
        line without its newline) and no file waits for another to be let go."""
        return self._caught_up

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until a cycle that began after this call (with a scan of the globs) finds
        everything caught up; False if that does not happen within ``timeout`` seconds."""
        asked = time.monotonic()
        self._nudge(True)
        while time.monotonic() < asked + timeout:
            if self._caught_up and self._caught_up_at >= asked:
                return True
            if not self.running:
                return False
            time.sleep(0.02)
        return False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for reading the store from another thread (close it when done)."""
        if self._con is None:
            raise RuntimeError("the follower is not started")
        return self._con.cursor()

    @property
    def _files(self) -> dict[FileKey, FollowedFile]:
        return self._tracked.files

    # -- the watcher's callbacks (on its thread, but _nudge) ------------------------------

    def _nudge(self, rescan: bool) -> None:
        if rescan:
            self._scans.ask()
        self._watcher.wake()

    def _deadline(self) -> float | None:
        if self._busy:
            return None
        deadline = min(self._scans.next, self._next_status)
        for f in self._files.values():
            if f.pending.since is not None:
                deadline = min(deadline, f.pending.since + self._timing.flush_s)
            if not f.attached and f.detached_at is not None:
                deadline = min(deadline, max(f.last_growth, f.detached_at) + self._timing.linger_s)
        return deadline

    def _failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._caught_up = False
        try:
            self._publish(time.monotonic())
        except Exception:
            log.exception("status failed")

    def _cycle(self, now: float) -> None:
        if self._scans.due(now):
            self._scan(now)
        busy = False
        # Files being let go (rotated away, deleted) first: their lines were written earlier.
        for f in sorted(self._files.values(), key=lambda f: f.attached):
            self._step(f, now)
            busy = busy or f.reader.more
        for f in list(self._files.values()):
            if f.gz and f.reader.finished and not f.pending:
                self._release(f, settle=True)
            elif (
                not f.attached
                and (f.caught_up or f.format_blocked_at is not None)
                and now - max(f.last_growth, f.detached_at or now) >= self._timing.linger_s
            ):
                self._release(f, settle=False)
        self._busy = busy
        caught_up = not self._tracked.waiting and all(
            f.caught_up or f.format_blocked_at is not None for f in self._files.values()
        )
        self._followed_paths = frozenset(f.path for f in self._files.values())
        self._caught_up = caught_up
        if now >= self._next_status:
            self._publish(now)
        else:
            self._snapshot()
        self._caught_up_at = now  # after the snapshot: wait_caught_up() then sees it fresh
        self.last_error = None

    def _shutdown(self) -> None:
        for f in list(self._files.values()):
            try:
                self._commit(f, time.monotonic(), force=True)
            except Exception:
                log.exception("final flush of %s failed", f.path)
            f.close()
        self._caught_up = False
        try:
            self._publish(time.monotonic())
        except Exception:
            log.exception("final status failed")
        self._files.clear()
        if self._events is not None:
            self._events.stop()
        if self._con is not None:
            self._con.close()

    # -- scanning ------------------------------------------------------------------------

    def _scan(self, now: float) -> None:
        self._scans.scanned(now)
        if self._events is not None:
            self._events.watch_new_folders()
        scan = scan_globs(self._patterns, self._own_files)
        assert self._committer is not None and self._con is not None
        if self._tracked.update(scan, now, self._committer.writer, self._con, self._rebind):
            self._scans.ask()

    def _rebind(self, f: FollowedFile) -> None:
        assert self._committer is not None
        self._committer.writer.rebind_source(
            f.source_id, device=f.key[0], inode=f.key[1], prefix=f.prefix, path=f.path
        )

    def _release(self, f: FollowedFile, *, settle: bool) -> None:
        """Let a file go: commit what was read and close it."""
        self._commit(f, time.monotonic(), force=True)
        f.close()
        self._tracked.drop(f, settle=settle)
        self._scans.ask()  # a file waiting for this source may go on now

    # -- reading and committing ----------------------------------------------------------

    def _step(self, f: FollowedFile, now: float) -> None:
        assert self._committer is not None
        try:
            change = f.check(now)
            if change is not None and change.truncated:
                self._commit(f, now, force=True)
                self._restart(f, change.truncated)
            elif change is not None and change.prefix is not None:
                self._rebind(f)
            if f.format_blocked_at is not None:
                if f.size == f.format_blocked_at and not self._committer.formats.known_for(
                    f.spec_index
                ):
                    return
                f.format_blocked_at = None
            max_line_bytes = self._specs[f.spec_index].options.max_line_bytes
            f.read(max_line_bytes=max_line_bytes, budget=READ_BUDGET, now=now)
        except GZIP_ERRORS as exc:
            # A compressed file still being written, or damaged: keep its complete lines,
            # let it go, and look at it again when it changes.
            f.last_error = f"cannot read this compressed file to its end (yet): {exc}"
            self._tracked.problems[f.path] = (f.spec_index, f.last_error)
            f.reader.finished = True
        except OSError as exc:
            f.last_error = f"cannot read: {exc.strerror or exc}"
        except duckdb.Error as exc:  # the store refused to record a rotation: try again
            f.last_error = f"store error: {first_line(exc)}"
            return
        self._commit(f, now, force=f.gz and f.reader.finished)

    def _restart(self, f: FollowedFile, why: str) -> None:
        """The followed file's content is not what was read: it is a new source from byte 0."""
        assert self._committer is not None
        head = os.pread(f.opened.raw.fileno(), FINGERPRINT_BYTES, 0)
        record = self._committer.writer.register_source(
            device=f.key[0], inode=f.key[1], prefix=head, path=f.path
        )
        old = f.source_id
        f.restart(record.source_id, head)
        self._committer.formats.record(f)
        f.last_event = (
            f"{why}: reading it again from byte 0 as source {f.source_id} (was source {old})"
        )
        self._scans.ask()  # the copy of the old content may be read now

    def _commit(self, f: FollowedFile, now: float, *, force: bool) -> None:
        """Commit when due; when the store refused, read again from the store's offset."""
        assert self._committer is not None
        if self._committer.flush(f, now, force=force):
            return
        if f.gz:
            self._release(f, settle=False)  # looked at again at the next scan
            return
        f.rewind(self._committer.stored_offset(f))

    # -- status --------------------------------------------------------------------------

    def _publish(self, now: float) -> None:
        """Tell ``on_status`` (every ``status_ms``), after measuring the line rates."""
        self._next_status = now + self._timing.status_s
        for f in self._files.values():
            f.totals.measure(now)
        statuses = self._snapshot()
        if self._on_status is not None:
            try:
                self._on_status(statuses)
            except Exception:
                log.exception("status callback failed")

    def _snapshot(self) -> list[SourceStatus]:
        """The status of every file, kept for ``statuses()`` (every cycle)."""
        patterns = [spec.pattern for spec in self._specs]
        tracked = self._tracked
        statuses = snapshot(
            tracked.files.values(), tracked.waiting.values(), tracked.problems, patterns
        )
        with self._lock:
            self._statuses = statuses
        return statuses
