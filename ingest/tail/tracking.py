"""The set of files a follower knows: followed, waiting for another, or unreadable.

``update`` takes a scan of the globs: followed files take their new names (or are detached,
drained until quiet), and every file not followed yet is opened and identified. A file let
go after it was read to its end (a compressed sibling) or found to be a copy of what was
read already is "settled": not opened again until its size or mtime changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import duckdb

from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.handle import GZIP_ERRORS, NotRegularFile, OpenedFile, open_file
from conflictlens.ingest.tail.identify import identify, known_identities, stored_totals
from conflictlens.ingest.tail.reader import LineReader
from conflictlens.ingest.tail.rotation import track_names
from conflictlens.ingest.tail.scan import FileKey, Scan
from conflictlens.ingest.tail.status import Waiting
from conflictlens.store import Writer

Problems = dict[str, tuple[int, str]]  # path → (its spec's index, what is wrong)


class FileSet:
    def __init__(self, spec_count: int) -> None:
        self.files: dict[FileKey, FollowedFile] = {}
        self.waiting: dict[FileKey, Waiting] = {}
        self.problems: Problems = {}
        self._settled: dict[FileKey, tuple[int, int]] = {}  # key → (size, mtime) when let go
        self.from_end: list[bool] = [False] * spec_count  # per spec, until the first update

    def update(
        self,
        scan: Scan,
        now: float,
        writer: Writer,
        con: duckdb.DuckDBPyConnection,
        rebind: Callable[[FollowedFile], None],
    ) -> bool:
        """Apply a scan; True when another scan is needed soon (a file changed under us)."""
        track_names(self.files.values(), scan.paths(), now, rebind)
        self._settled = {k: v for k, v in self._settled.items() if k in scan.found}
        self.waiting = {}
        again = False
        # Files the store knows by device and inode first: when a copy or a compressed
        # sibling has the same content, the file itself takes its source, the copy waits.
        known = known_identities(con)
        new = [key for key in scan.found if key not in self.files]
        for key in sorted(new, key=lambda k: k not in known):
            path, index, st = scan.found[key]
            again = self._consider(key, path, index, st, scan.problems, writer, con) or again
        self.problems = scan.problems
        self.from_end = [False] * len(self.from_end)  # only files present at the first scan
        return again

    def drop(self, f: FollowedFile, *, settle: bool) -> None:
        """Forget a file let go (closed by the caller)."""
        self.files.pop(f.key, None)
        if settle:
            self._settled[f.key] = (f.opened.stat.st_size, f.opened.stat.st_mtime_ns)

    def _consider(
        self,
        key: FileKey,
        path: str,
        index: int,
        st: os.stat_result,
        problems: Problems,
        writer: Writer,
        con: duckdb.DuckDBPyConnection,
    ) -> bool:
        """A file matching a glob that is not followed: which source is it, and from where?"""
        signature = (st.st_size, st.st_mtime_ns)
        if self._settled.get(key) == signature:
            if path in self.problems:
                problems[path] = self.problems[path]
            return False
        try:
            opened = open_file(path)
        except FileNotFoundError:
            return False
        except NotRegularFile as exc:
            problems[path] = (index, f"{exc}: skipped")
            return False
        except PermissionError:
            problems[path] = (index, "permission denied")
            return False
        except GZIP_ERRORS as exc:
            problems[path] = (index, f"cannot read this compressed file (yet): {exc}")
            self._settled[key] = signature
            return False
        except OSError as exc:
            problems[path] = (index, f"cannot read: {exc.strerror or exc}")
            return False
        keep = False
        try:
            if opened.key != key:
                return True  # replaced between the stat and the open
            keep = self._adopt(key, path, index, opened, writer, con)
            if keep:
                problems.pop(path, None)
        except GZIP_ERRORS as exc:
            problems[path] = (index, f"cannot read this compressed file (yet): {exc}")
            self._settled[key] = signature
        except (OSError, duckdb.Error) as exc:
            problems[path] = (index, f"cannot follow: {exc}")
        finally:
            if not keep:
                opened.close()
        return False

    def _adopt(
        self,
        key: FileKey,
        path: str,
        index: int,
        opened: OpenedFile,
        writer: Writer,
        con: duckdb.DuckDBPyConnection,
    ) -> bool:
        found = identify(
            writer, opened, path, from_end=self.from_end[index], followed=self.files.values()
        )
        if found.waiting is not None:
            self.waiting[key] = Waiting(path, index, found.waiting)
        if found.settle:
            self._settled[key] = (opened.stat.st_size, opened.stat.st_mtime_ns)
        record = found.record
        if record is None:
            return False
        f = FollowedFile(
            path=path,
            spec_index=index,
            reader=LineReader(opened, record.offset, continues_line=found.continues_line),
            source_id=record.source_id,
            offset=record.offset,
            stored_format=record.format,
            stored_log_format=record.log_format,
            last_growth=time.monotonic(),
            last_event=found.event,
        )
        totals = stored_totals(con, record.source_id)
        f.totals.lines, f.totals.rejects, f.totals.conflicts = totals
        self.files[key] = f
        return True
