"""Live tailing: follow the files matching globs and commit their lines as they are written.

A ``Follower`` owns one writable connection to the store and one thread. Each cycle it

1. scans the globs (every ``poll_ms``, or sooner when the file system says something was
   created, renamed or deleted) and resolves every file it does not follow yet by identity
   (device, inode, first bytes) or content, never by path: a rotated, renamed or compressed
   file is recognised as the source it was, so nothing is read twice or skipped;
2. checks every followed file through its open handle (grown, truncated, rewritten,
   deleted), reads its new complete lines (``read_chunks(eof_ends_line=False)``: a last line
   without its newline waits, also across a restart), and
3. parses and commits them (``store_chunk`` → ``Writer.commit``: rows and the new offset in
   one transaction) every ``flush_lines`` lines or ``flush_ms`` milliseconds.

watchdog (inotify) events only wake the thread early; the periodic stat poll alone would
find every line too. A file that cannot be read (a FIFO or a directory matching the glob,
permission denied, a damaged gzip file, a format that cannot be recognised) is reported in
the status and the other files go on.

Rotation:

- rename and create: the old file is followed by its handle under its new name (or, when the
  new name no longer matches, drained until it has been quiet for ``linger_ms``), the new
  file at the old path is a new source from byte 0;
- copytruncate: a followed file that becomes shorter than what was read from it, or whose
  first bytes change, is a new source read from byte 0 (even when its first bytes are the
  same as before); the copy is recognised by content as the old source and only what was not
  read before the truncation is read from it;
- compressed siblings (``access.log.1.gz``) are recognised by the fingerprint of their
  uncompressed first bytes and read from the offset already reached, so a compressed copy of
  a fully read file adds nothing. A file whose source is still being read under another name
  waits until that one is let go.

``python -m ingest.tail --db PATH --source GLOB`` runs a follower until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import duckdb
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingest.batch import store_chunk
from ingest.follow import (
    GZIP_ERRORS,
    FollowedFile,
    NotRegularFile,
    OpenedFile,
    file_kind,
    gzip_content_length,
    last_line_end,
    merge_chunks,
    open_file,
)
from ingest.formats import FormatError, LogFormat, UnknownFormat, detect_format, get_format
from ingest.identity import FINGERPRINT_BYTES
from ingest.lines import Chunk, split_lines
from ingest.options import IngestOptions
from ingest.pipeline import choose_format
from store import StoreError, Writer, connect, default_db_path

log = logging.getLogger("conflictlens.tail")

START_BEGINNING = "beginning"
START_END = "end"

READ_BUDGET = 8 << 20  # bytes read from one file per cycle, so that others get their turn
FLUSH_BYTES = 8 << 20  # a buffer this large is committed without waiting for flush_ms
MIN_CYCLE_GAP = 0.02  # seconds: file-system events never wake the thread more often
MIN_SCAN_GAP = 0.1  # seconds between scans caused by events
FALLBACK_FORMAT = "nginx-combined"  # only to count overlong lines before any line was seen


@dataclass(frozen=True)
class SourceSpec:
    """Which files to follow and how to read them.

    ``start`` applies to files present when the follower starts for the first time for this
    pattern (no file matching it is in the store yet): "end" skips what they hold already.
    A file that appears later, or any file on a later start, is read from byte 0.
    """

    pattern: str  # a glob; ** matches folders recursively
    format: str = "auto"
    log_format: str | None = None  # an nginx or Apache format string
    start: str = START_BEGINNING
    service: str | None = None  # recorded on every line (overrides options.service)
    options: IngestOptions = field(default_factory=IngestOptions)

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("a source needs a file path or glob")
        if self.start not in (START_BEGINNING, START_END):
            raise ValueError(
                f"start must be {START_BEGINNING!r} or {START_END!r}, not {self.start!r}"
            )
        if self.format != "auto" or self.log_format:
            get_format(self.format, self.log_format)  # an unknown format fails here, not later

    @property
    def absolute_pattern(self) -> str:
        return os.path.abspath(os.path.expanduser(self.pattern))

    def ingest_options(self) -> IngestOptions:
        if self.service is None:
            return self.options
        return dataclasses.replace(self.options, service=self.service)


@dataclass(frozen=True)
class SourceStatus:
    """One file as the follower sees it; ``as_dict()`` is what serve reports."""

    path: str
    pattern: str
    state: str  # following | draining | reading (a compressed file) | waiting | error
    source_id: int | None = None
    format: str | None = None
    offset: int = 0  # bytes committed
    size: int | None = None  # the file's size (None for a compressed file)
    lag_bytes: int | None = None  # size - offset: bytes not stored yet (an unfinished line too)
    lines: int = 0  # lines stored from this source, all time
    lines_per_second: float = 0.0
    rejects: int = 0  # rejected lines of this source, all time
    conflicts: int = 0
    last_error: str | None = None
    last_event: str | None = None  # the last rotation, rename, truncation or deletion seen

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


StatusCallback = Callable[[list[SourceStatus]], None]


@dataclass
class _Waiting:
    path: str
    spec_index: int
    reason: str


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
        self._options = [spec.ingest_options() for spec in self._specs]
        self._patterns = [spec.absolute_pattern for spec in self._specs]
        self._flush_s = flush_ms / 1000
        self._flush_lines = flush_lines
        self._poll_s = poll_ms / 1000
        self._linger_s = linger_ms / 1000
        self._status_s = status_ms / 1000
        self._on_status = on_status
        self._watch = watch

        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer: Writer | None = None
        self._observer: Any = None
        self._watched: dict[str, Any] = {}  # folder → its watchdog watch (None: polled only)
        self._handler: _Nudge | None = None
        self._own_files: set[str] = set()

        self._files: dict[tuple[int, int], FollowedFile] = {}
        self._waiting: dict[tuple[int, int], _Waiting] = {}
        self._problems: dict[str, tuple[int, str]] = {}  # path → (spec, what is wrong)
        self._settled: dict[tuple[int, int], tuple[int, int]] = {}  # key → (size, mtime)
        self._spec_formats: dict[int, LogFormat] = {}
        self._fresh: list[bool] = [False] * len(self._specs)
        self._first_scan = True
        self._rescan = True
        self._last_scan = 0.0
        self._next_scan = 0.0
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
        if self._thread is not None:
            raise RuntimeError("this follower was already started")
        if isinstance(self._db, duckdb.DuckDBPyConnection):
            self._con = self._db.cursor()
        else:
            self._con = connect(self._db)
        try:
            for row in self._con.execute("PRAGMA database_list").fetchall():
                if row[2]:  # the store's own files never count as logs, whatever the glob
                    path = os.path.abspath(str(row[2]))
                    self._own_files |= {path, f"{path}.wal", f"{path}.tmp"}
            self._writer = Writer(self._con)
            self._fresh = self._fresh_specs()
            if self._watch:
                self._start_watching()
        except BaseException:
            self._con.close()
            raise
        self._thread = threading.Thread(target=self._run, name="conflictlens-follow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what was read, close the files and the store. Safe to call twice."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Follower:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
        self._rescan = True
        self._wake.set()
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

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                started = time.monotonic()
                try:
                    self._cycle(started)
                    self.last_error = None
                except Exception as exc:  # a bug or a broken store: report, wait, go on
                    log.exception("follow cycle failed")
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._caught_up = False
                    try:
                        self._publish(time.monotonic())
                    except Exception:
                        log.exception("status failed")
                    self._stop.wait(1.0)
                if self._stop.is_set():
                    break
                if not self._busy:
                    timeout = self._next_deadline() - time.monotonic()
                    if timeout > 0:
                        self._wake.wait(timeout)
                gap = MIN_CYCLE_GAP - (time.monotonic() - started)
                if gap > 0:
                    self._stop.wait(gap)
        finally:
            self._shutdown()

    def _next_deadline(self) -> float:
        deadline = min(self._next_scan, self._next_status)
        for f in self._files.values():
            if f.first_buffered_at is not None:
                deadline = min(deadline, f.first_buffered_at + self._flush_s)
            if not f.attached and f.detached_at is not None:
                deadline = min(deadline, max(f.last_growth, f.detached_at) + self._linger_s)
        return deadline

    def _cycle(self, now: float) -> None:
        if now >= self._next_scan or (self._rescan and now - self._last_scan >= MIN_SCAN_GAP):
            self._scan(now)
        busy = False
        # Files being let go (rotated away, deleted) first: their lines were written earlier.
        for f in sorted(self._files.values(), key=lambda f: f.attached):
            self._step(f, now)
            busy = busy or f.more
        for f in list(self._files.values()):
            if f.gz and f.finished and not f.buffer:
                self._release(f, settle=True)
            elif (
                not f.attached
                and (f.caught_up or f.format_blocked_at is not None)
                and now - max(f.last_growth, f.detached_at or now) >= self._linger_s
            ):
                self._release(f, settle=False)
        self._busy = busy
        caught_up = not self._waiting and all(
            f.caught_up or f.format_blocked_at is not None for f in self._files.values()
        )
        self._followed_paths = frozenset(f.path for f in self._files.values())
        self._caught_up = caught_up
        if now >= self._next_status:
            self._publish(now)
        else:
            self._snapshot()
        self._caught_up_at = now  # after the snapshot: wait_caught_up() then sees it fresh

    def _shutdown(self) -> None:
        for f in list(self._files.values()):
            try:
                self._flush(f, time.monotonic(), force=True)
            except Exception:
                log.exception("final flush of %s failed", f.path)
            f.close()
        self._caught_up = False
        try:
            self._publish(time.monotonic())
        except Exception:
            log.exception("final status failed")
        self._files.clear()
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                log.exception("stopping the file watcher failed")
        if self._con is not None:
            self._con.close()

    # -- scanning ------------------------------------------------------------------------

    def _fresh_specs(self) -> list[bool]:
        """Per spec: does the store hold no file matching its pattern yet (a first start)?"""
        assert self._con is not None
        paths = [row[0] for row in self._con.execute("SELECT path FROM sources").fetchall()]
        return [
            spec.start == START_END and not any(fnmatch(p, pattern) for p in paths)
            for spec, pattern in zip(self._specs, self._patterns, strict=True)
        ]

    def _scan(self, now: float) -> None:
        self._rescan = False
        self._last_scan = now
        self._next_scan = now + self._poll_s
        if self._watch:
            self._watch_new_folders()
        seen: dict[tuple[int, int], tuple[str, int, os.stat_result]] = {}
        problems: dict[str, tuple[int, str]] = {}
        for index, pattern in enumerate(self._patterns):
            for path in sorted(glob.glob(pattern, recursive=True)):
                if path in self._own_files:
                    continue
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    problems[path] = (index, f"cannot stat: {exc.strerror or exc}")
                    continue
                if not _is_regular(st):
                    problems[path] = (index, f"{file_kind(st.st_mode)}, not a log file: skipped")
                    continue
                seen.setdefault((st.st_dev, st.st_ino), (path, index, st))
        for key, f in self._files.items():
            hit = seen.get(key)
            if hit is not None:
                f.attached, f.detached_at = True, None
                if hit[0] != f.path:
                    f.last_event = f"renamed from {f.path}"
                    f.path = hit[0]
                    self._rebind(f)
            else:
                if f.attached:
                    f.attached, f.detached_at = False, now
                    f.last_event = (
                        "no longer matches the glob (rotated away or deleted): "
                        "reading it to its end"
                    )
                where = _current_name(f)
                if where is not None and where != f.path:
                    f.last_event = (
                        f"renamed from {f.path} (no longer matching): reading it to its end"
                    )
                    f.path = where
                    self._rebind(f)
        self._settled = {k: v for k, v in self._settled.items() if k in seen}
        self._waiting = {}
        # Files the store knows by device and inode first: when a copy or a compressed
        # sibling has the same content, the file itself takes its source, the copy waits.
        assert self._con is not None
        known = {
            (int(d), int(i))
            for d, i in self._con.execute("SELECT device, inode FROM sources").fetchall()
        }
        new = [key for key in seen if key not in self._files]
        for key in sorted(new, key=lambda k: k not in known):
            path, index, st = seen[key]
            self._consider(key, path, index, st, problems)
        self._problems = problems
        self._first_scan = False

    def _consider(
        self,
        key: tuple[int, int],
        path: str,
        index: int,
        st: os.stat_result,
        problems: dict[str, tuple[int, str]],
    ) -> None:
        """A file matching a glob that is not followed: which source is it, and from where?"""
        signature = (st.st_size, st.st_mtime_ns)
        if self._settled.get(key) == signature:
            if path in self._problems:
                problems[path] = self._problems[path]
            return
        try:
            opened = open_file(path)
        except FileNotFoundError:
            return
        except NotRegularFile as exc:
            problems[path] = (index, f"{exc}: skipped")
            return
        except PermissionError:
            problems[path] = (index, "permission denied")
            return
        except GZIP_ERRORS as exc:
            problems[path] = (index, f"cannot read this compressed file (yet): {exc}")
            self._settled[key] = signature
            return
        except OSError as exc:
            problems[path] = (index, f"cannot read: {exc.strerror or exc}")
            return
        keep = False
        try:
            keep = self._adopt(key, path, index, opened, problems)
        except GZIP_ERRORS as exc:
            problems[path] = (index, f"cannot read this compressed file (yet): {exc}")
            self._settled[key] = signature
        except (OSError, duckdb.Error) as exc:
            problems[path] = (index, f"cannot follow: {exc}")
        finally:
            if not keep:
                opened.close()

    def _adopt(
        self,
        key: tuple[int, int],
        path: str,
        index: int,
        opened: OpenedFile,
        problems: dict[str, tuple[int, str]],
    ) -> bool:
        assert self._writer is not None
        st = opened.stat
        if (st.st_dev, st.st_ino) != key:
            self._rescan = True  # replaced between the stat and the open
            return False
        prefix = opened.prefix
        if not opened.gz and len(prefix) < FINGERPRINT_BYTES and b"\n" not in prefix:
            return False  # not one complete line yet: nothing to identify it by
        match = self._writer.find_source(
            device=st.st_dev,
            inode=st.st_ino,
            prefix=prefix,
            full_prefix_len=FINGERPRINT_BYTES,
            grown=True,
        )
        holder = self._holder(match.record.source_id if match else None, opened)
        if holder is not None:
            self._waiting[key] = _Waiting(
                path, index, f"same content as {holder.path}, which is still being read"
            )
            return False
        event: str | None = None
        if match is None:
            offset = 0
            if self._first_scan and self._fresh[index]:
                offset = (
                    gzip_content_length(opened.raw)
                    if opened.gz
                    else last_line_end(opened.raw, st.st_size)
                )
                event = f"present at first start: following from byte {offset}"
            record = self._writer.register_source(
                device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path, offset=offset
            )
            continues = False
        else:
            record = match.record
            if not opened.gz and st.st_size < record.offset:
                if not match.by_inode:
                    # A copy of content read already (copytruncate's copy, taken before the
                    # last lines were read from the original): nothing in it is new.
                    self._settled[key] = (st.st_size, st.st_mtime_ns)
                    return False
                event = (
                    f"truncated while not followed ({st.st_size} < {record.offset} bytes): "
                    "reading it from byte 0 as a new source"
                )
                record = self._writer.register_source(
                    device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path
                )
            else:
                self._writer.rebind_source(
                    record.source_id, device=st.st_dev, inode=st.st_ino, prefix=prefix, path=path
                )
                if not match.by_inode:
                    event = f"same content as {record.path}: reading from byte {record.offset}"
            continues = (
                record.offset > 0
                and not opened.gz
                and os.pread(opened.raw.fileno(), 1, record.offset - 1) != b"\n"
            )
        f = FollowedFile(
            path=path,
            spec_index=index,
            opened=opened,
            source_id=record.source_id,
            offset=record.offset,
            continues_line=continues,
            stored_format=record.format,
            stored_log_format=record.log_format,
        )
        f.last_growth = time.monotonic()
        f.last_event = event
        f.lines, f.rejects, f.conflicts = self._totals(record.source_id)
        self._files[key] = f
        problems.pop(path, None)
        return True

    def _holder(self, source_id: int | None, opened: OpenedFile) -> FollowedFile | None:
        """The followed file that holds this source, or (for a short file, maybe a copy in
        progress) whose first bytes this file's content is the beginning of."""
        for f in self._files.values():
            if source_id is not None and f.source_id == source_id:
                return f
        if source_id is not None or opened.gz or len(opened.prefix) >= FINGERPRINT_BYTES:
            return None
        for f in self._files.values():
            if len(f.prefix) > len(opened.prefix) and f.prefix.startswith(opened.prefix):
                return f
        return None

    def _totals(self, source_id: int) -> tuple[int, int, int]:
        assert self._con is not None
        rows = self._con.execute(
            "SELECT lines, rejects, conflicts FROM sources WHERE source_id = ?", [source_id]
        ).fetchall()
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else (0, 0, 0)

    def _rebind(self, f: FollowedFile) -> None:
        assert self._writer is not None
        self._writer.rebind_source(
            f.source_id, device=f.device, inode=f.inode, prefix=f.prefix, path=f.path
        )

    def _release(self, f: FollowedFile, *, settle: bool) -> None:
        """Let a file go: commit what was read and close it."""
        self._flush(f, time.monotonic(), force=True)
        f.close()
        self._files.pop(f.key, None)
        if settle:
            self._settled[f.key] = (f.opened.stat.st_size, f.opened.stat.st_mtime_ns)
        self._rescan = True  # a file waiting for this source may go on now

    # -- reading and committing ----------------------------------------------------------

    def _step(self, f: FollowedFile, now: float) -> None:
        options = self._options[f.spec_index]
        try:
            change = f.check(now)
            if change.truncated:
                self._flush(f, now, force=True)
                self._restart(f, change.truncated)
            elif change.prefix_grew:
                self._rebind(f)
            if f.format_blocked_at is not None:
                if f.size == f.format_blocked_at and f.spec_index not in self._spec_formats:
                    return
                f.format_blocked_at = None
            f.read(max_line_bytes=options.max_line_bytes, budget=READ_BUDGET, now=now)
        except GZIP_ERRORS as exc:
            # A compressed file still being written, or damaged: keep its complete lines,
            # let it go, and look at it again when it changes.
            f.last_error = f"cannot read this compressed file to its end (yet): {exc}"
            self._problems[f.path] = (f.spec_index, f.last_error)
            f.finished = True
        except OSError as exc:
            f.last_error = f"cannot read: {exc.strerror or exc}"
        except duckdb.Error as exc:  # the store refused to record a rotation: try again
            f.last_error = f"store error: {_first_line(exc)}"
            return
        self._flush(f, now, force=f.gz and f.finished)

    def _restart(self, f: FollowedFile, why: str) -> None:
        """The followed file's content is not what was read: it is a new source from byte 0."""
        assert self._writer is not None
        head = os.pread(f.opened.raw.fileno(), FINGERPRINT_BYTES, 0)
        record = self._writer.register_source(
            device=f.device, inode=f.inode, prefix=head, path=f.path
        )
        old = f.source_id
        f.take_buffer()
        f.prefix = head
        f.source_id = record.source_id
        f.offset = f.read_offset = 0
        f.scanned_size = -1
        f.continues_line = False
        f.lines = f.rejects = f.conflicts = 0
        f.stored_format = f.stored_log_format = None
        if f.fmt is not None:
            self._writer.set_format(f.source_id, f.fmt.name, self._specs[f.spec_index].log_format)
        f.last_event = (
            f"{why}: reading it again from byte 0 as source {f.source_id} (was source {old})"
        )
        self._rescan = True  # the copy of the old content may be read now

    def _flush(self, f: FollowedFile, now: float, *, force: bool) -> None:
        if not f.buffer:
            return
        if not (
            force
            or f.buffered_lines >= self._flush_lines
            or f.buffered_bytes >= FLUSH_BYTES
            or (f.first_buffered_at is not None and now - f.first_buffered_at >= self._flush_s)
        ):
            return
        assert self._writer is not None
        chunks = merge_chunks(f.take_buffer())
        options = self._options[f.spec_index]
        try:
            fmt = self._format(f, chunks)
            if fmt is None:
                f.format_blocked_at = f.size
                self._rewind(f)
                return
            committed = [
                batch
                for chunk in chunks
                for batch in store_chunk(chunk, fmt, options, f.source_id, self._writer.commit)
            ]
            for parsed in committed:
                f.offset = parsed.end
                f.lines += parsed.lines
                f.conflicts += parsed.conflicts
                if parsed.rejects.height:
                    f.rejects += parsed.rejects.height
                    last = parsed.rejects.sort("offset").row(-1, named=True)
                    f.last_error = (
                        f"{parsed.rejects.height} line(s) rejected, the last at offset "
                        f"{last['offset']}: {last['reason']}"
                    )
        except Exception as exc:  # the store refused (offset moved, I/O): trust the store
            log.warning("commit for %s failed: %s", f.path, exc)
            f.last_error = f"commit failed: {_first_line(exc)}"
            self._rewind(f)

    def _rewind(self, f: FollowedFile) -> None:
        """Read again from the offset the store holds for this file's source."""
        assert self._writer is not None
        if f.gz:
            self._release(f, settle=False)  # looked at again at the next scan
            return
        try:
            record = self._writer.get_source(f.source_id)
        except duckdb.Error:
            record = None
        f.rewind(record.offset if record is not None else f.offset)

    def _format(self, f: FollowedFile, chunks: list[Chunk]) -> LogFormat | None:
        if f.fmt is not None:
            return f.fmt
        assert self._writer is not None
        spec = self._specs[f.spec_index]
        sibling = self._spec_formats.get(f.spec_index)
        try:
            fmt = choose_format(spec.format, spec.log_format, f.stored_format, f.stored_log_format)
        except FormatError:
            fmt = None
        if fmt is None:
            sample = next((c for c in chunks if c.data), None)
            lines = split_lines(sample).lines if sample is not None else None
            if lines is None or not lines["line"].str.strip_chars().ne("").any():
                # Only overlong or blank lines so far: count them, decide the format later.
                return sibling or get_format(FALLBACK_FORMAT)
            try:
                fmt = detect_format(lines)
            except UnknownFormat as exc:
                if sibling is None:
                    f.last_error = str(exc)
                    return None
                fmt = sibling
                f.last_error = None
                f.last_event = (
                    f"log format not recognised from its first lines; read as {sibling.name} "
                    f"like the other files of {spec.pattern}"
                )
        f.fmt = fmt
        self._writer.set_format(f.source_id, fmt.name, spec.log_format)
        self._spec_formats.setdefault(f.spec_index, fmt)
        return fmt

    # -- status --------------------------------------------------------------------------

    def _publish(self, now: float) -> None:
        """Tell ``on_status`` (every ``status_ms``), after measuring the line rates."""
        self._next_status = now + self._status_s
        for f in self._files.values():
            if now - f.rate_at >= 0.5:
                if f.rate_at:
                    f.rate = max(0.0, (f.lines - f.rate_lines) / (now - f.rate_at))
                f.rate_lines, f.rate_at = f.lines, now
        statuses = self._snapshot()
        if self._on_status is not None:
            try:
                self._on_status(statuses)
            except Exception:
                log.exception("status callback failed")

    def _snapshot(self) -> list[SourceStatus]:
        """The status of every file, kept for ``statuses()`` (every cycle)."""
        statuses: list[SourceStatus] = []
        for f in self._files.values():
            if f.gz:
                state = "reading"
            elif f.format_blocked_at is not None:
                state = "error"
            elif f.attached:
                state = "following"
            else:
                state = "draining"
            event, error = f.last_event, f.last_error
            if f.deleted and not f.attached:
                error = "deleted while being read: reading it to its end before letting it go"
            statuses.append(
                SourceStatus(
                    path=f.path,
                    pattern=self._specs[f.spec_index].pattern,
                    state=state,
                    source_id=f.source_id,
                    format=f.fmt.name if f.fmt else f.stored_format,
                    offset=f.offset,
                    size=None if f.gz else f.size,
                    lag_bytes=None if f.gz or f.size is None else max(0, f.size - f.offset),
                    lines=f.lines,
                    lines_per_second=round(f.rate, 1),
                    rejects=f.rejects,
                    conflicts=f.conflicts,
                    last_error=error,
                    last_event=event,
                )
            )
        for waiting in self._waiting.values():
            statuses.append(
                SourceStatus(
                    path=waiting.path,
                    pattern=self._specs[waiting.spec_index].pattern,
                    state="waiting",
                    last_event=waiting.reason,
                )
            )
        followed = {s.path for s in statuses}
        for path, (index, problem) in self._problems.items():
            if path not in followed:
                statuses.append(
                    SourceStatus(
                        path=path,
                        pattern=self._specs[index].pattern,
                        state="error",
                        last_error=problem,
                    )
                )
        statuses.sort(key=lambda s: s.path)
        with self._lock:
            self._statuses = statuses
        return statuses

    # -- waking up on file-system events -------------------------------------------------

    def _start_watching(self) -> None:
        try:
            _quiet_watchdog_stop()
            self._handler = _Nudge(self)
            self._observer = Observer()
            self._observer.start()
        except Exception as exc:  # no inotify (limits, platform): the poll still finds all
            log.warning("file-system events unavailable, polling only: %s", exc)
            self._observer = None
            self._watch = False
            return
        self._watch_new_folders()

    def _watch_new_folders(self) -> None:
        """Watch the folder of every pattern that exists (again); the poll covers the rest."""
        if self._observer is None:
            return
        for folder in [f for f in self._watched if not os.path.isdir(f)]:
            watch = self._watched.pop(folder)
            if watch is not None:
                try:
                    self._observer.unschedule(watch)
                except Exception:
                    log.debug("unscheduling %s failed", folder, exc_info=True)
        for pattern in self._patterns:
            folder, recursive = _watch_root(pattern)
            if folder in self._watched or not os.path.isdir(folder):
                continue
            try:
                self._watched[folder] = self._observer.schedule(
                    self._handler, folder, recursive=recursive
                )
            except Exception as exc:
                log.warning("cannot watch %s (polling it instead): %s", folder, exc)
                self._watched[folder] = None

    def _nudge(self, event: FileSystemEvent) -> None:
        """Runs on the watchdog thread: only sets flags."""
        kind = event.event_type
        if kind in ("opened", "closed_no_write") or (event.is_directory and kind == "modified"):
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        if all(p in self._own_files for p in paths) or not any(
            fnmatch(p, pattern) for p in paths for pattern in self._patterns
        ):
            return
        if kind not in ("modified", "closed") or not all(p in self._followed_paths for p in paths):
            self._rescan = True
        self._wake.set()


class _Nudge(FileSystemEventHandler):
    def __init__(self, follower: Follower) -> None:
        self._follower = follower

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._follower._nudge(event)


class _DropStopRace(logging.Filter):
    """watchdog logs an error when its inotify thread is stopped while waiting for events;
    that is how every stop goes, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


def _quiet_watchdog_stop() -> None:
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _DropStopRace) for f in logger.filters):
        logger.addFilter(_DropStopRace())


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else repr(exc)


def _current_name(f: FollowedFile) -> str | None:
    """Where an open file is now (Linux), or None when deleted or unknown."""
    try:
        where = os.readlink(f"/proc/self/fd/{f.opened.raw.fileno()}")
    except OSError:
        return None
    return None if where.endswith(" (deleted)") or not where.startswith("/") else where


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def _watch_root(pattern: str) -> tuple[str, bool]:
    """The folder to watch for a glob, and whether its sub-folders too."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            folder = os.sep.join(parts[:index]) or os.sep
            return folder, index < len(parts) - 1
    return os.path.dirname(pattern) or os.sep, False


# -- python -m ingest.tail ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.tail",
        description="Follow access logs into the conflictlens store until SIGTERM or Ctrl-C.",
    )
    parser.add_argument(
        "--db", default=None, help="the store (default $CONFLICTLENS_DB or ./conflictlens.duckdb)"
    )
    parser.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="GLOB",
        help="files to follow (repeatable)",
    )
    parser.add_argument("--format", default="auto", help="log format name, or auto (default)")
    parser.add_argument("--log-format", default=None, help="an nginx or Apache format string")
    parser.add_argument("--start", choices=(START_BEGINNING, START_END), default=START_BEGINNING)
    parser.add_argument("--service", default=None, help="service name recorded for every line")
    parser.add_argument("--flush-ms", type=int, default=500)
    parser.add_argument("--flush-lines", type=int, default=10_000)
    parser.add_argument("--poll-ms", type=int, default=1000)
    parser.add_argument("--linger-ms", type=int, default=5000)
    parser.add_argument("--max-line-bytes", type=int, default=IngestOptions.max_line_bytes)
    parser.add_argument("--keep-all", action="store_true", help="store every request as an event")
    parser.add_argument(
        "--status-ms",
        type=int,
        default=0,
        help="print the status as one JSON line on stdout this often (0: never)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    options = IngestOptions(max_line_bytes=args.max_line_bytes, keep_all=args.keep_all)
    try:
        specs = [
            SourceSpec(
                pattern,
                format=args.format,
                log_format=args.log_format,
                start=args.start,
                service=args.service,
                options=options,
            )
            for pattern in args.source
        ]
    except (ValueError, FormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def print_status(statuses: list[SourceStatus]) -> None:
        line = {
            "caught_up": follower.caught_up,
            "error": follower.last_error,
            "sources": [s.as_dict() for s in statuses],
        }
        print(json.dumps(line), flush=True)

    follower = Follower(
        args.db or default_db_path(),
        specs,
        flush_ms=args.flush_ms,
        flush_lines=args.flush_lines,
        poll_ms=args.poll_ms,
        linger_ms=args.linger_ms,
        status_ms=args.status_ms or 1000,
        on_status=print_status if args.status_ms else None,
    )
    try:
        follower.start()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        while not done.wait(0.5):
            if not follower.running:
                print("error: the follower stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        follower.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
