"""Ingest benchmark: conflictlens against goaccess and ``wc -l`` on the same nginx log.

Run by ``make bench`` as ``.venv/bin/python bench/bench_ingest.py``. It generates an
nginx "combined" log with the project's generator (reused when one of the right size is
already there), then times, in one run and on the same file:

* ``conflictlens ingest --json`` into a fresh DuckDB file (wall time end to end, peak RSS),
* ``goaccess --log-format=COMBINED -o report.json`` (the speed peer),
* ``wc -l`` (the floor: reading the file and nothing else),

checks conflictlens's counts against the generator's ground truth, and, with
``--big-lines``, imports a bigger log to see whether peak memory stays flat as the input
grows. Figures go to the terminal and to ``<workdir>/bench_ingest.json``.

Missing a bar is reported, not fatal (exit 0); a command that fails ends the run (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
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

from bench.common import BenchError, child_env, compile_bytecode, conflictlens_exe  # noqa: E402
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
    cpu_seconds: float | None = None  # user + system, all threads (None if unknown)

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
    cpu_seconds: float | None
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
        help="conflictlens imports of each log (of the main log: one before goaccess and the "
        "rest after it); the median is compared (default: 3)",
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


TIME_FORMAT = "%M %U %S"  # peak RSS (KB), user and system CPU seconds


def read_time_output(path: Path) -> tuple[float | None, float | None]:
    """Peak RSS (MB) and CPU seconds from GNU time's last line (a failed command adds a line
    before it); None for what cannot be read."""
    try:
        kilobytes, user, system = path.read_text().strip().splitlines()[-1].split()
        return int(kilobytes) / 1024, float(user) + float(system)
    except (OSError, IndexError, ValueError):
        return None, None


def run_timed(
    name: str, cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> Completed:
    """Run ``cmd`` under GNU time; wall time is measured around the whole child."""
    timer = gnu_time()
    with tempfile.NamedTemporaryFile(prefix="bench-rss-", suffix=".txt", delete=False) as handle:
        rss_file = Path(handle.name)
    full = [timer, "-f", TIME_FORMAT, "-o", str(rss_file), *cmd] if timer else cmd
    try:
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
        if proc.returncode != 0:
            raise BenchError(f"{name} failed (exit {proc.returncode}): {last_line(proc.stderr)}")
        peak, cpu = read_time_output(rss_file) if timer else (None, None)
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
    with contextlib.suppress(OSError, ValueError):  # a missing summary only loses a sanity check
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


def fmt_cpu(seconds: float | None) -> str:
    return f"{seconds:.2f}" if seconds is not None else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def ratio(numerator: Timing, denominator: Timing) -> float:
    """Throughput of ``numerator`` over that of ``denominator`` (same lines, so a time ratio)."""
    return denominator.seconds / numerator.seconds if numerator.seconds > 0 else 0.0


def compare_rss(small: Timing, big: Timing) -> dict[str, Any]:
    if small.peak_rss_mb is None or big.peak_rss_mb is None:
        print("peak RSS: unknown (GNU time not installed), growth not checked")
        return {"growth_pct": None, "bar_met": None}
    growth = (big.peak_rss_mb - small.peak_rss_mb) / small.peak_rss_mb * 100
    ok = growth <= RSS_GROWTH_BAR_PCT and big.peak_rss_mb < RSS_LIMIT_MB
    print(
        f"peak RSS {short(small.lines)}: {small.peak_rss_mb:,.0f} MB, {short(big.lines)}: {big.peak_rss_mb:,.0f} MB "
        f"({growth:+.1f} %, bar: within {RSS_GROWTH_BAR_PCT:.0f} %, < {RSS_LIMIT_MB:.0f} MB) {verdict(ok)}"
    )
    return {"growth_pct": round(growth, 1), "bar_met": ok}


def short(lines: int) -> str:
    """2_000_000 -> '2M', 400_000 -> '400k'."""
    if lines % 1_000_000 == 0:
        return f"{lines // 1_000_000}M"
    if lines >= 1_000_000:
        return f"{lines / 1_000_000:.1f}M"
    return f"{lines // 1000}k" if lines % 1000 == 0 else str(lines)


# --- the runs --------------------------------------------------------------------------


def main_run(args: argparse.Namespace, results: dict[str, Any]) -> Timing:
    workdir: Path = args.workdir
    log = workdir / f"access-{args.lines}.log"
    truth = ensure_log(log, args.lines)
    warm_page_cache(log)
    db = workdir / "bench.duckdb"

    # This machine's speed drifts by tens of percent over minutes (shared host): conflictlens
    # runs once before goaccess and again after it, and its median run is the one compared.
    print("timing conflictlens ingest ...", flush=True)
    runs = [time_conflictlens(log, db, args.lines, workdir)]
    goaccess = shutil.which("goaccess")
    general: dict[str, Any] | None = None
    ga: Timing | None = None
    if goaccess:
        print("timing goaccess ...", flush=True)
        ga, general = time_goaccess(goaccess, log, args.lines, workdir)
    for _ in range(args.runs - 1):
        print("timing conflictlens ingest again ...", flush=True)
        runs.append(time_conflictlens(log, db, args.lines, workdir))
    runs.sort(key=lambda run: run[0].seconds)
    cl, report = runs[len(runs) // 2]
    print(
        "conflictlens runs: "
        + ", ".join(f"{run.seconds:.2f} s" for run, _ in runs)
        + f" (median {cl.seconds:.2f} s)"
    )
    timings = [cl] if ga is None else [cl, ga]
    wc_path = shutil.which("wc")
    if not wc_path:
        raise BenchError("wc not found on PATH")
    print("timing wc -l ...", flush=True)
    wc, counted = time_wc(wc_path, log, args.lines, workdir)
    timings.append(wc)
    if not args.keep:
        remove_db(db)

    print_table(timings, args.lines)
    overhead = cl.seconds - float(report.get("seconds", 0))
    print(
        f"conflictlens reports {report.get('seconds')} s inside the import (start-up and the rest: {overhead:.2f} s)"
    )
    if general and general.get("valid_requests") != args.lines:
        print(
            f"note: goaccess counted {general.get('valid_requests')} valid of {general.get('total_requests')} requests"
        )
    if counted != args.lines:
        print(f"note: wc -l counted {counted} lines, expected {args.lines}")

    ratios: dict[str, Any] = {}
    if goaccess:
        r = ratio(cl, ga) if ga else 0.0
        ok = r >= GOACCESS_RATIO_BAR
        print(
            f"ratio conflictlens/goaccess: {r:.1f}x (bar: >= {GOACCESS_RATIO_BAR:.0f}x) {verdict(ok)}"
        )
        ratios["conflictlens_over_goaccess"] = {
            "value": round(r, 3),
            "bar": GOACCESS_RATIO_BAR,
            "bar_met": ok,
        }
    else:
        print(
            "goaccess not found on PATH (install it: make system-deps); ratio conflictlens/goaccess skipped"
        )
        ratios["conflictlens_over_goaccess"] = None
    r_wc = ratio(cl, wc)
    print(f"ratio conflictlens/wc -l: {r_wc:.3f}x (reference: wc -l only reads the file)")
    ratios["conflictlens_over_wc"] = {"value": round(r_wc, 4)}
    print()
    checks = check_counts(short(args.lines), report, truth)

    results["main"] = {
        "log": str(log),
        "lines": args.lines,
        "truth": {"lines": truth["lines"], "conflicts": truth["conflicts"]},
        "timings": {t.tool: t.as_dict() for t in timings},
        "conflictlens_runs_s": [round(run.seconds, 3) for run, _ in runs],
        "conflictlens_report": report,
        "goaccess_general": general,
        "wc_count": counted,
        "goaccess_found": bool(goaccess),
    }
    results["ratios"] = ratios
    results["checks"] += checks
    return cl


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
    results["checks"] += check_counts(short(args.big_lines), report, truth)
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
            runs = sorted(
                (time_conflictlens(log, db, args.json_lines, workdir) for _ in range(args.runs)),
                key=lambda run: run[0].seconds,
            )
            timing, report = runs[len(runs) // 2]
        finally:
            remove_db(db)
            if not args.keep:
                log.unlink(missing_ok=True)
                truth_path(log).unlink(missing_ok=True)
        inside = report["lines"] / report["seconds"] if report.get("seconds") else 0.0
        results["checks"] += check_counts(f"{style} {short(args.json_lines)}", report, truth)
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
    if not gnu_time():
        print("GNU time not found on PATH (apt-get install time); peak RSS will be n/a")
    results["checks"] = []
    compile_bytecode()
    try:
        if "main" in args.only:
            small = main_run(args, results)
            if args.big_lines > 0 and "big" in args.only:
                big_run(args, small, results)
        if args.json_lines > 0 and "json" in args.only:
            json_run(args, results)
    except BenchError as exc:
        print(f"bench_ingest: {exc}", file=sys.stderr)
        return 1
    print(f"\nfigures written to {write_results(args.workdir, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
