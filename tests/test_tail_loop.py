"""The follower's loop units: the thread with its exit event (ingest.tail.watcher), the
file-system events that wake it (ingest.tail.events, real watchdog on real folders), and
``python -m conflictlens.ingest.tail`` (ingest.tail.cli) in a real process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from watchdog.events import FileClosedEvent, FileCreatedEvent, FileModifiedEvent, FileMovedEvent

from conflictlens.ingest.tail.events import FolderEvents, watch_root
from conflictlens.ingest.tail.watcher import Watcher
from tests.helpers import clf_line, wait_for

ROOT = Path(__file__).resolve().parent.parent
FAR = 3600.0  # a deadline no test waits for


class Calls:
    """What the watcher's callbacks saw."""

    def __init__(self, fail_first: bool = False) -> None:
        self.cycles = 0
        self.failures: list[str] = []
        self.finished = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def cycle(self, now: float) -> None:
        with self.lock:
            self.cycles += 1
            if self.fail_first and self.cycles == 1:
                raise RuntimeError("broken store")

    def deadline(self) -> float:
        return time.monotonic() + FAR

    def failed(self, exc: Exception) -> None:
        self.failures.append(str(exc))

    def finish(self) -> None:
        self.finished += 1

    def watcher(self) -> Watcher:
        return Watcher(
            cycle=self.cycle, deadline=self.deadline, failed=self.failed, finish=self.finish
        )


def test_a_wake_runs_a_cycle_before_the_deadline_and_stop_finishes_once() -> None:
    calls = Calls()
    watcher = calls.watcher()
    watcher.start()
    wait_for(lambda: calls.cycles == 1, 30, "the first cycle")
    watcher.wake()
    wait_for(lambda: calls.cycles == 2, 30, "a cycle on wake, an hour before the deadline")
    watcher.stop(30)
    assert not watcher.running
    assert calls.finished == 1 and calls.cycles == 2
    watcher.stop(30)  # twice is fine
    assert calls.finished == 1


def test_a_failing_cycle_is_reported_and_the_loop_goes_on() -> None:
    calls = Calls(fail_first=True)
    watcher = calls.watcher()
    watcher.start()
    wait_for(lambda: calls.cycles >= 1 and calls.failures, 30, "the failure")
    watcher.wake()
    wait_for(lambda: calls.cycles >= 2, 30, "the next cycle")
    watcher.stop(30)
    assert calls.failures == ["broken store"] and calls.finished == 1


def test_a_watcher_stopped_before_it_started_does_not_hang() -> None:
    calls = Calls()
    watcher = calls.watcher()
    watcher.stop(1)
    assert not watcher.running and calls.finished == 0


# -- events --------------------------------------------------------------------------------


def test_watch_root_is_the_folder_before_the_first_wildcard() -> None:
    assert watch_root("/var/log/nginx/*.log") == ("/var/log/nginx", False)
    assert watch_root("/var/log/**/access.log") == ("/var/log", True)
    assert watch_root("/var/log/app.log") == ("/var/log", False)


def test_events_nudge_for_matching_files_and_ask_a_scan_unless_followed(tmp_path: Path) -> None:
    followed = str(tmp_path / "a.log")
    nudges: list[bool] = []
    events = FolderEvents(
        [f"{tmp_path}/*.log"], {str(tmp_path / "own.log")}, nudges.append, lambda: {followed}
    )
    events.on_any_event(FileModifiedEvent(followed))  # a followed file grew: read, no scan
    events.on_any_event(FileClosedEvent(followed))
    events.on_any_event(FileCreatedEvent(str(tmp_path / "b.log")))  # a new file: scan
    events.on_any_event(FileMovedEvent(followed, str(tmp_path / "a.log.1")))  # rotated: scan
    events.on_any_event(FileModifiedEvent(str(tmp_path / "notes.txt")))  # not matching
    events.on_any_event(FileModifiedEvent(str(tmp_path / "own.log")))  # the store's own file
    assert nudges == [False, False, True, True]


def test_real_file_system_events_reach_the_nudge(tmp_path: Path) -> None:
    nudges: list[bool] = []
    events = FolderEvents([f"{tmp_path}/*.log"], set(), nudges.append, frozenset)
    assert events.start()
    try:
        (tmp_path / "a.log").write_bytes(clf_line() + b"\n")
        wait_for(lambda: True in nudges, 30, "the event of a new file")
    finally:
        events.stop()


# -- the command ---------------------------------------------------------------------------


def run_tail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.tail", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_lists_its_options() -> None:
    done = run_tail("--help")
    assert done.returncode == 0
    for option in (
        "--db",
        "--source",
        "--format",
        "--log-format",
        "--start",
        "--service",
        "--flush-ms",
        "--flush-lines",
        "--poll-ms",
        "--linger-ms",
        "--max-line-bytes",
        "--keep-all",
        "--status-ms",
    ):
        assert option in done.stdout


def test_bad_input_is_one_line_and_a_usage_exit_status(tmp_path: Path) -> None:
    for args, says in (
        (("--source", "x.log", "--format", "no-such-format"), "no-such-format"),
        (("--source", "x.log", "--poll-ms", "1"), "poll_ms"),
        (("--source", ""), "a source needs a file path or glob"),
    ):
        done = run_tail("--db", str(tmp_path / "t.duckdb"), *args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and says in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
