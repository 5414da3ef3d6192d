"""Report benchmark: ``conflictlens report`` over the analysis benchmark's 30-day store.

Run as ``.venv/bin/python bench/bench_report.py``. The bar (a benchmark, not a timed test): a
report over 30 days of data (50M requests in rollups, 2M conflict events) is produced in
under 10 s.

It reuses (or builds) the synthetic store of ``bench/analysis_store.py`` under ``--workdir``
(30 days ending 2026-11-20T00:00Z) and times, end to end as a user runs it (a fresh
``conflictlens report`` process: start-up, read-only open, every query, rendering, the
atomic write), ``--runs`` times each:

* ``--period 2026-11-19`` (the nightly report of the last day),
* ``--period last-7d`` (with ``--now 2026-11-20T00:00:00Z``, the end of the data),
* ``--period 2026-10-21..2026-11-20`` (all 30 days),

as HTML (with the ~4.8 MB of plotly.js inline) and as JSON; then, in this process, where the
time of the 30-day report goes: each named query the builder asks, and the rendering.

Flags:
  --quick        a smoke run: 1/10 of the size (5M requests, 200k conflicts), 1 run
  --runs N       runs per case (default 3)
  --bar-s S      the bar for the 30-day report, in seconds (default 10)
  --workdir DIR  where the store and the results go (default bench/out)

Figures go to the terminal and to ``<workdir>/bench_report.json``, with the rows of ``make
bench``'s table. Exit status 1 when the bar is missed or a report fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.analysis_store import Spec, ensure_store
from bench.common import (
    BenchError,
    child_env,
    conflictlens_exe,
    cpu_sample,
    machine,
    other_cpu_share,
    summary_row,
)
from conflictlens.analysis.params import TimeRange
from conflictlens.analysis.reports import (
    ReportOptions,
    build_report,
    local_queries,
    parse_period,
    render,
)
from conflictlens.store.db import connect

END = "2026-11-20T00:00:00Z"
CASES = (
    ("day", "2026-11-19"),
    ("7 days", "last-7d"),
    ("30 days", "2026-10-21..2026-11-20"),
)


def report_command() -> list[str]:
    """``conflictlens report``; until the command is registered in conflictlens.cli, the same
    click command started directly (the same process work: Python, imports, the command)."""
    exe = str(conflictlens_exe())
    probe = subprocess.run([exe, "report", "--help"], capture_output=True, env=child_env())
    if probe.returncode == 0:
        return [exe, "report"]
    return [sys.executable, "-c", "from conflictlens.cli_report import report; report()"]


def run_cli(command: list[str], db: Path, period: str, fmt: str, out: Path) -> float:
    command = [
        *command, "--db", str(db), "--period", period, "--tz", "UTC",
        "--now", END, "--format", fmt, "--out", str(out),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"report --period {period} failed: {done.stderr.strip()}")
    return seconds


class Timed:
    """A query function that records how long each named query took."""

    def __init__(self, ask: Any) -> None:
        self.ask = ask
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        start = time.perf_counter()
        try:
            frame: pl.DataFrame = self.ask(name, time_range, values)
            return frame
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def breakdown(db: Path, period_text: str) -> dict[str, Any]:
    """Where the time of one report goes, in this process (a warm Python, a fresh connection)."""
    period = parse_period(period_text, "UTC", dt.datetime.fromisoformat(END))
    con = connect(db, read_only=True)
    try:
        timed = Timed(local_queries(con))
        start = time.perf_counter()
        report = build_report(timed, period, options=ReportOptions())
        built = time.perf_counter() - start
    finally:
        con.close()
    rendered = {}
    for fmt in ("html", "md", "json", "csv"):
        start = time.perf_counter()
        size = len(render(report, fmt))
        rendered[fmt] = {"seconds": round(time.perf_counter() - start, 3), "bytes": size}
    return {
        "build_seconds": round(built, 3),
        "queries": {
            k: round(v, 3) for k, v in sorted(timed.seconds.items(), key=lambda kv: -kv[1])
        },
        "render": rendered,
        "conflicts": report["conflicts"],
        "requests": report["requests"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/10 of the size, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="runs per case (3)")
    parser.add_argument("--bar-s", type=float, default=10.0, help="the 30-day bar in seconds (10)")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out"), help="(bench/out)")
    args = parser.parse_args(argv)
    spec = Spec(requests=5_000_000, conflicts=200_000) if args.quick else Spec()
    runs = args.runs or (1 if args.quick else 3)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"analysis-store-{spec.label}.duckdb"
    try:
        meta = ensure_store(db, spec)
        results: dict[str, Any] = {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "store": {"path": str(db), "mb": round(db.stat().st_size / 2**20, 1), "meta": meta},
            "runs": runs,
            "cases": [],
        }
        command = report_command()
        results["command"] = command[:2]
        before = cpu_sample(children=True)
        print(f"{'report':<10} {'format':<6} {'median s':>9} {'max s':>7} {'size':>10}")
        for label, period in CASES:
            for fmt in ("html", "json"):
                out = workdir / f"bench-report-{label.replace(' ', '')}.{fmt}"
                seconds = [run_cli(command, db, period, fmt, out) for _ in range(runs)]
                case = {
                    "case": label,
                    "period": period,
                    "format": fmt,
                    "seconds": [round(s, 3) for s in seconds],
                    "median_s": round(statistics.median(seconds), 3),
                    "max_s": round(max(seconds), 3),
                    "bytes": out.stat().st_size,
                }
                results["cases"].append(case)
                print(
                    f"{label:<10} {fmt:<6} {case['median_s']:>9.2f} {case['max_s']:>7.2f} "
                    f"{case['bytes']:>10,}"
                )
        results["other_cpu_share"] = other_cpu_share(before, cpu_sample(children=True))
        parts = breakdown(db, CASES[-1][1])
        results["breakdown_30_days"] = parts
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"\n30-day report in this process: built in {parts['build_seconds']:.2f} s "
        f"({parts['conflicts']:,} conflicts, {parts['requests']:,} requests); per query:"
    )
    for name, seconds in parts["queries"].items():
        print(f"  {name:<16} {seconds:>7.3f} s")
    print(
        "  rendering: " + ", ".join(f"{k} {v['seconds']:.3f} s" for k, v in parts["render"].items())
    )
    worst = max(c["max_s"] for c in results["cases"] if c["case"] == "30 days")
    met = worst < args.bar_s
    results["bar"] = {"seconds": args.bar_s, "worst_30_day_s": worst, "met": met}
    other = results["other_cpu_share"]
    print(
        f"\nbar: a 30-day report in under {args.bar_s:g} s: {'met' if met else 'MISSED'} "
        f"(slowest run {worst:.2f} s, end to end)"
        + (f"; other processes used {other:.0%} of the CPU meanwhile" if other is not None else "")
    )
    results["summary"] = [
        summary_row(
            f"report {case['case']}, {case['format']}, slowest of {runs}",
            f"{case['max_s']:.2f} s",
            f"< {args.bar_s:g} s",
            case["max_s"] < args.bar_s,
        )
        for case in results["cases"]
        if case["case"] == "30 days"
    ]
    out = workdir / "bench_report.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"figures written to {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
