"""Live tailing: real files, a real store, real logrotate and real processes; no mocks.

Every line written carries its own sequence number in its path (``/api/v1/<tag>/items/<n>``,
status 409, so each line becomes one event): the store must hold each number exactly once,
with no gap, whatever happened to the files (rotation, truncation, compression) or to the
follower (stopped, killed with SIGKILL at random moments).
"""

from __future__ import annotations

import grp
import gzip
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conflictlens.ingest import IngestOptions
from conflictlens.ingest.tail import Follower, SourceSpec
from conflictlens.store import connect
from conflictlens.store.schema import current_version
from tests.helpers import MARKER, clf_line
from tests.helpers import wait_for as waiting_for
from tests.needs import INSTALL, LOGROTATE, SETPRIV, needs_logrotate, require

ROOT = Path(__file__).resolve().parent.parent


# -- lines with sequence numbers ------------------------------------------------------------


def seq_line(tag: str, n: int) -> bytes:
    return clf_line(f"/api/v1/{tag}/items/{n}") + b"\n"


def seq_lines(tag: str, numbers: range) -> bytes:
    return b"".join(seq_line(tag, n) for n in numbers)


def parse_seq(path: str) -> tuple[str, int]:
    parts = path.split("/")  # "", api, v1, tag, items, n
    return parts[3], int(parts[5])


def stored_seqs(con: Any) -> Counter[tuple[str, int]]:
    rows = con.execute("SELECT path FROM conflict_events").fetchall()
    return Counter(parse_seq(path) for (path,) in rows)


def stored_in(db: Path) -> Counter[tuple[str, int]]:
    """What the store holds; a file killed before its schema was committed holds nothing."""
    with closing(duckdb.connect(str(db), read_only=True)) as raw:
        if current_version(raw) == 0:
            return Counter()
    with closing(connect(db, read_only=True)) as con:
        return stored_seqs(con)


def assert_exactly_once(stored: Counter[tuple[str, int]], written: dict[str, int]) -> None:
    """Every number 0..n-1 of every tag once; nothing else."""
    duplicates = sorted(k for k, count in stored.items() if count > 1)
    assert not duplicates, f"{len(duplicates)} lines stored twice, e.g. {duplicates[:5]}"
    for tag, count in written.items():
        got = {n for (t, n) in stored if t == tag}
        missing = sorted(set(range(count)) - got)
        assert not missing, f"{tag}: {len(missing)} of {count} lines missing, e.g. {missing[:5]}"
    extra = sorted(k for k in stored if k[0] not in written or k[1] >= written[k[0]])
    assert not extra, f"lines stored that were never written: {extra[:5]}"


def lines_on_disk(folder: Path, pattern: str = "*") -> Counter[tuple[str, int]]:
    """The sequence numbers in every file of a folder (compressed ones too)."""
    found: Counter[tuple[str, int]] = Counter()
    for path in folder.glob(pattern):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for line in data.splitlines():
            try:  # a copy taken in the middle of a write may end with half a line
                request = line.split(b'"')[1].decode()  # PUT /api/v1/... HTTP/1.1
                found[parse_seq(request.split(" ")[1])] += 1
            except (IndexError, ValueError):
                found[("partial line", len(line))] += 1
    return found


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """helpers.wait_for, looking more often: the follower's steps are a few ms apart."""
    waiting_for(predicate, timeout, what, every=0.05)


def read_up_to(follower: Follower, path: Path) -> int:
    """How far the follower has read ``path``, lines committed or waiting for their flush."""
    followed = list(follower._files.values())  # a snapshot; the thread may change the dict
    return max((f.read_offset for f in followed if f.path == str(path)), default=-1)


def wait_read(follower: Follower, path: Path, timeout: float = 30) -> None:
    """Wait until the follower has read ``path`` to its end and finished the cycle that read
    it (which flushes, when a flush is due). Private state: no status tells buffered lines,
    and "nothing stored yet" only means something once the lines are known to be read."""
    size = path.stat().st_size
    wait_for(lambda: read_up_to(follower, path) == size, timeout, f"{path.name} read")
    asked = time.monotonic()
    # _caught_up_at is when the last finished cycle began: one begun now follows the reading.
    wait_for(lambda: follower._caught_up_at >= asked, timeout, "the cycle that read it to end")


def let_go_and_caught_up(follower: Follower, timeout: float = 60) -> None:
    """Every rotated file let go (none draining or being read), then a scan that began after
    that finds everything stored: any compressed sibling has been looked at."""
    wait_for(
        lambda: all(s.state == "following" for s in follower.statuses()),
        timeout,
        "rotated files let go",
    )
    assert follower.wait_caught_up(timeout)


def event_count(follower: Follower) -> int:
    with follower.cursor() as con:
        return int(con.execute("SELECT count(*) FROM conflict_events").fetchall()[0][0])


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


@contextmanager
def following(db: Path, *patterns: str | Path, **kwargs: Any) -> Iterator[Follower]:
    spec_args = {k: kwargs.pop(k) for k in ("start", "format", "service") if k in kwargs}
    options = kwargs.pop("options", IngestOptions())
    kwargs.setdefault("poll_ms", 200)
    kwargs.setdefault("flush_ms", 100)
    kwargs.setdefault("linger_ms", 1000)
    kwargs.setdefault("status_ms", 200)
    specs = [SourceSpec(str(p), options=options, **spec_args) for p in patterns]
    follower = Follower(db, specs, **kwargs)
    follower.start()
    try:
        yield follower
    finally:
        follower.stop()
    assert not follower.running


class Appender(threading.Thread):
    """Appends numbered lines to a file at a steady rate, in bursts of whole lines, and
    reopens the path when it names another file (rotation by rename and create)."""

    def __init__(self, path: Path, tag: str, *, rate: int = 2000, burst: int = 20) -> None:
        super().__init__(daemon=True)
        self.path, self.tag, self.rate, self.burst = path, tag, rate, burst
        self.written = 0
        self.reopened = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        handle = self.path.open("ab", buffering=0)
        try:
            started = time.monotonic()
            while not self.halt.is_set():
                handle.write(seq_lines(self.tag, range(self.written, self.written + self.burst)))
                self.written += self.burst
                try:
                    if os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino:
                        handle.close()
                        handle = self.path.open("ab", buffering=0)
                        self.reopened += 1
                except FileNotFoundError:
                    pass  # renamed, not created again yet: keep writing to the old file
                ahead = self.written / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            handle.close()

    def finish(self) -> int:
        self.halt.set()
        self.join(10)
        assert self.error is None, self.error
        return self.written


# -- the basics -----------------------------------------------------------------------------


def test_appended_lines_become_rows(tmp_path, db_path):
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(5)))
    with following(db_path, log) as follower:
        wait_for(lambda: event_count(follower) == 5, 30, "the first lines")
        for start in range(5, 105, 20):
            append(log, seq_lines("a", range(start, start + 20)))
            total = start + 20
            wait_for(lambda: event_count(follower) == total, 30, f"{total} lines")  # noqa: B023
        with follower.cursor() as con:
            requests = con.execute("SELECT sum(requests) FROM request_rollups").fetchall()[0][0]
            source = con.execute('SELECT "offset", lines, format FROM sources').fetchall()
        assert requests == 105
        assert source == [(log.stat().st_size, 105, "nginx-combined")]
        status = follower.status()
        assert len(status) == 1
        assert status[0]["path"] == str(log)
        assert status[0]["format"] == "nginx-combined"
    assert_exactly_once(stored_in(db_path), {"a": 105})


def test_a_follower_can_share_the_connection_of_its_host(tmp_path, db_path):
    """serve holds the store's one connection; followers write through their own cursors."""
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(7)))
    with closing(connect(db_path)) as con:
        follower = Follower(con, [SourceSpec(str(log), service="edge")], flush_ms=50)
        follower.start()
        try:
            assert follower.wait_caught_up(30)
            events = con.execute("SELECT count(*), any_value(service) FROM conflict_events")
            assert events.fetchall() == [(7, "edge")]
            [status] = follower.status()
            assert {"source_id", "path", "lag_bytes", "lines_per_second", "last_error"} <= set(
                status
            )
            assert status["lag_bytes"] == 0
        finally:
            follower.stop()
        assert con.execute("SELECT count(*) FROM sources").fetchall() == [(1,)]  # still open


def test_a_partial_last_line_waits_for_its_newline_also_across_a_restart(tmp_path, db_path):
    log = tmp_path / "access.log"
    whole = seq_lines("a", range(3))
    partial = seq_line("a", 3)
    log.write_bytes(whole + partial[:25])
    with following(db_path, log) as follower:
        assert follower.wait_caught_up(30)  # read to the end, the half line left unread
        assert event_count(follower) == 3
        append(log, partial[25:60])
        assert follower.wait_caught_up(30)
        assert event_count(follower) == 3
        [status] = follower.statuses()
        assert status.offset == len(whole)
        assert status.lag_bytes == 60
    with closing(connect(db_path, read_only=True)) as con:
        assert con.execute('SELECT "offset" FROM sources').fetchall() == [(len(whole),)]
    # Stopped with half a line pending: the restart reads it from its start once complete.
    append(log, partial[60:-1])
    with following(db_path, log) as follower:
        assert follower.wait_caught_up(30)
        assert event_count(follower) == 3
        append(log, b"\n" + seq_line("a", 4))
        wait_for(lambda: event_count(follower) == 5, 30, "the completed line")
    assert_exactly_once(stored_in(db_path), {"a": 5})


def test_flush_every_n_lines_or_t_ms_and_at_stop(tmp_path, db_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    with following(db_path, log, flush_ms=60_000, flush_lines=50) as follower:
        append(log, seq_lines("a", range(10)))
        wait_read(follower, log)
        assert event_count(follower) == 0  # 10 lines: neither 50 lines nor 60 s yet
        append(log, seq_lines("a", range(10, 70)))
        wait_for(lambda: event_count(follower) == 70, 30, "a flush at 50 lines")
        append(log, seq_lines("a", range(70, 75)))
        wait_read(follower, log)
        assert event_count(follower) == 70
    assert_exactly_once(stored_in(db_path), {"a": 75})  # committed on stop


def test_file_system_events_wake_the_follower_without_waiting_for_the_poll(tmp_path, db_path):
    """The poll is an hour: only a file-system event can bring the lines in within the
    ceilings (which are generous, and no measure of speed)."""
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(1)))
    with following(db_path, tmp_path / "*.log", poll_ms=3_600_000) as follower:
        wait_for(lambda: event_count(follower) == 1, 60, "the first line")
        append(log, seq_lines("a", range(1, 11)))
        wait_for(lambda: event_count(follower) == 11, 60, "an event")
        (tmp_path / "new.log").write_bytes(seq_lines("b", range(4)))  # created: a rescan
        wait_for(lambda: event_count(follower) == 15, 60, "a new file")
    assert_exactly_once(stored_in(db_path), {"a": 11, "b": 4})


def test_the_poll_alone_finds_every_line(tmp_path, db_path):
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(3)))
    with following(db_path, tmp_path / "*.log", watch=False, poll_ms=300) as follower:
        wait_for(lambda: event_count(follower) == 3, 30, "the first lines")
        append(log, seq_lines("a", range(3, 8)))
        (tmp_path / "new.log").write_bytes(seq_lines("b", range(4)))
        wait_for(lambda: event_count(follower) == 12, 30, "lines found by polling")
    assert_exactly_once(stored_in(db_path), {"a": 8, "b": 4})


def test_a_folder_that_does_not_exist_yet_is_followed_once_it_does(tmp_path, db_path):
    later = tmp_path / "later"
    with following(db_path, later / "*.log") as follower:
        assert follower.wait_caught_up(30)  # a scan found nothing to follow
        assert follower.status() == []
        later.mkdir()
        (later / "a.log").write_bytes(seq_lines("a", range(3)))
        wait_for(lambda: event_count(follower) == 3, 30, "the file in the new folder")
        append(later / "a.log", seq_lines("a", range(3, 6)))
        wait_for(lambda: event_count(follower) == 6, 30, "appended lines")
        shutil.rmtree(later)  # and gone again, then back
        later.mkdir()
        (later / "b.log").write_bytes(seq_lines("b", range(2)))
        wait_for(lambda: event_count(follower) == 8, 30, "the folder made again")
    assert_exactly_once(stored_in(db_path), {"a": 6, "b": 2})


def test_start_at_end_skips_what_files_held_at_the_first_start_only(tmp_path, db_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(seq_lines("old", range(10)) + seq_line("a", 0)[:20])
    pattern = logs / "*.log"
    with following(db_path, pattern, start="end") as follower:
        assert follower.wait_caught_up(30)
        assert event_count(follower) == 0
        # The unterminated line present at start is the writer's current line: it is kept.
        append(logs / "a.log", seq_line("a", 0)[20:] + seq_lines("a", range(1, 5)))
        wait_for(lambda: event_count(follower) == 5, 30, "lines appended after the start")
        (logs / "b.log").write_bytes(seq_lines("b", range(3)))  # a new file: from byte 0
        wait_for(lambda: event_count(follower) == 8, 30, "a file that appeared later")
    # While stopped: more lines and a new file. Not a first start any more: nothing skipped.
    append(logs / "a.log", seq_lines("a", range(5, 7)))
    (logs / "c.log").write_bytes(seq_lines("c", range(4)))
    with following(db_path, pattern, start="end") as follower:
        wait_for(lambda: event_count(follower) == 14, 30, "lines written while stopped")
    assert_exactly_once(stored_in(db_path), {"a": 7, "b": 3, "c": 4})


# -- rotation and truncation ----------------------------------------------------------------


def test_truncated_and_rewritten_with_the_same_first_bytes_is_read_again_from_zero(
    tmp_path, db_path
):
    log = tmp_path / "access.log"
    first = seq_lines("a", range(20))  # > 1 KB: a full fingerprint
    assert len(first) > 1024
    log.write_bytes(first)
    with following(db_path, log) as follower:
        wait_for(lambda: event_count(follower) == 20, 30, "the first lines")
        # copytruncate, then the same five lines written again: the first bytes are the same,
        # the file is shorter than what was read. Those lines were written twice.
        with log.open("r+b") as handle:
            handle.truncate(0)
        append(log, seq_lines("a", range(5)))
        wait_for(lambda: event_count(follower) == 25, 30, "the rewritten lines")
        # The status is a snapshot taken after the commit: it may trail the rows briefly.
        size = log.stat().st_size
        wait_for(lambda: follower.statuses()[0].offset == size, 30, "the status to show it")
        [status] = follower.statuses()
        assert "truncated" in (status.last_event or "")
    with closing(connect(db_path, read_only=True)) as con:
        sources = con.execute(
            'SELECT source_id, inode, "offset", lines FROM sources ORDER BY 1'
        ).fetchall()
        seqs = stored_seqs(con)
    assert [(s[2], s[3]) for s in sources] == [(len(first), 20), (log.stat().st_size, 5)]
    assert sources[0][1] == sources[1][1]  # the same file
    assert seqs == Counter(
        {**{("a", n): 1 for n in range(5, 20)}, **{("a", n): 2 for n in range(5)}}
    )
    # A restart picks the newest source of that file and reads nothing again.
    append(log, seq_lines("a", range(5, 8)))
    with following(db_path, log) as follower:
        wait_for(lambda: event_count(follower) == 28, 30, "lines after the restart")
        assert follower.wait_caught_up(30)
        assert event_count(follower) == 28


def test_truncated_and_rewritten_past_the_offset_before_the_follower_looked(tmp_path, db_path):
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(20)))
    with following(db_path, log, watch=False, poll_ms=60_000, status_ms=1000) as follower:
        wait_for(lambda: event_count(follower) == 20, 30, "the first lines")
        # Between two looks: truncated and more written than was read before.
        with log.open("r+b") as handle:
            handle.truncate(0)
            handle.write(seq_lines("b", range(40)))
        wait_for(lambda: event_count(follower) == 60, 30, "the new content")
        wait_for(  # the status snapshot may trail the commit briefly
            lambda: "first bytes changed" in (follower.statuses()[0].last_event or ""),
            5,
            "the status to say why it read again",
        )
    assert_exactly_once(stored_in(db_path), {"a": 20, "b": 40})


def test_rotation_while_stopped_is_resolved_by_identity_not_path(tmp_path, db_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    pattern = logs / "access.log*"
    log.write_bytes(seq_lines("a", range(100)))
    with following(db_path, pattern) as follower:
        wait_for(lambda: event_count(follower) == 100, 30, "the first lines")
    # Stopped: more lines, then rotated (rename and create) and compressed.
    append(log, seq_lines("a", range(100, 150)))
    log.rename(logs / "access.log.1")
    with (logs / "access.log.1").open("rb") as src, gzip.open(logs / "access.log.1.gz", "wb") as gz:
        shutil.copyfileobj(src, gz)
    (logs / "access.log.1").unlink()
    log.write_bytes(seq_lines("a", range(150, 200)))
    with following(db_path, pattern) as follower:
        wait_for(lambda: event_count(follower) == 200, 30, "lines rotated while stopped")
        assert follower.wait_caught_up(30)
    # Stopped again: the fully read file is rotated and compressed: it adds nothing.
    log.rename(logs / "access.log.2")
    with (logs / "access.log.2").open("rb") as src, gzip.open(logs / "access.log.2.gz", "wb") as gz:
        shutil.copyfileobj(src, gz)
    (logs / "access.log.2").unlink()
    log.write_bytes(seq_lines("a", range(200, 210)))
    with following(db_path, pattern) as follower:
        wait_for(lambda: event_count(follower) == 210, 30, "the new file")
        let_go_and_caught_up(follower)  # the compressed copies looked at: nothing read again
        assert event_count(follower) == 210
    with closing(connect(db_path, read_only=True)) as con:
        sources = con.execute('SELECT path, "offset", lines FROM sources ORDER BY 1').fetchall()
        assert_exactly_once(stored_seqs(con), {"a": 210})
    assert sources == [
        (str(log), len(seq_lines("a", range(200, 210))), 10),
        (str(logs / "access.log.1.gz"), len(seq_lines("a", range(150))), 150),
        (str(logs / "access.log.2.gz"), len(seq_lines("a", range(150, 200))), 50),
    ]


def test_renamed_away_file_is_drained_through_its_handle(tmp_path, db_path):
    """Rename and create, the rotated name not matching the glob: lines written to the old
    file after the rename (before the writer reopens) are still read."""
    log = tmp_path / "access.log"
    log.write_bytes(seq_lines("a", range(10)))
    with following(db_path, log, linger_ms=1500) as follower:
        wait_for(lambda: event_count(follower) == 10, 30, "the first lines")
        with log.open("ab", buffering=0) as old:
            log.rename(tmp_path / "rotated.old")
            log.write_bytes(seq_lines("b", range(5)))
            time.sleep(0.4)
            old.write(seq_lines("a", range(10, 15)))  # a late writer
        wait_for(lambda: event_count(follower) == 20, 30, "the late lines and the new file")
        expected = {str(tmp_path / "rotated.old"): "draining", str(log): "following"}
        wait_for(
            lambda: {s.path: s.state for s in follower.statuses()} == expected, 2, str(expected)
        )
        wait_for(lambda: len(follower.statuses()) == 1, 30, "the drained file let go")
    assert_exactly_once(stored_in(db_path), {"a": 15, "b": 5})


def test_a_compressed_copy_being_written_is_not_read_twice(tmp_path, db_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    content = seq_lines("a", range(300))
    (logs / "access.log.1").write_bytes(content)
    with following(db_path, logs / "access.log*") as follower:
        wait_for(lambda: event_count(follower) == 300, 30, "the first lines")
    packed = gzip.compress(content)
    (logs / "access.log.1").unlink()
    (logs / "access.log.1.gz").write_bytes(packed[: len(packed) // 3])  # half-written
    with following(db_path, logs / "access.log*") as follower:
        assert follower.wait_caught_up(30)  # the half-written copy looked at
        assert event_count(follower) == 300
        append(logs / "access.log.1.gz", packed[len(packed) // 3 :])
        assert follower.wait_caught_up(30)  # and the whole one
        assert event_count(follower) == 300
    assert_exactly_once(stored_in(db_path), {"a": 300})


# -- bad input while following --------------------------------------------------------------


def test_bad_files_are_reported_and_the_others_go_on(tmp_path, db_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    good = logs / "good.log"
    good.write_bytes(seq_lines("a", range(10)))
    rng = random.Random(7)
    (logs / "binary.log").write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))
    os.mkfifo(logs / "fifo.log")
    (logs / "folder.log").mkdir()
    doomed = logs / "doomed.log"
    doomed.write_bytes(seq_lines("d", range(10)))
    options = IngestOptions(max_line_bytes=64 * 1024)
    with following(db_path, logs / "*.log", options=options) as follower:
        wait_for(lambda: event_count(follower) == 20, 30, "the good lines")
        # A 1 MB line between good lines, and a file deleted while a writer still appends.
        append(good, seq_lines("a", range(10, 15)) + b"A" * 1_000_000 + b"\n")
        with doomed.open("ab", buffering=0) as writer:
            doomed.unlink()
            writer.write(seq_lines("d", range(10, 20)))
            append(good, seq_lines("a", range(15, 20)))
            wait_for(lambda: event_count(follower) == 40, 30, "lines after the bad ones")

            def doomed_reported() -> bool:
                status = {s.path: s for s in follower.statuses()}.get(str(doomed))
                return status is not None and "deleted" in (status.last_error or "")

            wait_for(doomed_reported, 30, "the deleted file in the status")
            by_path = {s.path: s for s in follower.statuses()}
        assert by_path[str(doomed)].state == "draining"
        assert "FIFO" in (by_path[str(logs / "fifo.log")].last_error or "")
        assert "directory" in (by_path[str(logs / "folder.log")].last_error or "")
        binary = by_path[str(logs / "binary.log")]
        assert binary.rejects > 0
        assert "invalid UTF-8" in (binary.last_error or "")
        assert by_path[str(good)].rejects == 1
        assert "longer than" in (by_path[str(good)].last_error or "")
        assert follower.running
        with follower.cursor() as con:
            reasons = Counter(
                r
                for (r,) in con.execute(
                    "SELECT reason FROM rejects JOIN sources USING (source_id) WHERE path = ?",
                    [str(good)],
                ).fetchall()
            )
        assert list(reasons) == ["line longer than 65536 bytes"]
        wait_for(lambda: str(doomed) not in {s.path for s in follower.statuses()}, 30, "let go")
    assert_exactly_once(stored_in(db_path), {"a": 20, "d": 20})


def unprivileged() -> list[str]:
    """The command prefix that runs a process as a user who cannot read another's 0-mode file:
    as root (who may read any file, and CI runs as root), setpriv to nobody; else nothing."""
    if os.geteuid() != 0:
        return []
    require(SETPRIV, f"needs setpriv (util-linux) to read as an unprivileged user ({INSTALL})")
    return [str(SETPRIV), "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@contextmanager
def folder_for(prefix: list[str]) -> Iterator[Path]:
    """A fresh folder the user of ``prefix`` may write (pytest's own are closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="conflictlens-unprivileged-"))
    try:
        if prefix:
            os.chown(folder, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
        yield folder
    finally:
        shutil.rmtree(folder)


def test_permission_denied_is_reported(tmp_path):
    """The follower process runs as an unprivileged user (root reads any file): a log it may
    not read is reported, and the readable one beside it is stored."""
    prefix = unprivileged()
    with folder_for(prefix) as folder:
        logs = folder / "logs"
        logs.mkdir()
        good = logs / "good.log"
        good.write_bytes(seq_lines("a", range(3)))
        secret = logs / "secret.log"
        secret.write_bytes(seq_lines("s", range(3)))
        secret.chmod(0)
        db = folder / "t.duckdb"
        tail = TailProcess(db, logs / "*.log", prefix=prefix)
        try:

            def reported() -> bool:
                sources = {s["path"]: s for s in (tail.last or {}).get("sources", [])}
                return sources.get(str(secret), {}).get(
                    "last_error"
                ) == "permission denied" and tail.caught_up_with([good])

            wait_for(lambda: reported() or tail.proc.poll() is not None, 60, "the report")
            assert reported(), tail.stderr()
            tail.terminate()
        finally:
            if tail.proc.poll() is None:
                tail.kill()
        assert tail.proc.returncode == 0, tail.stderr()
        if prefix:  # the store was written by the unprivileged user
            assert db.stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert_exactly_once(stored_in(db), {"a": 3})


# -- logrotate while a writer appends -------------------------------------------------------


def logrotate_config(log: Path, *directives: str) -> str:
    body = "\n".join(f"    {d}" for d in ("rotate 100", "missingok", *directives))
    return f"{log} {{\n{body}\n}}\n"


def run_logrotate(folder: Path, config: str) -> None:
    conf = folder / "logrotate.conf"
    conf.write_text(config)
    assert LOGROTATE is not None  # the tests that rotate are marked needs_logrotate
    subprocess.run(
        [LOGROTATE, "-f", "-s", str(folder / "logrotate.state"), str(conf)],
        check=True,
        capture_output=True,
        timeout=30,
    )


@needs_logrotate
@pytest.mark.slow
@pytest.mark.parametrize(
    ("directives", "glob"),
    [
        (("create", "compress", "delaycompress"), "access.log*"),
        (("create", "compress"), "access.log*"),
        (("create", "compress"), "access.log"),  # the rotated file is only drained
    ],
    ids=["create-delaycompress", "create-compress", "create-live-file-only"],
)
def test_logrotate_create_while_writing_stores_every_line_once(tmp_path, db_path, directives, glob):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    log.write_bytes(b"")
    appender = Appender(log, "a", rate=2000)
    with following(db_path, logs / glob, linger_ms=1000) as follower:
        appender.start()
        for _ in range(4):
            time.sleep(1.0)
            run_logrotate(tmp_path, logrotate_config(log, *directives))
        time.sleep(1.0)
        written = appender.finish()
        wait_for(lambda: event_count(follower) >= written, 60, f"{written} lines")
        let_go_and_caught_up(follower)
    assert appender.reopened == 4
    rotated = sorted(p.name for p in logs.iterdir())
    assert len(rotated) == 5, rotated
    assert written > 8000
    assert_exactly_once(stored_in(db_path), {"a": written})


@needs_logrotate
@pytest.mark.slow
@pytest.mark.parametrize(
    "directives",
    [("copytruncate", "compress", "delaycompress"), ("copytruncate", "compress")],
    ids=["copytruncate-delaycompress", "copytruncate-compress"],
)
def test_logrotate_copytruncate_while_writing_stores_every_line_once(tmp_path, db_path, directives):
    """copytruncate loses the lines written between its copy and its truncation (they are
    in no file any more) unless the follower read them from the original in between. So:
    nothing twice, everything on disk stored, and anything missing is in no file."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    log.write_bytes(b"")
    appender = Appender(log, "a", rate=2000)
    with following(db_path, logs / "access.log*", linger_ms=1000) as follower:
        appender.start()
        for _ in range(4):
            time.sleep(1.0)
            run_logrotate(tmp_path, logrotate_config(log, *directives))
        time.sleep(1.0)
        written = appender.finish()
        let_go_and_caught_up(follower)
        stored_live = event_count(follower)
    stored = stored_in(db_path)
    assert sum(stored.values()) == stored_live
    on_disk = lines_on_disk(logs, "access.log*")
    assert max(on_disk.values()) == 1
    duplicates = [k for k, count in stored.items() if count > 1]
    assert not duplicates, f"{len(duplicates)} lines stored twice, e.g. {duplicates[:5]}"
    assert set(stored) <= {("a", n) for n in range(written)}
    not_stored = set(on_disk) - set(stored)
    assert not not_stored, f"{len(not_stored)} lines on disk not stored: {sorted(not_stored)[:5]}"
    lost = {("a", n) for n in range(written)} - set(stored)
    print(f"copytruncate: {written} lines written, {len(lost)} lost between copy and truncation")
    assert not (lost & set(on_disk))
    assert len(lost) < written // 10, f"{len(lost)} of {written} lines lost by copytruncate"


# -- the standalone process: SIGTERM, SIGKILL ---------------------------------------------


class TailProcess:
    """``python -m conflictlens.ingest.tail`` with its JSON status lines read on a thread."""

    def __init__(self, db: Path, pattern: Path, *extra: str, prefix: Sequence[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "conflictlens.ingest.tail",
                "--db",
                str(db),
                "--source",
                str(pattern),
                "--flush-ms",
                "100",
                "--poll-ms",
                "200",
                "--linger-ms",
                "1000",
                "--status-ms",
                "200",
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.last: dict[str, Any] | None = None
        self._stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.last = json.loads(line)

    def caught_up_with(self, files: list[Path]) -> bool:
        """Caught up, and every plain file's size is what it reports as stored."""
        last = self.last
        if not last or not last["caught_up"]:
            return False
        offsets = {s["path"]: s["offset"] for s in last["sources"] if s["state"] == "following"}
        return all(offsets.get(str(f)) == f.stat().st_size for f in files)

    def settled_with(self, files: list[Path]) -> bool:
        """Caught up, and every rotated file let go (none draining or being read)."""
        last = self.last
        return (
            self.caught_up_with(files)
            and last is not None
            and all(s["state"] == "following" for s in last["sources"])
        )

    def wait_settled(self, files: list[Path], timeout: float = 60) -> None:
        """Settled, then settled again after a scan that began later: a marker file
        made now beside ``files`` shows in the status only once a scan found it, and any
        compressed sibling is looked at by that scan."""
        wait_for(lambda: self.settled_with(files), timeout, "rotated files let go")
        marker = files[0].with_name("zz-marker.log")
        marker.write_bytes(MARKER)
        wait_for(lambda: self.settled_with([*files, marker]), timeout, "a scan after that")

    def terminate(self, timeout: float = 60.0) -> None:
        """SIGTERM, and wait for the exit (the timeout is a ceiling, not a speed check)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        self._close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self._stderr = self.proc.stderr.read()
        self.proc.stderr.close()

    def stderr(self) -> str:
        if self.proc.poll() is None:
            self.kill()
        return self._stderr


def test_the_process_stops_cleanly_on_sigterm_and_refuses_a_held_store(tmp_path, db_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(seq_lines("a", range(50)))
    tail = TailProcess(db_path, logs / "*.log")
    try:
        wait_for(lambda: tail.caught_up_with([logs / "a.log"]), 30, "the follower")
        append(logs / "a.log", seq_lines("a", range(50, 60)))
        second = subprocess.run(
            [sys.executable, "-m", "ingest.tail", "--db", str(db_path), "--source", "x"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        tail.terminate()
    finally:
        if tail.proc.poll() is None:
            tail.kill()
    assert tail.proc.returncode == 0, tail.stderr()
    assert_exactly_once(stored_in(db_path), {"a": 60})


class MultiAppender(threading.Thread):
    """Appends numbered lines to several files; rotates the last one by rename and create
    every ``rotate_every`` seconds, compressing the file rotated the time before."""

    def __init__(self, files: list[Path], *, rate: int, rotate_every: float) -> None:
        super().__init__(daemon=True)
        self.files, self.rate, self.rotate_every = files, rate, rotate_every
        self.written = {f.stem: 0 for f in files}
        self.rotations = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        handles = {f: f.open("ab", buffering=0) for f in self.files}
        burst = 10
        started = last_rotation = time.monotonic()
        total = 0
        try:
            while not self.halt.is_set():
                for f, handle in handles.items():
                    tag = f.stem
                    n = self.written[tag]
                    handle.write(seq_lines(tag, range(n, n + burst)))
                    self.written[tag] = n + burst
                    total += burst
                if time.monotonic() - last_rotation >= self.rotate_every:
                    last_rotation = time.monotonic()
                    self._rotate(handles)
                ahead = total / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            for handle in handles.values():
                handle.close()

    def _rotate(self, handles: dict[Path, Any]) -> None:
        live = self.files[-1]
        self.rotations += 1
        rotated = live.with_name(f"{live.name}.{self.rotations}")
        live.rename(rotated)
        handles[live].close()
        handles[live] = live.open("ab", buffering=0)
        previous = live.with_name(f"{live.name}.{self.rotations - 1}")
        if previous.exists():  # compressed in place, like logrotate: a .gz being written
            with previous.open("rb") as src, gzip.open(f"{previous}.gz", "wb") as gz:
                shutil.copyfileobj(src, gz)
            previous.unlink()

    def finish(self) -> dict[str, int]:
        self.halt.set()
        self.join(10)
        assert self.error is None, self.error
        return self.written


@pytest.mark.slow
def test_sigkill_at_random_moments_stores_every_line_exactly_once(tmp_path, db_path):
    """A writer appends to three files (one rotated and compressed now and then) while the
    follower process is killed with SIGKILL at random moments and started again. Set
    CONFLICTLENS_TAIL_KILLS (e.g. 20) for a longer run."""
    kills = int(os.environ.get("CONFLICTLENS_TAIL_KILLS", "8"))
    rng = random.Random(int(os.environ.get("CONFLICTLENS_TAIL_SEED", "11")))
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / f"{name}.log" for name in ("a", "b", "c")]
    for f in files:
        f.write_bytes(b"")
    pattern = logs / "*.log*"
    appender = MultiAppender(files, rate=3000, rotate_every=1.5)
    appender.start()
    killed_after: list[float] = []
    stored_after: list[int] = []
    try:
        for _ in range(kills):
            tail = TailProcess(db_path, pattern)
            # Count the random moment from the follower's first status line, not its launch:
            # how long Python takes to start varies too much between machines.
            wait_for(
                lambda t=tail: t.last is not None or t.proc.poll() is not None,
                60,
                "the follower's first status line",
            )
            moment = rng.uniform(0.0, 1.5)
            time.sleep(moment)
            assert tail.proc.poll() is None, tail.stderr()
            tail.kill()
            killed_after.append(round(moment, 2))
            if db_path.exists():  # at every moment: nothing twice, nothing never written
                stored = stored_in(db_path)
                assert max(stored.values(), default=1) == 1
                stored_after.append(sum(stored.values()))
    finally:
        written = appender.finish()
    tail = TailProcess(db_path, pattern)
    try:
        tail.wait_settled(files, 120)
        tail.terminate()
    finally:
        if tail.proc.poll() is None:
            tail.kill()
    assert tail.proc.returncode == 0, tail.stderr()
    assert appender.rotations >= 3
    assert sum(written.values()) > 10_000
    stored = stored_in(db_path)
    print(f"killed after {killed_after} s, lines stored then {stored_after}; written {written}")
    # Some kills come before the follower stored its first batch; many must interrupt a
    # follower that was storing lines.
    assert len(set(stored_after)) >= kills // 4
    assert_exactly_once(stored, written)
    assert sum(stored.values()) == sum(written.values())
