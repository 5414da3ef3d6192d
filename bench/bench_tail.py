"""Tail benchmark: how soon an appended line is queryable, and the highest rate serve keeps up with.

Run by ``make bench`` as ``.venv/bin/python bench/bench_tail.py``. It starts a real
``conflictlens serve`` on a fresh store in ``<workdir>`` that follows ``<workdir>/logs/*.log``,
appends nginx "combined" lines (made up front with the project's generator) at a steady rate
from a thread of this process (a batch every 10 ms, ``os.write`` on an O_APPEND descriptor,
paced against a monotonic clock, each run on a new file), and polls serve every 50 ms for
the lines its store holds for the file (``GET /api/queries/sources``, the lines committed
with their rows, so queryable; ``GET /api/status`` once a second for the follower's view):

* latency: at ``--rate`` lines/s (20,000) for ``--seconds`` (30), after ``--warmup`` seconds
  (3) in which serve picks the new file up and recognises its format (reported apart), the
  time from each batch's ``os.write`` to the first poll that finds its last line stored:
  p50, p90, p99, max; bar: p99 <= 1 s;
* the highest sustained rate: steps of ``--step-seconds`` (60) at 1, 2, 3, 4, 6, 8, 12, ...
  times ``--rate`` until one grows a lag (lines written - lines stored): the lower envelope
  of the lag (its minimum per second) over the second half of the step rises by more than
  1 % of the rate per second, the lag over the last second of writing is more than 2 s of
  input, or the file is not stored in full within 60 s of the last write.

Figures go to the terminal and to ``bench/out/bench_tail.json``, with the rows of ``make
bench``'s table. Exit status 1 when the latency bar is missed, or when serve fails to start or
dies, or a request keeps failing (the run ends there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import BenchError, child_env, conflictlens_exe, summary_row  # noqa: E402
from sample_logs.generator import format_lines, traffic  # noqa: E402

STYLE = "nginx-combined"
SEED = 7
POOL_LINES = 200_000  # distinct lines, written over and over (about 36 MB)
POOL_MINUTES = 10.0  # their timestamps span the ten minutes before the run
FILE_START_STRIDE = 10_007  # pool lines between the first lines of successive files
WRITE_TICK_S = 0.01  # the writer appends a batch this often
POLL_S = 0.05  # the prober asks serve for the stored lines this often
SOURCES_PATH = "/api/queries/sources"  # the sources table: lines committed per file
STATUS_PATH = "/api/status"  # the same lines and the follower's view, at about 3x the cost
STATUS_EVERY = 20  # polls: /api/status once a second, /api/queries/sources otherwise
LATENCY_BAR_S = 1.0  # p99, at most
GROWTH_SLOPE_PCT = 1.0  # lag envelope slope, lines/s, at most this % of the rate
END_LAG_BAR_S = 2.0  # lag over the last second of writing, at most this many seconds of input
ENVELOPE_BIN_S = 1.0
# Student's t, two-sided 95 %, by degrees of freedom (1..30; 2.0 beyond): a slope counts as
# rising only when it is this many standard errors above zero.
T95: tuple[float, ...] = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20)
T95 += (2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06)
T95 += (2.06, 2.05, 2.05, 2.05, 2.04)
DRAIN_TIMEOUT_S = 60.0  # after the last write, wait this long for every line to be stored
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0
PROBE_GIVE_UP_S = 30.0  # failing requests to a live serve for this long end the run
WRITER_SHORTFALL = 0.98  # a writer below this share of its target rate could not keep it
STEP_FACTORS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
DEFAULT_WORKDIR = REPO_ROOT / "bench" / "out" / "tail"
DEFAULT_OUT = REPO_ROOT / "bench" / "out" / "bench_tail.json"


# --- arguments -------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return value


def seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rate",
        type=positive_int,
        default=20_000,
        help="lines/s of the latency run and of the first step (default: 20000)",
    )
    parser.add_argument(
        "--seconds",
        type=seconds_arg,
        default=None,
        help="measured length of the latency run (default: 30; 10 with --quick)",
    )
    parser.add_argument(
        "--warmup",
        type=seconds_arg,
        default=3.0,
        help="seconds written to the new file before the latency run measures; their latency "
        "is reported apart; also left out of each step's latency (default: 3)",
    )
    parser.add_argument(
        "--step-seconds",
        type=seconds_arg,
        default=None,
        help="length of each rate step (default: 60; 10 with --quick)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=len(STEP_FACTORS),
        help=f"rate steps at most, 0 skips them (default: {len(STEP_FACTORS)}: "
        f"{', '.join(f'{f}x' for f in STEP_FACTORS)} the rate)",
    )
    parser.add_argument(
        "--flush-ms",
        type=positive_int,
        default=500,
        help="serve.flush_ms written to the config (default: 500, serve's default)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="store, config, logs and serve's output (default: bench/out/tail)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where the figures go as JSON (default: bench/out/bench_tail.json)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 10 s of latency, steps of 10 s"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the store when done (logs are always deleted)"
    )
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 30.0
    if args.step_seconds is None:
        args.step_seconds = 10.0 if args.quick else 60.0
    if args.seconds < 1 or args.step_seconds < 2:
        parser.error("--seconds must be at least 1 and --step-seconds at least 2")
    if not 0 <= args.max_steps <= len(STEP_FACTORS):
        parser.error(f"--max-steps must be between 0 and {len(STEP_FACTORS)}")
    if args.flush_ms < 10:
        parser.error("--flush-ms must be at least 10 (serve refuses less)")
    return args


# --- the lines written -----------------------------------------------------------------


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


def make_pool(lines: int) -> LinePool:
    """Everyday gateway traffic (about 3 % conflicts) with recent timestamps."""
    frame = traffic(lines, seed=SEED, end=dt.datetime.now(dt.UTC), hours=POOL_MINUTES / 60)
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


# --- serve -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no output)"
    lines = [line for line in lines if line]
    return lines[-1] if lines else "(no output)"


class Server:
    """A ``conflictlens serve`` child on a fresh store in ``workdir``."""

    def __init__(self, workdir: Path, flush_ms: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.db = workdir / "tail.duckdb"
        self.config = workdir / "conflictlens.toml"
        self.output = workdir / "serve.log"
        self.flush_ms = flush_ms
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def reset(self) -> None:
        """A fresh store, an empty logs folder and the config."""
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        for path in (self.db, Path(f"{self.db}.wal"), Path(f"{self.db}.serve")):
            path.unlink(missing_ok=True)
        self.config.write_text(
            f"db = {json.dumps(self.db.name)}\n\n"
            "[[sources]]\n"
            f"path = {json.dumps(str(self.logs / '*.log'))}\n\n"
            "[serve]\n"
            f"flush_ms = {self.flush_ms}\n"
        )

    def start(self) -> None:
        self.reset()
        self.port = free_port()
        cmd = [str(conflictlens_exe()), "serve", "--config", str(self.config)]
        cmd += ["--db", str(self.db), "--port", str(self.port), "--no-dashboard"]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise BenchError(f"serve did not answer /api/health within {STARTUP_TIMEOUT_S:.0f} s")

    def check(self) -> None:
        """Raise if serve has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"serve exited with status {self.proc.returncode}: {last_line(self.output)}"
            )

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of serve so far (all its threads), from /proc."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the seconds a clean stop took."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"serve did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM: killed it")
            self.proc.kill()
            self.proc.wait()
            return None
        return time.monotonic() - started


# --- asking serve ----------------------------------------------------------------------


class Probe:
    """GETs to serve's API over one kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> Any:
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S
                )
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise BenchError(f"GET {path} failed: {exc or type(exc).__name__}") from None
        if response.status != 200:
            raise BenchError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def stored_lines(sources: list[dict[str, Any]], path: str) -> int:
    """Lines committed for the file at ``path`` (0 before serve has picked it up)."""
    return sum(int(s.get("lines") or 0) for s in sources if s.get("path") == path)


def following_entry(status: dict[str, Any], path: str) -> dict[str, Any] | None:
    return next((f for f in status.get("following", []) if f.get("path") == path), None)


# --- one load: write at a rate, poll until stored --------------------------------------


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


# --- figures ---------------------------------------------------------------------------


def batch_latencies(load: Load) -> list[tuple[float, float]]:
    """Per write batch: (seconds after the first write, latency): the first poll at or after
    the batch's write that finds all its lines stored, minus the write time; inf if none did."""
    polls = load.polls
    result: list[tuple[float, float]] = []
    p = 0
    for written_at, count in zip(load.writer.times, load.writer.counts, strict=True):
        while p < len(polls) and (polls[p].at < written_at or polls[p].stored < count):
            p += 1
        latency = polls[p].at - written_at if p < len(polls) else math.inf
        result.append((written_at - load.write_start, latency))
    return result


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest rank."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def distribution(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    figures: dict[str, Any] = {f"p{p}_s": rounded(percentile(ordered, p)) for p in (50, 90, 99)}
    figures["max_s"] = rounded(ordered[-1]) if ordered else None
    figures["batches"] = len(ordered)
    figures["never_stored"] = sum(1 for x in ordered if not math.isfinite(x))
    return figures


def latency_figures(load: Load) -> dict[str, Any]:
    """The latency of the batches written after ``measure_from_s``, and of those before."""
    pairs = batch_latencies(load)
    figures = distribution([lat for t, lat in pairs if t >= load.measure_from_s])
    figures["measured_from_s"] = load.measure_from_s
    figures["new_file"] = distribution([lat for t, lat in pairs if t < load.measure_from_s])
    return figures


def slope(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of y over x, and its standard error (inf with under 3 points)."""
    n = len(points)
    if n < 2:
        return 0.0, math.inf
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        return 0.0, math.inf
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    if n < 3:
        return b, math.inf
    residual = sum((y - my - b * (x - mx)) ** 2 for x, y in points) / (n - 2)
    return b, math.sqrt(residual / sxx)


def lag_figures(load: Load) -> dict[str, Any]:
    """The lag (lines written - lines stored) while writing: its envelope's trend and its end."""
    span = load.write_end - load.write_start
    lags = [
        (p.at - load.write_start, p.written - p.stored)
        for p in load.polls
        if load.write_start <= p.at <= load.write_end
    ]
    bins: dict[int, int] = {}
    for t, lag in lags:
        if t >= span / 2:
            index = int(t // ENVELOPE_BIN_S)
            bins[index] = min(lag, bins.get(index, lag))
    envelope = [((i + 0.5) * ENVELOPE_BIN_S, float(lag)) for i, lag in sorted(bins.items())]
    trend, error = slope(envelope)
    last = [lag for t, lag in lags if t >= span - 1.0]
    end_lag = sum(last) / len(last) if last else 0.0
    reasons = []
    # Rising: faster than the bar, and by more than the noise of the fit (the flushes make
    # the lag a saw-tooth whose low points scatter, which a short step cannot average out).
    t = T95[len(envelope) - 3] if 3 <= len(envelope) <= len(T95) + 2 else 2.0
    if trend > GROWTH_SLOPE_PCT / 100 * load.rate and trend > t * error:
        reasons.append(f"envelope rises {trend:,.0f} +/- {error:,.0f} lines/s")
    if end_lag > END_LAG_BAR_S * load.rate:
        reasons.append(f"lag at end {end_lag / load.rate:.1f} s of input")
    if not load.drained:
        reasons.append(f"not stored within {DRAIN_TIMEOUT_S:.0f} s of the last write")
    return {
        "envelope_slope_lines_per_s": round(trend, 1),
        "envelope_slope_stderr": rounded(error),
        "end_lag_lines": round(end_lag),
        "end_lag_s": round(end_lag / load.rate, 3),
        "max_lag_lines": max((lag for _, lag in lags), default=0),
        "growing": bool(reasons),
        "why": "; ".join(reasons),
    }


def request_ms(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"mean": None, "p99": None}
    return {
        "mean": round(1000 * sum(seconds) / len(seconds), 1),
        "p99": round(1000 * percentile(sorted(seconds), 99), 1),
    }


def load_figures(load: Load) -> dict[str, Any]:
    span = load.write_end - load.write_start
    following = load.following or {}
    cores = load.serve_cpu_s / span if load.serve_cpu_s is not None and span > 0 else None
    own = load.bench_cpu_s / span if load.bench_cpu_s is not None and span > 0 else None
    return {
        "label": load.label,
        "rate": load.rate,
        "seconds_written": round(span, 2),
        "lines_written": load.writer.written,
        "written_rate": round(load.written_rate),
        "writer_kept_rate": load.written_rate >= WRITER_SHORTFALL * load.rate,
        "lines_stored": load.polls[-1].stored if load.polls else 0,
        "drained": load.drained,
        "drain_s": round(load.drain_s, 3) if load.drain_s is not None else None,
        "latency": latency_figures(load),
        "lag": lag_figures(load),
        "polls": len(load.polls),
        "sources_request_ms": request_ms([p.request_s for p in load.polls if not p.status]),
        "status_request_ms": request_ms([p.request_s for p in load.polls if p.status]),
        "serve_cpu_cores": round(cores, 2) if cores is not None else None,
        "bench_cpu_cores": round(own, 2) if own is not None else None,
        "load_average_1m": load.load_average,
        "follower_states_first_seen_s": load.states,
        "follower_near_end": {
            k: following.get(k) for k in ("state", "lines_per_second", "lag_bytes", "last_error")
        },
    }


# --- report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def secs(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "never"


def spread(lat: dict[str, Any]) -> str:
    return (
        f"p50 {secs(lat['p50_s'])}  p90 {secs(lat['p90_s'])}  p99 {secs(lat['p99_s'])}  "
        f"max {secs(lat['max_s'])}"
    )


def print_latency(figures: dict[str, Any], warmup: float) -> bool:
    lat = figures["latency"]
    ok = lat["p99_s"] is not None and lat["p99_s"] <= LATENCY_BAR_S
    measured = figures["seconds_written"] - warmup
    print()
    print(
        f"latency at {figures['rate']:,} lines/s for {measured:.0f} s after {warmup:g} s of "
        f"warm-up ({lat['batches']:,} batches; written at {figures['written_rate']:,}/s)"
    )
    print(f"  os.write to stored (queryable), seconds: {spread(lat)}")
    print(f"  bar: p99 <= {LATENCY_BAR_S:g} s  {verdict(ok)}")
    if lat["never_stored"]:
        print(f"  {lat['never_stored']:,} batches not stored within {DRAIN_TIMEOUT_S:.0f} s")
    if lat["new_file"]["batches"]:
        print(f"  first {warmup:g} s of the new file: {spread(lat['new_file'])}")
    print(
        f"  (polled every {POLL_S * 1000:.0f} ms: each figure is up to {POLL_S * 1000:.0f} ms "
        f"+ one request late; requests took {figures['sources_request_ms']['mean']} ms on "
        f"average, p99 {figures['sources_request_ms']['p99']} ms)"
    )
    print(
        f"  serve used {figures['serve_cpu_cores']} cores (this benchmark "
        f"{figures['bench_cpu_cores']}; machine load average {figures['load_average_1m']}); "
        f"flush_ms {figures['flush_ms']}; "
        f"lag over the last second {figures['lag']['end_lag_lines']:,} lines "
        f"({figures['lag']['end_lag_s']:.2f} s)"
    )
    return ok


def print_step_header(step_seconds: float, warmup: float) -> None:
    print()
    print(f"max sustained rate, steps of {step_seconds:g} s, each on a new file")
    print(
        f"  growing: the lag's envelope rises > {GROWTH_SLOPE_PCT:g} % of the rate per s over "
        f"the second half (and significantly: t-test, 95 %), or the lag over the last second "
        f"is > {END_LAG_BAR_S:g} s of input, or the file is not stored within "
        f"{DRAIN_TIMEOUT_S:.0f} s of the last write"
    )
    print(
        f"  latency after the first {warmup:g} s; cores: serve's CPU while writing (answering "
        "the polls included); load: the machine's 1-minute load average"
    )
    print(
        f"{'rate/s':>9} {'written/s':>10} {'p50 s':>6} {'p99 s':>6} {'end lag':>9} "
        f"{'lag s':>6} {'slope/s':>15} {'drain s':>7} {'cores':>6} {'load':>5}  verdict"
    )


def slope_text(lag: dict[str, Any]) -> str:
    error = lag["envelope_slope_stderr"]
    value = f"{lag['envelope_slope_lines_per_s']:,.0f}"
    return f"{value} +/- {error:,.0f}" if error is not None else value


def print_step(figures: dict[str, Any]) -> None:
    lag, lat = figures["lag"], figures["latency"]
    state = "GROWING" if lag["growing"] else "steady"
    if not figures["writer_kept_rate"]:
        state += " (the writer fell short of the rate)"
    cores = figures["serve_cpu_cores"]
    print(
        f" {figures['written_rate']:>10,} {secs(lat['p50_s']):>6} "
        f"{secs(lat['p99_s']):>6} {lag['end_lag_lines']:>9,} {lag['end_lag_s']:>6.2f} "
        f"{slope_text(lag):>15} {secs(figures['drain_s']):>7} "
        f"{cores if cores is not None else 'n/a':>6} {figures['load_average_1m'] or 0:>5.1f}  "
        f"{state}" + (f": {lag['why']}" if lag["why"] else ""),
        flush=True,
    )


# --- the runs --------------------------------------------------------------------------


def latency_run(server: Server, pool: LinePool, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"latency run: {args.rate:,} lines/s for {args.warmup:g} + {args.seconds:g} s ...",
        flush=True,
    )
    seconds = args.warmup + args.seconds
    load = run_load(server, 0, "latency", args.rate, seconds, pool, args.warmup)
    figures = load_figures(load)
    figures["flush_ms"] = args.flush_ms
    figures["bar_p99_s"] = LATENCY_BAR_S
    figures["bar_met"] = print_latency(figures, args.warmup)
    return figures


def step_runs(server: Server, pool: LinePool, args: argparse.Namespace) -> dict[str, Any]:
    """Rates up from ``args.rate`` until the lag grows; the highest steady one."""
    steps: list[dict[str, Any]] = []
    best: int | None = None
    stopped = "all steps steady"
    warmup = min(args.warmup, args.step_seconds / 2)
    print_step_header(args.step_seconds, warmup)
    for number, factor in enumerate(STEP_FACTORS[: args.max_steps], start=1):
        rate = args.rate * factor
        print(f"{rate:>9,}", end="", flush=True)
        label = f"step-{number:02d}-{rate}"
        load = run_load(server, number, label, rate, args.step_seconds, pool, warmup)
        figures = load_figures(load)
        steps.append(figures)
        print_step(figures)
        if figures["lag"]["growing"]:
            stopped = f"the lag grew at {rate:,} lines/s"
            break
        if not figures["writer_kept_rate"]:
            stopped = f"the writer could not keep {rate:,} lines/s"
            break
        best = rate
    if best is None:
        print(f"no step was sustained without growing lag ({stopped})")
    else:
        print(
            f"highest rate sustained for {args.step_seconds:g} s without growing lag: "
            f"{best:,} lines/s ({stopped})"
        )
    return {
        "step_seconds": args.step_seconds,
        "max_sustained_rate": best,
        "stopped": stopped,
        "steps": steps,
    }


def write_results(out: Path, results: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return out


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, interrupt)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "args": {key: str(value) for key, value in vars(args).items()},
        "method": {
            "style": STYLE,
            "pool_lines": POOL_LINES,
            "write_tick_s": WRITE_TICK_S,
            "poll_s": POLL_S,
            "probe": f"{SOURCES_PATH} (lines of the file's row), {STATUS_PATH} every "
            f"{STATUS_EVERY} polls",
        },
    }
    server = Server(args.workdir, args.flush_ms)
    code = 0
    try:
        print(f"generating {POOL_LINES:,} {STYLE} lines ...", flush=True)
        pool = make_pool(POOL_LINES)
        server.start()
        print(f"conflictlens serve on 127.0.0.1:{server.port}, store {server.db}", flush=True)
        results["latency"] = latency_run(server, pool, args)
        if not results["latency"]["bar_met"]:
            code = 1
        if args.max_steps:
            results["sustained"] = step_runs(server, pool, args)
    except BenchError as exc:
        print(f"\nbench_tail: {exc}", file=sys.stderr)
        results["error"] = str(exc)
        code = 1
    except KeyboardInterrupt:
        print("\nbench_tail: interrupted", file=sys.stderr)
        results["error"] = "interrupted"
        code = 130
    finally:
        results["serve_stop_s"] = server.stop()
        shutil.rmtree(server.logs, ignore_errors=True)
        if not args.keep:
            for path in (server.db, Path(f"{server.db}.wal")):
                path.unlink(missing_ok=True)
    results["summary"] = summary_rows(results, args)
    print(f"\nfigures written to {write_results(args.out, results)}")
    return code


def summary_rows(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The latency bar and the highest steady rate, for ``make bench``'s table."""
    rows = []
    latency = results.get("latency")
    if latency is not None:
        p99 = latency["latency"]["p99_s"]
        rows.append(
            summary_row(
                f"tail: appended to queryable, p99 at {args.rate:,} lines/s for {args.seconds:g} s",
                f"{secs(p99)} s",
                f"<= {LATENCY_BAR_S:g} s",
                latency["bar_met"],
            )
        )
    sustained = results.get("sustained")
    if sustained is not None:
        best = sustained["max_sustained_rate"]
        rows.append(
            summary_row(
                f"tail: highest rate without growing lag, steps of {args.step_seconds:g} s",
                f"{best:,} lines/s" if best else "none",
                "none",
                None,
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
