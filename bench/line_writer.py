"""The appender both serve benchmarks drive: generated nginx lines, held back to back in memory,
written to a log at a steady rate from a thread (a batch every WRITE_TICK_S, ``os.write`` on an
O_APPEND descriptor, paced against a monotonic clock), with the time each batch landed."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conflictlens.sample_logs.generator import format_lines, traffic

STYLE = "nginx-combined"
WRITE_TICK_S = 0.01  # the writer appends a batch this often


@dataclass(frozen=True)
class LinePool:
    """Generated lines, back to back; line ``k`` of a stream starting at pool line ``start``
    is pool line ``(start + k) % lines``."""

    data: bytes
    offsets: list[int]  # offsets[i]: where pool line i starts; offsets[-1] == len(data)

    @property
    def lines(self) -> int:
        return len(self.offsets) - 1

    def views(self, first: int, last: int, start: int = 0) -> Iterator[memoryview]:
        """The bytes of stream lines [first, last), wrapping around the pool."""
        view = memoryview(self.data)
        while first < last:
            i = (start + first) % self.lines
            j = min(self.lines, i + (last - first))
            yield view[self.offsets[i] : self.offsets[j]]
            first += j - i


def make_pool(lines: int, *, seed: int, end: dt.datetime, hours: float) -> LinePool:
    """``lines`` of everyday gateway traffic (about 3 % conflicts) spread over the ``hours``
    before ``end``."""
    frame = traffic(lines, seed=seed, end=end, hours=hours)
    encoded = [line.encode() + b"\n" for line in format_lines(frame, STYLE).to_list()]
    offsets = list(itertools.accumulate((len(b) for b in encoded), initial=0))
    return LinePool(b"".join(encoded), offsets)


def write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


class Writer(threading.Thread):
    """Appends ``rate`` lines/s for ``seconds`` to ``path``; records (time, lines so far) per
    batch.

    Each file starts at its own pool line ``start``: serve takes a file whose first kilobyte
    is that of a file it has read for that file (a copy or a rotation), so files starting
    with the same lines would not be new sources.
    """

    def __init__(self, path: Path, pool: LinePool, rate: int, seconds: float, start: int) -> None:
        super().__init__(name="writer", daemon=True)
        self.path = path
        self.pool = pool
        self.rate = rate
        self.first_line = start
        self.total = round(rate * seconds)
        self.times = array("d")  # monotonic time each batch's os.write returned
        self.counts = array("q")  # lines written by then
        self.written = 0
        self.started_at = time.monotonic()  # set again when writing starts
        self.ended_at: float | None = None
        self.error: OSError | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            self.error, self.ended_at = exc, time.monotonic()
            return
        try:
            self._pace(fd)
        except OSError as exc:
            self.error = exc
        finally:
            os.close(fd)
            self.ended_at = time.monotonic()

    def _pace(self, fd: int) -> None:
        start = self.started_at = time.monotonic()
        while self.written < self.total and not self.halt.is_set():
            due = min(self.total, int(self.rate * (time.monotonic() - start)))
            if due > self.written:
                for view in self.pool.views(self.written, due, self.first_line):
                    write_all(fd, view)
                self.times.append(time.monotonic())
                self.counts.append(due)
                self.written = due
            ticks = int((time.monotonic() - start) / WRITE_TICK_S) + 1
            self.halt.wait(max(0.0, start + ticks * WRITE_TICK_S - time.monotonic()))

    @property
    def done(self) -> bool:
        return self.ended_at is not None
