"""``make bench``'s closing table: every bar of every benchmark, from the JSON each one wrote.

    .venv/bin/python bench/summary.py [--out bench/out] [--failed "bench_tail ..."]

Each benchmark writes its rows (metric, ours, peer, ratio, bar, pass) under ``summary`` in
``<out>/<name>.json``; ``--failed`` names the ones that exited non-zero (the Makefile passes
them). A benchmark that wrote no results, stopped on an error or exited non-zero without a
failed row gets a failed row of its own, so that nothing missed can read as met. Exit status
1 when any row failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import summary_row

# In the order `make bench` runs them.
BENCHMARKS = (
    "bench_ingest",
    "bench_tail",
    "bench_otlp",
    "bench_analysis",
    "bench_report",
    "bench_dashboard",
)
COLUMNS = ("metric", "ours", "peer", "ratio", "bar", "pass")
WIDEST = 100  # characters of a cell: an error's whole text is above the table and in the JSON


def rows_of(name: str, out: Path, failed: set[str]) -> list[dict[str, Any]]:
    """The rows ``name`` wrote, and a failed row for whatever went wrong around them."""
    path = out / f"{name}.json"
    try:
        results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        exited = ", exited non-zero" if name in failed else ""
        return [summary_row(f"{name}: wrote no results ({path}){exited}", "", "", False)]
    except (OSError, ValueError) as exc:
        return [summary_row(f"{name}: unreadable results ({exc})", "", "", False)]
    rows = results.get("summary") or []
    if not (isinstance(rows, list) and all(well_formed(row) for row in rows)):
        return [summary_row(f"{name}: results without a summary of rows ({path})", "", "", False)]
    if results.get("error"):
        rows.append(summary_row(f"{name}: stopped: {results['error']}", "", "", False))
    if not any(row["pass"] is not None for row in rows):
        rows.append(summary_row(f"{name}: no bar in its results", "", "", False))
    if name in failed and not any(row["pass"] is False for row in rows):
        rows.append(summary_row(f"{name}: exited non-zero", "", "", False))
    return rows


def well_formed(row: Any) -> bool:
    return isinstance(row, dict) and all(key in row for key in COLUMNS)


def cell(value: Any) -> str:
    text = str(value)
    return text if len(text) <= WIDEST else text[: WIDEST - 3] + "..."


def result(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[passed]


def print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[cell(row[key]) for key in COLUMNS[:-1]] + [result(row["pass"])] for row in rows]
    heads = [*COLUMNS[:-1], "result"]
    widths = [max(len(text) for text in column) for column in zip(heads, *cells, strict=True)]
    print()
    for line in (heads, ["-" * width for width in widths], *cells):
        print(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="(bench/out)")
    parser.add_argument(
        "--failed", default="", help="benchmarks that exited non-zero, separated by spaces"
    )
    args = parser.parse_args(argv)
    failed = set(args.failed.split())
    rows = [row for name in BENCHMARKS for row in rows_of(name, args.out, failed)]
    print_table(rows)
    missed = sum(row["pass"] is False for row in rows)
    barred = sum(row["pass"] is not None for row in rows)
    print(f"\n{missed} of {barred} bars missed" if missed else f"\nall {barred} bars met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
