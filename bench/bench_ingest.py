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
import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.common import (
    ArgumentParser,
    BenchError,
    compile_bytecode,
    machine,
    non_negative_int,
    positive_int,
    summary_row,
)
from bench.ingest_checks import (
    check_counts,
    check_goaccess_parsed,
    check_line_count,
    parsed_counts,
)
from bench.ingest_json import JSON_STYLES, json_run
from bench.ingest_tools import (
    Timing,
    cpu_ratio,
    ensure_log,
    fmt_cpu,
    fmt_rss,
    gnu_time,
    median_report,
    median_timing,
    print_runs,
    ratio,
    remove_db,
    short,
    time_conflictlens,
    time_goaccess,
    time_wc,
    truth_path,
    verdict,
    warm_page_cache,
)

GOACCESS_RATIO_BAR = 25.0  # conflictlens throughput / goaccess throughput, at least
RSS_GROWTH_BAR_PCT = 20.0  # big-log peak RSS over the default-size one, at most
RSS_LIMIT_MB = 1024.0  # big-log peak RSS, below


# --- arguments -------------------------------------------------------------------------


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


# --- checks and report -----------------------------------------------------------------


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


# --- the runs --------------------------------------------------------------------------


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
        "machine": machine(),
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
