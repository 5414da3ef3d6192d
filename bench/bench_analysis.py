"""Analysis benchmark: every catalog query over 30 days of data, beside the same question on raw events.

Run by ``make bench`` as ``.venv/bin/python bench/bench_analysis.py``. The bar (a benchmark,
not a timed test): with 30 days of data (50M requests in rollups, 2M conflict events), every
catalog query for a 24 h or 7 d range answers in under 300 ms at p95, and incidents for 30 d
in under 1 s (``EXTRA_RANGES``), measured side by side with the same query on raw events, and
the ratio printed.

It builds (or reuses, see ``bench/analysis_store.py``) two DuckDB files under ``--workdir``:

* a synthetic conflictlens store: ``request_rollups`` summing to ``--requests`` over
  ``--days`` days ending 2026-11-20T00:00Z (per minute x service, method, route, status,
  ~1.5 partial rows per key-minute as the batch writer leaves them) and exactly
  ``--conflicts`` ``conflict_events`` consistent with the rollups' 409/412/423/428 counts;
* its peer: one row per request (``raw_requests``: ts, service, method, route, status,
  error_code, kind, latency_ms, client), what a tool that keeps every line would query.

Then, for every entry of ``analysis.catalog.QUERIES`` that takes ``since`` (enumerated at
run time, so new queries are measured without touching this file; ``QUERY_ARGS`` holds the
arguments a query is asked with beyond the range, such as the events query's page size), and
for a 24 h and a 7 d range ending at the end of the data: a fresh read-only connection
(``store.connect(path, read_only=True)``, as the CLI and serve open it), ``--warmup`` runs,
then ``--runs`` timed runs of ``run_query`` (the Polars frame included); p50 and p95 (nearest
rank) in ms, and "first", the first run on the fresh connection (a CLI call's cost, the
connection itself excluded: its median is printed once). Where ``PEER_SQL`` has an entry for
the query, the same is done with that SQL on the raw table, the ratio peer p95 / ours p95 is
printed, and the two answers are compared (``same`` when equal row for row; an answer that
differs fails its row). Queries without a peer show ``-``. The share of the machine's CPU that other processes used while timing is
printed too: on a shared machine it explains a noisy run.

Flags:
  --quick            a smoke run: 1/10 of the size (5M requests, 200k conflicts), 5 runs
  --requests N       requests in the rollups (default 50000000; 5000000 with --quick)
  --conflicts N      conflict events (default 2000000; 200000 with --quick)
  --days N           days of data (default 30)
  --runs N           timed runs per query and range (default 20; 5 with --quick)
  --warmup N         untimed runs before them (default 3; 1 with --quick)
  --bar-ms MS        the p95 bar (default 300)
  --only NAME        time only this catalog query (repeatable)
  --no-peer          skip the raw-events peer (no build, no peer timings)
  --rebuild          build both files again even if cached ones match
  --workdir DIR      where the files and results go (default bench/out)

Figures go to the terminal and to ``<workdir>/bench_analysis.json``, with the rows of ``make
bench``'s table (per range the slowest query, and every row that fails). Exit status 1 when a
query misses its bar, fails, or answers differently from its peer, or when a build fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.analysis_peer import PEER_SQL, open_raw, run_peer, same_answer
from bench.analysis_store import Spec, ensure_raw, ensure_store, meta_path
from bench.common import (
    ArgumentParser,
    BenchError,
    cpu_sample,
    machine,
    non_negative_int,
    other_cpu_share,
    positive_int,
    summary_row,
)
from conflictlens.analysis import QUERIES, TimeRange, run_query
from conflictlens.store import summarised_before
from conflictlens.store.db import connect

BAR_MS = 300.0
RANGES = (("24h", dt.timedelta(hours=24)), ("7d", dt.timedelta(days=7)))
# Ranges beyond those, per query, with their own p95 bar in ms: incidents are detected at the
# same 5-minute resolution whatever the range, so a month of them is timed too.
EXTRA_RANGES: dict[str, tuple[tuple[str, dt.timedelta, float], ...]] = {
    "incidents": (("30d", dt.timedelta(days=30), 1000.0),),
}

# Arguments a query is timed with beyond the range, as its callers ask it (the rest: defaults).
QUERY_ARGS: dict[str, dict[str, Any]] = {
    "events": {"limit": 100},  # the dashboard's Explore page: a page of 100, newest first
}


@dataclass
class Sample:
    """The run times (seconds) of one query on one range, on one fresh connection."""

    first: float
    timed: list[float]
    rows: int
    result: pl.DataFrame | None = None
    error: str | None = None

    @property
    def p50_ms(self) -> float:
        return percentile(self.timed, 50) * 1000

    @property
    def p95_ms(self) -> float:
        return percentile(self.timed, 95) * 1000


@dataclass
class Row:
    query: str
    range: str
    ours: Sample
    bar_ms: float = BAR_MS
    peer: Sample | None = None
    same: str = "-"
    busy: float | None = None  # other processes' share of the machine's CPU meanwhile

    @property
    def ok(self) -> bool:
        """Within the bar, and the same answer as the peer where there is one."""
        fast = self.ours.error is None and self.ours.p95_ms < self.bar_ms
        return fast and self.same in ("same", "-")

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.peer.error or self.ours.error or not self.ours.timed:
            return None
        return self.peer.p95_ms / self.ours.p95_ms if self.ours.p95_ms > 0 else None


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th fastest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- arguments -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1/10 of the size, 5 runs")
    parser.add_argument("--requests", type=positive_int, help="requests in the rollups (50000000)")
    parser.add_argument("--conflicts", type=positive_int, help="conflict events (2000000)")
    parser.add_argument("--days", type=positive_int, default=30, help="days of data (30)")
    parser.add_argument("--runs", type=positive_int, help="timed runs per query and range (20)")
    parser.add_argument("--warmup", type=non_negative_int, help="untimed runs before them (3)")
    parser.add_argument("--bar-ms", type=float, default=BAR_MS, help="p95 bar in ms (300)")
    parser.add_argument("--only", action="append", default=[], help="time only this query")
    parser.add_argument("--no-peer", action="store_true", help="skip the raw-events peer")
    parser.add_argument("--rebuild", action="store_true", help="build the files again")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out"), help="(bench/out)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    args.requests = args.requests or 50_000_000 // scale
    args.conflicts = args.conflicts or 2_000_000 // scale
    args.runs = args.runs or (5 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    if args.conflicts >= args.requests:
        parser.error("--conflicts must be fewer than --requests")
    unknown = [name for name in args.only if name not in QUERIES]
    if unknown:
        parser.error(f"no catalog query {', '.join(unknown)}; known: {', '.join(QUERIES)}")
    return args


# --- timing ----------------------------------------------------------------------------


def measure(
    open_con: Callable[[], duckdb.DuckDBPyConnection],
    run: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame],
    warmup: int,
    runs: int,
) -> Sample:
    """``warmup`` + ``runs`` runs on one fresh connection; a failure is recorded, not raised."""
    con = open_con()
    times: list[float] = []
    result: pl.DataFrame | None = None
    try:
        for _ in range(warmup + runs):
            start = time.perf_counter()
            result = run(con)
            times.append(time.perf_counter() - start)
    except Exception as exc:  # a query that fails is a row of the table, not the end of the run
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Sample(
            times[0] if times else math.nan, [], 0, None, f"{type(exc).__name__}: {message}"
        )
    finally:
        con.close()
    return Sample(times[0], times[warmup:], result.height if result is not None else 0, result)


def open_store(path: Path) -> Callable[[], duckdb.DuckDBPyConnection]:
    return lambda: connect(path, read_only=True)


def run_ours(
    name: str, since: dt.datetime, until: dt.datetime
) -> Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]:
    args = QUERY_ARGS.get(name, {})
    return lambda con: run_query(con, name, TimeRange(since, until), **args)


def connect_ms(path: Path, times: int = 5) -> float:
    """Median time to open the store read-only (schema check included) and close it."""
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        connect(path, read_only=True).close()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


# --- report ----------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f}"


def print_table(rows: list[Row], bar_ms: float) -> None:
    header = (
        f"{'query':<18}{'range':>5}{'rows':>7}{'first':>9}{'p50':>9}{'p95':>9}"
        f"{'peer p50':>10}{'peer p95':>10}{'ratio':>8}  {'answer':<8}{'busy':>5}  verdict"
    )
    print()
    print(
        f"times in ms; ratio = peer p95 / ours p95; bar: p95 < {bar_ms:.0f} ms; busy = other "
        "processes' share of the CPUs meanwhile"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        peer = row.peer
        if row.ours.error:
            print(f"{row.query:<18}{row.range:>5}  ERROR {row.ours.error}")
            continue
        ratio = row.ratio
        busy = "-" if row.busy is None else f"{row.busy:.0%}"
        print(
            f"{row.query:<18}{row.range:>5}{row.ours.rows:>7}{ms(row.ours.first * 1000):>9}"
            f"{ms(row.ours.p50_ms):>9}{ms(row.ours.p95_ms):>9}"
            f"{ms(peer.p50_ms if peer and not peer.error else None):>10}"
            f"{ms(peer.p95_ms if peer and not peer.error else None):>10}"
            f"{(f'{ratio:.1f}x' if ratio else '-'):>8}  {row.same:<8}{busy:>5}  "
            f"{'PASS' if row.ok else 'FAIL'}{'' if row.bar_ms == bar_ms else f' (bar {row.bar_ms:.0f})'}"
        )
        if peer and peer.error:
            print(f"{'':<18}  peer ERROR {peer.error}")


def file_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def store_counts(path: Path) -> dict[str, Any]:
    con = connect(path, read_only=True)
    try:
        row = con.execute(
            """SELECT (SELECT count(*) FROM request_rollups),
                      (SELECT sum(requests) FROM request_rollups),
                      (SELECT count(*) FROM conflict_events),
                      (SELECT count(*) FROM sources)"""
        ).fetchall()[0]
        summarised = summarised_before(con)
    finally:
        con.close()
    names = ("rollup_rows", "requests", "conflict_events", "sources")
    return {**dict(zip(names, map(int, row), strict=True)), "summarised_before": summarised}


# --- main ------------------------------------------------------------------------------


def build(args: argparse.Namespace, spec: Spec) -> dict[str, Any]:
    workdir: Path = args.workdir
    store = workdir / f"analysis-store-{spec.label}.duckdb"
    raw = workdir / f"analysis-raw-{spec.label}.duckdb"
    if args.rebuild:
        for path in (store, raw):
            meta_path(path).unlink(missing_ok=True)
    try:
        store_meta = ensure_store(store, spec)
        raw_meta = None if args.no_peer else ensure_raw(raw, store, spec)
    except duckdb.IOException as exc:
        raise BenchError(
            f"cannot open the synthetic data under {workdir} (another process holds it? "
            f"a --workdir of its own avoids that): {str(exc).splitlines()[0]}"
        ) from None
    except (duckdb.Error, RuntimeError) as exc:
        raise BenchError(f"building the synthetic data failed: {exc}") from None
    counts = store_counts(store)
    print(
        f"store {store.name}: {file_mb(store):,.0f} MB; {counts['requests']:,} requests in "
        f"{counts['rollup_rows']:,} rollup rows ({store_meta.get('rows_per_key_minute')} per "
        f"key-minute), {counts['conflict_events']:,} conflict events; summaries up to "
        f"{counts['summarised_before']:%Y-%m-%d %H:%M}; built in {store_meta['built_seconds']} s"
    )
    if raw_meta is not None:
        print(
            f"peer  {raw.name}: {file_mb(raw):,.0f} MB; {raw_meta['rows']['raw_requests']:,} rows; "
            f"built in {raw_meta['built_seconds']} s"
        )
    return {
        "store": {
            "path": str(store),
            "mb": round(file_mb(store), 1),
            "meta": store_meta,
            "counts": counts,
        },
        "raw": None
        if raw_meta is None
        else {"path": str(raw), "mb": round(file_mb(raw), 1), "meta": raw_meta},
    }


def timed_queries(args: argparse.Namespace) -> list[str]:
    names = [name for name, q in QUERIES.items() if "since" in getattr(q, "params", ())]
    return [n for n in names if n in args.only] if args.only else names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    spec = Spec(requests=args.requests, conflicts=args.conflicts, days=args.days)
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(duckdb=duckdb.__version__),
        "args": {
            "requests": args.requests,
            "conflicts": args.conflicts,
            "days": args.days,
            "runs": args.runs,
            "warmup": args.warmup,
            "bar_ms": args.bar_ms,
            "quick": args.quick,
        },
    }
    try:
        files = build(args, spec)
    except BenchError as exc:
        print(f"bench_analysis: {exc}", file=sys.stderr)
        return 1
    results["files"] = files
    store = Path(files["store"]["path"])
    raw = None if files["raw"] is None else Path(files["raw"]["path"])
    print(f"opening the store read-only: {connect_ms(store):.1f} ms (median of 5)")
    machine_before = cpu_sample()

    names = timed_queries(args)
    skipped = [n for n in QUERIES if n not in names and not args.only]
    until = spec.end_time
    rows: list[Row] = []
    for name in names:
        ranges = [(label, span, args.bar_ms) for label, span in RANGES]
        for label, span, bar_ms in (*ranges, *EXTRA_RANGES.get(name, ())):
            since = until - span
            print(f"timing {name} {label} ...", flush=True)
            before = cpu_sample()
            ours = measure(open_store(store), run_ours(name, since, until), args.warmup, args.runs)
            row = Row(name, label, ours, bar_ms)
            if raw is not None and name in PEER_SQL:
                sql = PEER_SQL[name]
                row.peer = measure(
                    open_raw(raw), run_peer(sql, since, until), args.warmup, args.runs
                )
                row.same = same_answer(ours.result, row.peer.result)
            row.busy = other_cpu_share(before, cpu_sample())
            rows.append(row)

    other = other_cpu_share(machine_before, cpu_sample())
    results["other_cpu_share"] = other
    print_table(rows, args.bar_ms)
    if other is not None:
        print(
            f"other processes used {other:.0%} of the machine's {os.cpu_count()} CPUs while "
            "timing (more than a few % slows every query alike)"
        )
    passed = sum(row.ok for row in rows)
    print()
    if skipped:
        print(f"not timed (no time range): {', '.join(skipped)}")
    for name, extra in QUERY_ARGS.items():
        if name in names:
            print(f"{name} timed with {', '.join(f'{k}={v!r}' for k, v in extra.items())}")
    print(
        f"{passed} of {len(rows)} pass: under their bar at p95 ({args.bar_ms:.0f} ms unless named), "
        "and the same answer as their peer"
    )
    results["rows"] = [
        {
            "query": row.query,
            "range": row.range,
            "rows": row.ours.rows,
            "first_ms": round(row.ours.first * 1000, 2),
            "p50_ms": round(row.ours.p50_ms, 2) if row.ours.timed else None,
            "p95_ms": round(row.ours.p95_ms, 2) if row.ours.timed else None,
            "error": row.ours.error,
            "peer_p50_ms": round(row.peer.p50_ms, 2) if row.peer and row.peer.timed else None,
            "peer_p95_ms": round(row.peer.p95_ms, 2) if row.peer and row.peer.timed else None,
            "peer_error": row.peer.error if row.peer else None,
            "ratio": round(row.ratio, 2) if row.ratio else None,
            "answer": row.same,
            "other_cpu_share": None if row.busy is None else round(row.busy, 3),
            "bar_ms": row.bar_ms,
            "pass": row.ok,
        }
        for row in rows
    ]
    results["passed"] = {"passed": passed, "timed": len(rows), "bar_ms": args.bar_ms}
    results["summary"] = summary_rows(rows)
    out = args.workdir / "bench_analysis.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"figures written to {out}")
    return 0 if passed == len(rows) else 1


def summary_rows(rows: list[Row]) -> list[dict[str, Any]]:
    """Per range the slowest query (its row passes when every query of the range does), then
    each other row that failed: ``make bench``'s table stays short."""
    summary, shown = [], []
    for label in dict.fromkeys(row.range for row in rows):
        in_range = [row for row in rows if row.range == label]
        slowest = max(in_range, key=lambda row: row.ours.p95_ms if row.ours.timed else math.inf)
        shown.append(slowest)
        passed = sum(row.ok for row in in_range)
        metric = f"query p95, {label}: slowest of {len(in_range)} ({slowest.query}); {passed} pass"
        summary.append(row_summary(metric, slowest, all(row.ok for row in in_range)))
    for row in rows:
        if not row.ok and all(row is not other for other in shown):  # (Row == compares frames)
            summary.append(row_summary(f"query p95, {row.range}: {row.query}", row, False))
    return summary


def row_summary(metric: str, row: Row, passed: bool) -> dict[str, Any]:
    peer = row.peer.p95_ms if row.peer and row.peer.timed and not row.peer.error else None
    ours = f"ERROR {row.ours.error}" if row.ours.error else f"{ms(row.ours.p95_ms)} ms"
    answer = "" if row.same in ("same", "-") else f" (answer {row.same})"
    return summary_row(
        metric,
        ours + answer,
        f"< {row.bar_ms:.0f} ms",
        passed,
        peer=f"{ms(peer)} ms" if peer is not None else "",
        ratio=f"{row.ratio:.1f}x" if row.ratio else "",
    )


if __name__ == "__main__":
    sys.exit(main())
