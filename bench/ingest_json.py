"""The ingest benchmark's JSON run: each JSON format's import speed, beside the combined
format's from the main run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import summary_row
from bench.ingest_checks import check_counts
from bench.ingest_tools import (
    ensure_log,
    fmt_cpu,
    median_report,
    median_timing,
    remove_db,
    short,
    time_conflictlens,
    truth_path,
    verdict,
    warm_page_cache,
)

JSON_STYLES = (
    "nginx-json",
    "traefik-json",
    "envoy-json",
    "kong-json",
    "caddy-json",
    "apipark-json",
)
JSON_BAR = 300_000  # lines per second, every JSON format


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
