"""Which files a follower knows (ingest.tail.tracking), when it scans (ingest.tail.scan's
ScanSchedule) and what it reports (ingest.tail.status): real files, a real store."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.scan import MIN_SCAN_GAP, ScanSchedule, scan_globs
from conflictlens.ingest.tail.status import Totals, Waiting, snapshot
from conflictlens.ingest.tail.tracking import FileSet
from conflictlens.store import Writer, connect
from tests.helpers import clf_line

LINE = clf_line() + b"\n"


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with closing(connect(db_path)) as con:
        yield con


def update(
    files: FileSet, folder: Path, con: duckdb.DuckDBPyConnection, now: float = 1.0
) -> list[FollowedFile]:
    rebound: list[FollowedFile] = []
    files.update(scan_globs([f"{folder}/*.log*"], set()), now, Writer(con), con, rebound.append)
    return rebound


def test_the_scan_schedule_polls_and_serves_requests_no_more_often_than_its_gap() -> None:
    scans = ScanSchedule(poll_s=1.0)
    assert scans.due(0.0)  # the first scan, at once
    scans.scanned(10.0)
    assert not scans.due(10.0 + MIN_SCAN_GAP / 2)
    scans.ask()
    assert not scans.due(10.0 + MIN_SCAN_GAP / 2) and scans.due(10.0 + 2 * MIN_SCAN_GAP)
    scans.scanned(10.5)
    assert not scans.due(11.0) and scans.due(11.5)


def test_files_are_followed_a_copy_waits_and_an_unreadable_one_is_a_problem(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    (tmp_path / "a.log").write_bytes(LINE * 20)
    os.mkfifo(tmp_path / "pipe.log")
    files = FileSet(1)
    try:
        update(files, tmp_path, con)
        assert [f.path for f in files.files.values()] == [str(tmp_path / "a.log")]
        assert files.problems == {
            str(tmp_path / "pipe.log"): (0, "a FIFO, not a log file: skipped")
        }
        shutil.copy(tmp_path / "a.log", tmp_path / "a.log.1")
        update(files, tmp_path, con)
        assert [w.path for w in files.waiting.values()] == [str(tmp_path / "a.log.1")]
        assert len(files.files) == 1
    finally:
        for f in files.files.values():
            f.close()


def test_a_settled_file_is_not_opened_again_until_it_changes(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "a.log.1.gz"
    path.write_bytes(gzip.compress(LINE * 3))
    files = FileSet(1)
    update(files, tmp_path, con)
    (followed,) = files.files.values()
    followed.close()
    files.drop(followed, settle=True)
    update(files, tmp_path, con)
    assert not files.files  # read to its end already
    path.write_bytes(gzip.compress(LINE * 4))  # a new content: looked at again
    update(files, tmp_path, con)
    assert len(files.files) == 1
    for f in files.files.values():
        f.close()


def test_the_first_update_only_starts_at_the_end(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    (tmp_path / "a.log").write_bytes(LINE * 2)
    files = FileSet(1)
    files.from_end = [True]
    update(files, tmp_path, con)
    (tmp_path / "b.log").write_bytes(clf_line("/other") + b"\n")
    update(files, tmp_path, con)
    offsets = {Path(f.path).name: f.offset for f in files.files.values()}
    assert offsets == {"a.log": len(LINE) * 2, "b.log": 0}
    for f in files.files.values():
        f.close()


def test_the_status_lists_followed_waiting_and_unreadable_files_by_path(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    (tmp_path / "b.log").write_bytes(LINE)
    files = FileSet(1)
    update(files, tmp_path, con)
    (followed,) = files.files.values()
    followed.attached = False
    try:
        statuses = snapshot(
            files.files.values(),
            [Waiting(str(tmp_path / "c.log"), 0, "same content")],
            {
                str(tmp_path / "a.log"): (0, "permission denied"),
                str(tmp_path / "b.log"): (0, "hidden"),
            },
            ["*.log"],
        )
    finally:
        followed.close()
    assert [(Path(s.path).name, s.state) for s in statuses] == [
        ("a.log", "error"),
        ("b.log", "draining"),
        ("c.log", "waiting"),
    ]


def test_the_line_rate_is_measured_over_half_a_second_at_least() -> None:
    totals = Totals()
    totals.measure(10.0)
    totals.lines = 100
    totals.measure(10.2)  # too soon: no new figure
    assert totals.rate == 0.0
    totals.measure(11.0)
    assert totals.rate == 100.0
