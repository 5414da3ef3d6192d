"""Ingest benchmark: conflictlens against goaccess and ``wc -l`` on the same nginx log.

Run by ``make bench`` as ``.venv/bin/python bench/bench_ingest.py``. It generates an
nginx "combined" log with the project's generator (reused when one of the right size is
already there), then times, in one run and on the same file:

* ``conflictlens ingest --json`` into a fresh DuckDB file (wall time end to end, CPU seconds,
  peak RSS),
* ``goaccess --log-format=COMBINED -o report.json`` (the speed peer),
* ``wc -l`` (the floor: reading the file and nothing else),

``--runs`` times each of conflictlens and goaccess, interleaved (conflictlens, goaccess,
conflictlens, goaccess, ...: this machine's speed drifts over minutes, and both see the same
drift), and compares their medians two ways: wall time (the bar: conflictlens at least 25x
faster) and CPU seconds (user + system of the child and everything it waited for, from
``getrusage``): conflictlens uses every core and goaccess one, so the CPU ratio is the work
each does per line. Every goaccess run must have parsed every line (its ``valid_requests``
equals the line count of the log), and every conflictlens run must count the generator's
ground truth. With ``--big-lines`` it imports a bigger log to see whether peak memory stays
flat as the input grows; with ``--json-lines`` it times every JSON format. Figures go to the
terminal and to ``<workdir>/bench_ingest.json``, with the rows of ``make bench``'s table.

Exit status 1 when a bar is missed, a count is wrong, or something the bars need cannot be
measured (goaccess or GNU time missing, a command failing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.common import (  # noqa: E402
    BenchError,
    child_env,
    compile_bytecode,
    conflictlens_exe,
    summary_row,
)
from sample_logs.generator import write_log  # noqa: E402

STYLE = "nginx-combined"
SEED = 7
GOACCESS_RATIO_BAR = 25.0  # conflictlens throughput / goaccess throughput, at least
RSS_GROWTH_BAR_PCT = 20.0  # big-log peak RSS over the default-size one, at most
RSS_LIMIT_MB = 1024.0  # big-log peak RSS, below
READ_CHUNK = 1 << 24
JSON_STYLES = (
    "nginx-json",
    "traefik-json",
    "envoy-json",
    "kong-json",
    "caddy-json",
    "apipark-json",
)
JSON_BAR = 300_000  # lines per second, every JSON format


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


# --- arguments -------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}\n")


def integer(text: str, minimum: int) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}: {value}")
    return value


def non_negative_int(text: str) -> int:
    return integer(text, 0)


def positive_int(text: str) -> int:
    return integer(text, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--lines",
        type=positive_int,
        default=2_000_000,
        help="lines in the main log (default: 2000000)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=3,
        help="runs of conflictlens and of goaccess on the main log, interleaved, and imports "
        "of each JSON log; medians are compared (default: 3)",
    )
    parser.add_argument(
        "--big-lines",
        type=non_negative_int,
        default=8_000_000,
        help="lines in the memory-growth log; 0 skips it (default: 8000000)",
    )
    parser.add_argument(
        "--json-lines",
        type=non_negative_int,
        default=1_000_000,
        help="lines per JSON format in the JSON run; 0 skips it (default: 1000000)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("bench/out"),
        help="where logs and results go (default: bench/out)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep generated files (by default the big log and the databases are deleted)",
    )
    parser.add_argument(
        "--only",
        type=runs,
        default=RUNS,
        help=f"comma-separated runs to do, of {','.join(RUNS)} (default: all); "
        "big compares its peak RSS with main's, so it needs main",
    )
    parser.add_argument(
        "--json-formats",
        type=json_formats,
        default=JSON_STYLES,
        help="comma-separated JSON formats for the json run (default: all)",
    )
    args = parser.parse_args(argv)
    if "big" in args.only and "main" not in args.only:
        parser.error("--only big needs main too (it compares their peak RSS)")
    return args


RUNS = ("main", "big", "json")


def runs(text: str) -> tuple[str, ...]:
    return choices(text, RUNS, "run")


def json_formats(text: str) -> tuple[str, ...]:
    return choices(text, JSON_STYLES, "JSON format")


def choices(text: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
        )
    return chosen


# --- running commands ------------------------------------------------------------------


def gnu_time() -> str | None:
    """GNU time, for the peak RSS of a child; None when it is not installed."""
    found = shutil.which("time")
    return found if found else None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output on stderr)"


TIME_FORMAT = "%M"  # peak RSS (KB)


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


# --- the log ---------------------------------------------------------------------------


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


def remove_db(db: Path) -> None:
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)


# --- the three tools -------------------------------------------------------------------


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


# --- checks and report -----------------------------------------------------------------


def check_counts(label: str, report: dict[str, Any], truth: dict[str, Any]) -> list[dict[str, Any]]:
    """conflictlens's lines and conflicts against the ground truth; nothing rejected."""
    expected = {"lines": truth["lines"], "conflicts": truth["conflicts"], "rejected": 0}
    checks = []
    for key, want in expected.items():
        got = report.get(key)
        ok = got == want
        print(f"{'OK' if ok else 'MISMATCH':8} {label} {key}: {got} (expected {want})")
        checks.append({"run": label, "key": key, "got": got, "expected": want, "ok": ok})
    return checks


def fmt_rss(mb: float | None) -> str:
    return f"{mb:,.0f}" if mb is not None else "n/a"


def print_table(timings: list[Timing], lines: int) -> None:
    print()
    print(f"{lines:,} lines; wall time end to end (process start-up included)")
    print(f"{'tool':<14}{'seconds':>10}{'lines/s':>14}{'peak RSS MB':>14}{'CPU s':>10}")
    for t in timings:
        print(
            f"{t.tool:<14}{t.seconds:>10.2f}{t.lines_per_second:>14,.0f}{fmt_rss(t.peak_rss_mb):>14}"
            f"{fmt_cpu(t.cpu_seconds):>10}"
        )
    print()


def fmt_cpu(seconds: float) -> str:
    return f"{seconds:.2f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def ratio(numerator: Timing, denominator: Timing) -> float:
    """Throughput of ``numerator`` over that of ``denominator`` (same lines, so a time ratio)."""
    return denominator.seconds / numerator.seconds if numerator.seconds > 0 else 0.0


def compare_rss(small: Timing, big: Timing) -> dict[str, Any]:
    if small.peak_rss_mb is None or big.peak_rss_mb is None:
        raise BenchError("peak RSS unknown (GNU time gave none): the memory bar cannot be checked")
    growth = (big.peak_rss_mb - small.peak_rss_mb) / small.peak_rss_mb * 100
    ok = growth <= RSS_GROWTH_BAR_PCT and big.peak_rss_mb < RSS_LIMIT_MB
    print(
        f"peak RSS {short(small.lines)}: {small.peak_rss_mb:,.0f} MB, {short(big.lines)}: {big.peak_rss_mb:,.0f} MB "
        f"({growth:+.1f} %, bar: within {RSS_GROWTH_BAR_PCT:.0f} %, < {RSS_LIMIT_MB:.0f} MB) {verdict(ok)}"
    )
    return {
        "growth_pct": round(growth, 1),
        "bar_met": ok,
        "small_mb": round(small.peak_rss_mb),
        "big_mb": round(big.peak_rss_mb),
    }


def short(lines: int) -> str:
    """2_000_000 -> '2M', 400_000 -> '400k'."""
    if lines % 1_000_000 == 0:
        return f"{lines // 1_000_000}M"
    if lines >= 1_000_000:
        return f"{lines / 1_000_000:.1f}M"
    return f"{lines // 1000}k" if lines % 1000 == 0 else str(lines)


# --- the runs --------------------------------------------------------------------------


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


def interleaved_runs(
    args: argparse.Namespace, log: Path, goaccess: str
) -> tuple[list[tuple[Timing, dict[str, Any]]], list[tuple[Timing, dict[str, Any]]]]:
    """conflictlens, goaccess, conflictlens, goaccess, ...: the same number of runs of each,
    so that the machine's drift over minutes (tens of percent here) falls on both alike."""
    workdir: Path = args.workdir
    db = workdir / "bench.duckdb"
    ours, peer = [], []
    try:
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs}: conflictlens ingest ...", flush=True)
            ours.append(time_conflictlens(log, db, args.lines, workdir))
            print(f"run {number} of {args.runs}: goaccess ...", flush=True)
            peer.append(time_goaccess(goaccess, log, args.lines, workdir))
    finally:
        if not args.keep:
            remove_db(db)
    return ours, peer


def check_goaccess_parsed(
    peer: list[tuple[Timing, dict[str, Any]]], line_count: int | None
) -> list[dict[str, Any]]:
    """Each goaccess run parsed every line of the log: otherwise it did less work than
    conflictlens and the ratio flatters us."""
    checks = []
    for number, (_, general) in enumerate(peer, start=1):
        got = general.get("valid_requests")
        ok = line_count is not None and got == line_count
        print(
            f"{'OK' if ok else 'MISMATCH':8} goaccess run {number} parsed (valid_requests): {got} "
            f"of {general.get('total_requests')} requests (the log has {line_count} lines)"
        )
        checks.append(
            {
                "run": f"goaccess {number}",
                "key": "valid_requests",
                "got": got,
                "expected": line_count,
                "ok": ok,
            }
        )
    return checks


def print_runs(tool: str, runs: list[tuple[Timing, dict[str, Any]]]) -> None:
    print(
        f"{tool} runs: wall "
        + ", ".join(f"{t.seconds:.2f}" for t, _ in runs)
        + " s; CPU "
        + ", ".join(f"{t.cpu_seconds:.2f}" for t, _ in runs)
        + " s"
    )


def main_run(args: argparse.Namespace, results: dict[str, Any]) -> Timing:
    workdir: Path = args.workdir
    goaccess, wc_path = shutil.which("goaccess"), shutil.which("wc")
    if not goaccess:
        raise BenchError(
            "goaccess not found on PATH (make system-deps installs it): the ratio against it "
            "cannot be measured"
        )
    if not wc_path:
        raise BenchError("wc not found on PATH")
    log = workdir / f"access-{args.lines}.log"
    truth = ensure_log(log, args.lines)
    warm_page_cache(log)
    print("timing wc -l ...", flush=True)
    wc, counted = time_wc(wc_path, log, args.lines, workdir)
    ours, peer = interleaved_runs(args, log, goaccess)
    cl = median_timing("conflictlens", [t for t, _ in ours])
    ga = median_timing("goaccess", [t for t, _ in peer])
    report = median_report(ours)

    print_table([cl, ga, wc], args.lines)
    print(f"medians of {args.runs} runs each, interleaved")
    print_runs("conflictlens", ours)
    print_runs("goaccess", peer)
    overhead = cl.seconds - float(report.get("seconds", 0))
    print(
        f"conflictlens reports {report.get('seconds')} s inside the import (start-up and the "
        f"rest: {overhead:.2f} s)"
    )
    wall, cpu = ratio(cl, ga), cpu_ratio(cl, ga)
    wall_ok = wall >= GOACCESS_RATIO_BAR
    print(
        f"ratio conflictlens/goaccess, wall time: {wall:.1f}x (bar: >= "
        f"{GOACCESS_RATIO_BAR:.0f}x) {verdict(wall_ok)}"
    )
    print(
        f"ratio conflictlens/goaccess, CPU seconds: {cpu:.1f}x (no bar: conflictlens uses "
        f"{cl.cpu_seconds / cl.seconds:.1f} cores, goaccess {ga.cpu_seconds / ga.seconds:.1f})"
    )
    r_wc = ratio(cl, wc)
    print(f"ratio conflictlens/wc -l: {r_wc:.3f}x (reference: wc -l only reads the file)")
    print()
    checks = check_line_count(counted, truth["lines"])
    checks += check_goaccess_parsed(peer, counted)
    for number, (_, run_report) in enumerate(ours, start=1):
        checks += check_counts(f"{short(args.lines)} run {number}", run_report, truth)

    results["main"] = {
        "log": str(log),
        "lines": args.lines,
        "runs": args.runs,
        "truth": {"lines": truth["lines"], "conflicts": truth["conflicts"]},
        "timings": {t.tool: t.as_dict() for t in (cl, ga, wc)},
        "conflictlens_runs": [t.as_dict() for t, _ in ours],
        "goaccess_runs": [t.as_dict() for t, _ in peer],
        "conflictlens_report": report,
        "goaccess_general": [general for _, general in peer],
        "wc_count": counted,
    }
    results["ratios"] = {
        "wall": {"value": round(wall, 3), "bar": GOACCESS_RATIO_BAR, "bar_met": wall_ok},
        "cpu": {"value": round(cpu, 3), "bar": None},
        "conflictlens_over_wc": {"value": round(r_wc, 4)},
    }
    results["checks"] += checks
    results["summary"] += main_summary(args, cl, ga, checks)
    return cl


def cpu_ratio(numerator: Timing, denominator: Timing) -> float:
    """CPU seconds of ``denominator`` over those of ``numerator`` (work per line, same lines)."""
    if numerator.cpu_seconds <= 0:
        return 0.0
    return denominator.cpu_seconds / numerator.cpu_seconds


def check_line_count(counted: int | None, expected: int) -> list[dict[str, Any]]:
    ok = counted == expected
    print(f"{'OK' if ok else 'MISMATCH':8} wc -l: {counted} (expected {expected})")
    return [{"run": "wc -l", "key": "lines", "got": counted, "expected": expected, "ok": ok}]


def parsed_counts(counts: list[int | None]) -> str:
    """'2,000,000 in each of 3 runs', or each run's count when they differ."""
    if len(set(counts)) == 1 and counts[0] is not None:
        return f"{counts[0]:,} in each of {len(counts)} runs"
    return ", ".join(f"{n:,}" if n is not None else "none" for n in counts)


def main_summary(
    args: argparse.Namespace, cl: Timing, ga: Timing, checks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    what = f"ingest {short(args.lines)} combined vs goaccess, median of {args.runs}"
    parsed = [c for c in checks if c["key"] == "valid_requests"]
    counts = [c for c in checks if c["key"] != "valid_requests"]
    return [
        summary_row(
            f"{what}, wall",
            f"{cl.seconds:.2f} s",
            f">= {GOACCESS_RATIO_BAR:.0f}x",
            ratio(cl, ga) >= GOACCESS_RATIO_BAR,
            peer=f"{ga.seconds:.2f} s",
            ratio=f"{ratio(cl, ga):.1f}x",
        ),
        summary_row(
            f"{what}, CPU user+sys",
            f"{cl.cpu_seconds:.2f} s",
            "none",
            None,
            peer=f"{ga.cpu_seconds:.2f} s",
            ratio=f"{cpu_ratio(cl, ga):.1f}x",
        ),
        summary_row(
            "goaccess parsed lines, every run",
            "",
            "= line count",
            all(c["ok"] for c in parsed),
            peer=parsed_counts([c["got"] for c in parsed]),
        ),
        summary_row(
            "ingest counts vs ground truth, every run",
            f"{sum(c['ok'] for c in counts)} of {len(counts)} equal",
            "all equal",
            all(c["ok"] for c in counts),
        ),
    ]


def big_run(args: argparse.Namespace, small: Timing, results: dict[str, Any]) -> None:
    workdir: Path = args.workdir
    log = workdir / f"access-{args.big_lines}.log"
    print()
    truth = ensure_log(log, args.big_lines)
    db = workdir / "bench-big.duckdb"
    try:
        warm_page_cache(log)
        print(f"timing conflictlens ingest on {short(args.big_lines)} lines ...", flush=True)
        big, report = time_conflictlens(log, db, args.big_lines, workdir)
    finally:
        if not args.keep:
            remove_db(db)
            log.unlink(missing_ok=True)
            truth_path(log).unlink(missing_ok=True)
    print(
        f"conflictlens {short(args.big_lines)}: {big.seconds:.2f} s, {big.lines_per_second:,.0f} lines/s, peak RSS {fmt_rss(big.peak_rss_mb)} MB"
    )
    rss = compare_rss(small, big)
    checks = check_counts(short(args.big_lines), report, truth)
    results["checks"] += checks
    results["summary"] += [
        summary_row(
            f"ingest peak RSS {short(small.lines)} -> {short(big.lines)}",
            f"{rss['small_mb']} -> {rss['big_mb']} MB ({rss['growth_pct']:+.1f} %)",
            f"<= +{RSS_GROWTH_BAR_PCT:.0f} %, < {RSS_LIMIT_MB:.0f} MB",
            rss["bar_met"],
        ),
        summary_row(
            f"ingest counts vs ground truth, {short(big.lines)}",
            f"{sum(c['ok'] for c in checks)} of {len(checks)} equal",
            "all equal",
            all(c["ok"] for c in checks),
        ),
    ]
    results["big"] = {
        "log": str(log),
        "lines": args.big_lines,
        "kept": args.keep,
        "truth": {"lines": truth["lines"], "conflicts": truth["conflicts"]},
        "timing": big.as_dict(),
        "conflictlens_report": report,
        "peak_rss": {**rss, "bar_pct": RSS_GROWTH_BAR_PCT, "limit_mb": RSS_LIMIT_MB},
    }


def json_run(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Each JSON format's import speed, beside the combined format's from the main run."""
    workdir: Path = args.workdir
    rows = []
    print()
    for style in args.json_formats:
        log = workdir / f"{style}-{args.json_lines}.log"
        truth = ensure_log(log, args.json_lines, style)
        size = log.stat().st_size
        db = workdir / "bench-json.duckdb"
        try:
            warm_page_cache(log)
            # as for the main log: the median of args.runs imports (the machine's speed drifts)
            runs = [time_conflictlens(log, db, args.json_lines, workdir) for _ in range(args.runs)]
            timing = median_timing("conflictlens", [t for t, _ in runs])
            report = median_report(runs)
        finally:
            remove_db(db)
            if not args.keep:
                log.unlink(missing_ok=True)
                truth_path(log).unlink(missing_ok=True)
        inside = report["lines"] / report["seconds"] if report.get("seconds") else 0.0
        checks = [
            check
            for number, (_, run_report) in enumerate(runs, start=1)
            for check in check_counts(f"{style} run {number}", run_report, truth)
        ]
        results["checks"] += checks
        rows.append(
            {
                "format": style,
                "bytes_per_line": round(size / max(report["lines"], 1)),
                "seconds": timing.seconds,
                "cpu_seconds": timing.cpu_seconds,
                "lines_per_second": round(timing.lines_per_second),
                "lines_per_second_inside": round(inside),
                "runs_s": [round(run.seconds, 3) for run, _ in runs],
                "met": timing.lines_per_second >= JSON_BAR,
                "counts_equal": all(c["ok"] for c in checks),
            }
        )
    print(
        f"\n{'format':<14} {'B/line':>6} {'seconds':>8} {'CPU s':>6} {'lines/s':>10} {'inside':>10}  bar >= {JSON_BAR:,}/s"
    )
    for row in rows:
        print(
            f"{row['format']:<14} {row['bytes_per_line']:>6} {row['seconds']:>8.2f} {fmt_cpu(row['cpu_seconds']):>6} {row['lines_per_second']:>10,} "
            f"{row['lines_per_second_inside']:>10,}  {verdict(row['met'])}"
        )
    results["json"] = {"lines": args.json_lines, "bar_lines_per_second": JSON_BAR, "formats": rows}
    results["summary"] += [json_summary(row, args) for row in rows]


def json_summary(row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    counts = "" if row["counts_equal"] else " (counts WRONG)"
    return summary_row(
        f"ingest {row['format']} {short(args.json_lines)}, lines/s, median of {args.runs}",
        f"{row['lines_per_second']:,}/s{counts}",
        f">= {JSON_BAR:,}/s, counts equal",
        row["met"] and row["counts_equal"],
    )


def write_results(workdir: Path, results: dict[str, Any]) -> Path:
    out = workdir / "bench_ingest.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "args": {
            "lines": args.lines,
            "big_lines": args.big_lines,
            "json_lines": args.json_lines,
            "workdir": str(args.workdir),
            "keep": args.keep,
            "only": list(args.only),
            "json_formats": list(args.json_formats),
        },
        "gnu_time": gnu_time(),
    }
    results["checks"], results["summary"] = [], []
    code = 0
    try:
        run_all(args, results)
    except BenchError as exc:
        print(f"bench_ingest: {exc}", file=sys.stderr)
        results["error"] = str(exc)
        code = 1
    missed = [row["metric"] for row in results["summary"] if row["pass"] is False]
    if missed:
        print(f"\nbars missed: {'; '.join(missed)}")
        code = 1
    print(f"\nfigures written to {write_results(args.workdir, results)}")
    return code


def run_all(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The runs asked for; the memory bar needs GNU time, so it is looked for first."""
    big = "main" in args.only and "big" in args.only and args.big_lines > 0
    if big and not gnu_time():
        raise BenchError(
            "GNU time not found on PATH (apt-get install time): the peak RSS the memory bar "
            "compares cannot be measured"
        )
    compile_bytecode()
    if "main" in args.only:
        small = main_run(args, results)
        if big:
            big_run(args, small, results)
    if args.json_lines > 0 and "json" in args.only:
        json_run(args, results)


if __name__ == "__main__":
    sys.exit(main())
