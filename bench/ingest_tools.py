"""The ingest benchmark's tools, each timed on the same log: conflictlens ingest, goaccess and
``wc -l``, run under GNU time for their peak RSS; medians of several runs, and how they print."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchError, child_env, conflictlens_exe
from conflictlens.sample_logs.generator import write_log

STYLE = "nginx-combined"
SEED = 7
READ_CHUNK = 1 << 24
TIME_FORMAT = "%M"  # peak RSS (KB)


@dataclass
class Timing:
    """One timed command: wall seconds end to end and peak RSS (None if unknown)."""

    tool: str
    seconds: float
    peak_rss_mb: float | None
    lines: int
    cpu_seconds: float  # user + system, all threads and child processes

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "lines_per_second": round(self.lines_per_second)}


@dataclass
class Completed:
    """What a timed command left behind."""

    seconds: float
    peak_rss_mb: float | None
    cpu_seconds: float
    stdout: str
    stderr: str


def gnu_time() -> str | None:
    """GNU time, for the peak RSS of a child; None when it is not installed."""
    found = shutil.which("time")
    return found if found else None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output on stderr)"


def read_peak_rss(path: Path) -> float | None:
    """Peak RSS (MB) from GNU time's last line (a failed command adds a line before it)."""
    try:
        return int(path.read_text().strip().splitlines()[-1]) / 1024
    except (OSError, IndexError, ValueError):
        return None


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every child this process has waited for (and of their
    own waited-for children): the difference around one command is that command's."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    name: str, cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> Completed:
    """Run ``cmd`` under GNU time (for its peak RSS); wall time is measured around the whole
    child, CPU time from the kernel's accounting of it."""
    timer = gnu_time()
    with tempfile.NamedTemporaryFile(prefix="bench-rss-", suffix=".txt", delete=False) as handle:
        rss_file = Path(handle.name)
    full = [timer, "-f", TIME_FORMAT, "-o", str(rss_file), *cmd] if timer else cmd
    try:
        cpu_before = children_cpu_seconds()
        start = time.perf_counter()
        proc = subprocess.run(
            full,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        cpu = children_cpu_seconds() - cpu_before
        if proc.returncode != 0:
            raise BenchError(f"{name} failed (exit {proc.returncode}): {last_line(proc.stderr)}")
        peak = read_peak_rss(rss_file) if timer else None
    finally:
        rss_file.unlink(missing_ok=True)
    return Completed(seconds, peak, cpu, proc.stdout, proc.stderr)


def remove_db(db: Path) -> None:
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)


def time_conflictlens(
    log: Path, db: Path, lines: int, workdir: Path
) -> tuple[Timing, dict[str, Any]]:
    remove_db(db)
    cmd = [str(conflictlens_exe()), "ingest", "--db", str(db), "--json", str(log)]
    done = run_timed("conflictlens ingest", cmd, cwd=workdir, env=child_env())
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise BenchError(
            f"conflictlens ingest printed no JSON object: {last_line(done.stdout)}"
        ) from None
    return Timing("conflictlens", done.seconds, done.peak_rss_mb, lines, done.cpu_seconds), report


def time_goaccess(
    goaccess: str, log: Path, lines: int, workdir: Path
) -> tuple[Timing, dict[str, Any]]:
    out = workdir / "report.json"
    out.unlink(missing_ok=True)
    cmd = [goaccess, str(log), "--log-format=COMBINED", "-o", str(out)]
    done = run_timed("goaccess", cmd, cwd=workdir)  # stderr (progress) is captured and dropped
    general: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):  # a missing summary fails the parsed count
        general = json.loads(out.read_text()).get("general", {})
    return Timing("goaccess", done.seconds, done.peak_rss_mb, lines, done.cpu_seconds), general


def time_wc(wc: str, log: Path, lines: int, workdir: Path) -> tuple[Timing, int | None]:
    done = run_timed("wc -l", [wc, "-l", str(log)], cwd=workdir)
    try:
        counted: int | None = int(done.stdout.split()[0])
    except (IndexError, ValueError):
        counted = None
    return Timing("wc -l", done.seconds, done.peak_rss_mb, lines, done.cpu_seconds), counted


def fmt_rss(mb: float | None) -> str:
    return f"{mb:,.0f}" if mb is not None else "n/a"


def fmt_cpu(seconds: float) -> str:
    return f"{seconds:.2f}"


def ratio(numerator: Timing, denominator: Timing) -> float:
    """Throughput of ``numerator`` over that of ``denominator`` (same lines, so a time ratio)."""
    return denominator.seconds / numerator.seconds if numerator.seconds > 0 else 0.0


def cpu_ratio(numerator: Timing, denominator: Timing) -> float:
    """CPU seconds of ``denominator`` over those of ``numerator`` (work per line, same lines)."""
    if numerator.cpu_seconds <= 0:
        return 0.0
    return denominator.cpu_seconds / numerator.cpu_seconds


def short(lines: int) -> str:
    """2_000_000 -> '2M', 400_000 -> '400k'."""
    if lines % 1_000_000 == 0:
        return f"{lines // 1_000_000}M"
    if lines >= 1_000_000:
        return f"{lines / 1_000_000:.1f}M"
    return f"{lines // 1000}k" if lines % 1000 == 0 else str(lines)


def median_timing(tool: str, timings: list[Timing]) -> Timing:
    """The median wall time, CPU time and peak RSS of ``timings`` (each on its own)."""
    peaks = [t.peak_rss_mb for t in timings]
    return Timing(
        tool,
        statistics.median(t.seconds for t in timings),
        None if None in peaks else statistics.median(p for p in peaks if p is not None),
        timings[0].lines,
        statistics.median(t.cpu_seconds for t in timings),
    )


def median_report(runs: list[tuple[Timing, dict[str, Any]]]) -> dict[str, Any]:
    """The report of the run whose wall time is the median (the lower one of an even count)."""
    ordered = sorted(runs, key=lambda run: run[0].seconds)
    return ordered[(len(ordered) - 1) // 2][1]


def print_runs(tool: str, runs: list[tuple[Timing, dict[str, Any]]]) -> None:
    print(
        f"{tool} runs: wall "
        + ", ".join(f"{t.seconds:.2f}" for t, _ in runs)
        + " s; CPU "
        + ", ".join(f"{t.cpu_seconds:.2f}" for t, _ in runs)
        + " s"
    )


def truth_path(log: Path) -> Path:
    return Path(f"{log}.truth.json")


def ensure_log(log: Path, lines: int, style: str = STYLE) -> dict[str, Any]:
    """Reuse ``log`` if its ground truth says it has ``lines`` lines; else write it."""
    try:
        truth: dict[str, Any] = json.loads(truth_path(log).read_text())
        if truth.get("lines") == lines and truth.get("style") == style and log.stat().st_size > 0:
            print(f"reusing {log} ({lines:,} lines)")
            return truth
    except (OSError, ValueError):
        pass
    print(f"generating {log} ({lines:,} lines, {style}, seed {SEED}) ...", flush=True)
    start = time.perf_counter()
    truth = write_log(log, lines, style=style, seed=SEED)
    print(
        f"  written in {time.perf_counter() - start:.1f} s ({log.stat().st_size / 2**20:,.0f} MB)"
    )
    return truth


def warm_page_cache(log: Path) -> None:
    """Read the file once so that no tool pays for a cold read the others skip."""
    with log.open("rb") as handle:
        while handle.read(READ_CHUNK):
            pass


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
