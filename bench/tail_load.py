"""One load of the tail benchmark: a new file written at one rate while serve is polled every
POLL_S for the lines it has stored of it, until all are stored or DRAIN_TIMEOUT_S has passed."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BenchError
from bench.line_writer import LinePool, Writer
from bench.tail_serve import (
    SOURCES_PATH,
    STATUS_PATH,
    Probe,
    Server,
    following_entry,
    stored_lines,
)

FILE_START_STRIDE = 10_007  # pool lines between the first lines of successive files
POLL_S = 0.05  # the prober asks serve for the stored lines this often
STATUS_EVERY = 20  # polls: /api/status once a second, /api/queries/sources otherwise
DRAIN_TIMEOUT_S = 60.0  # after the last write, wait this long for every line to be stored
PROBE_GIVE_UP_S = 30.0  # failing requests to a live serve for this long end the run


@dataclass(frozen=True)
class Poll:
    at: float  # monotonic time the answer arrived
    stored: int
    written: int  # lines written by then
    request_s: float
    status: bool  # asked /api/status (else /api/queries/sources)


@dataclass
class Load:
    """One file written at one rate, and what the polls saw."""

    label: str
    rate: int
    path: Path
    writer: Writer
    measure_from_s: float  # batches written this long after the start count as steady
    polls: list[Poll] = field(default_factory=list)
    following: dict[str, Any] | None = None  # the follower's view near the last write
    states: dict[str, float] = field(default_factory=dict)  # follower state: first seen (s)
    serve_cpu_s: float | None = None  # serve's CPU time while writing
    serve_cpu_at_end: float | None = None
    bench_cpu_s: float | None = None  # this process's CPU time (writer, prober) while writing
    load_average: float | None = None  # the machine's, 1 min, at the last write
    drained: bool = False
    drain_s: float | None = None  # from the last write to the last line stored

    @property
    def write_start(self) -> float:
        return self.writer.started_at

    @property
    def write_end(self) -> float:
        return self.writer.ended_at or self.writer.started_at

    @property
    def written_rate(self) -> float:
        span = self.write_end - self.write_start
        return self.writer.written / span if span > 0 else 0.0


def run_load(
    server: Server,
    number: int,
    label: str,
    rate: int,
    seconds: float,
    pool: LinePool,
    measure_from_s: float,
) -> Load:
    """Write ``rate`` lines/s for ``seconds`` to a new file; poll until it is stored in full."""
    path = server.logs / f"{label}.log"
    writer = Writer(path, pool, rate, seconds, start=number * FILE_START_STRIDE % pool.lines)
    load = Load(label, rate, path, writer, measure_from_s)
    probe = Probe(server.port)
    cpu_before = server.cpu_seconds()
    own_before = time.process_time()
    writer.start()
    try:
        poll_until_stored(server, probe, load, own_before)
    finally:
        writer.halt.set()
        writer.join()
        probe.close()
    if writer.error is not None:
        raise BenchError(f"writing {path} failed: {writer.error}")
    path.unlink(missing_ok=True)  # stored (or given up on): serve lets it go after its linger
    if cpu_before is not None and load.serve_cpu_at_end is not None:
        load.serve_cpu_s = load.serve_cpu_at_end - cpu_before
    return load


def poll_until_stored(server: Server, probe: Probe, load: Load, own_before: float) -> None:
    writer, key = load.writer, str(load.path)
    next_poll = last_ok = time.monotonic()
    for number in itertools.count():
        next_poll = max(next_poll + POLL_S, time.monotonic())
        time.sleep(max(0.0, next_poll - time.monotonic()))
        writing = not writer.done
        with_status = number % STATUS_EVERY == 0
        sent = time.monotonic()
        try:
            answer = probe.get(STATUS_PATH if with_status else SOURCES_PATH)
        except BenchError:
            server.check()
            if time.monotonic() - last_ok > PROBE_GIVE_UP_S:
                raise
            continue
        got = last_ok = time.monotonic()
        stored = stored_lines(answer["sources"] if with_status else answer, key)
        load.polls.append(Poll(got, stored, writer.written, got - sent, with_status))
        if with_status:
            note_follower(load, following_entry(answer, key), got, writing)
        if writer.done and load.serve_cpu_at_end is None:
            load.serve_cpu_at_end = server.cpu_seconds()
            load.bench_cpu_s = time.process_time() - own_before
            load.load_average = round(os.getloadavg()[0], 2)
        if writing:
            continue
        if writer.error is not None:
            return
        if stored >= writer.written:
            load.drained, load.drain_s = True, got - load.write_end
            return
        if got - load.write_end > DRAIN_TIMEOUT_S:
            return


def note_follower(load: Load, entry: dict[str, Any] | None, at: float, writing: bool) -> None:
    if entry is None:
        return
    state = str(entry.get("state"))
    load.states.setdefault(state, round(at - load.write_start, 3))
    if writing:
        load.following = entry
