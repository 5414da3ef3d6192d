"""Scanning the globs: every regular file matching them, by device and inode; no state."""

from __future__ import annotations

import glob
import os
from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from conflictlens.ingest.tail.handle import file_kind, is_regular

FileKey = tuple[int, int]  # device, inode


@dataclass
class Scan:
    found: dict[FileKey, tuple[str, int, os.stat_result]] = field(default_factory=dict)
    """device and inode → (the first path found for it, its pattern's index, its stat)"""
    problems: dict[str, tuple[int, str]] = field(default_factory=dict)
    """path → (its pattern's index, what is wrong with it)"""

    def paths(self) -> dict[FileKey, str]:
        return {key: path for key, (path, _, _) in self.found.items()}


def scan_globs(patterns: Sequence[str], skip: Container[str]) -> Scan:
    """The files matching ``patterns`` (absolute globs, ** recursive), but for ``skip``
    (the store's own files): regular files by identity, anything else as a problem."""
    scan = Scan()
    for index, pattern in enumerate(patterns):
        for path in sorted(glob.glob(pattern, recursive=True)):
            if path in skip:
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                scan.problems[path] = (index, f"cannot stat: {exc.strerror or exc}")
                continue
            if not is_regular(st):
                scan.problems[path] = (index, f"{file_kind(st.st_mode)}, not a log file: skipped")
                continue
            scan.found.setdefault((st.st_dev, st.st_ino), (path, index, st))
    return scan


MIN_SCAN_GAP = 0.1  # seconds between scans asked for (by events, by a file let go)


class ScanSchedule:
    """When to scan: every ``poll_s``, and sooner (but not more often than MIN_SCAN_GAP)
    when asked, by a file-system event or a change that may have freed a waiting file."""

    def __init__(self, poll_s: float) -> None:
        self._poll_s = poll_s
        self.asked = True  # thread-safe enough: a flag set by any thread, cleared by one
        self._last = 0.0
        self.next = 0.0  # the poll's deadline

    def ask(self) -> None:
        self.asked = True

    def due(self, now: float) -> bool:
        return now >= self.next or (self.asked and now - self._last >= MIN_SCAN_GAP)

    def scanned(self, now: float) -> None:
        """A scan begins at ``now``: what was asked before is served by it."""
        self.asked = False
        self._last = now
        self.next = now + self._poll_s
