"""Every catalog query on the embedded DuckDB store and on the same data in ClickHouse (chDB
on disk): per-query p95 on both, the ratio ClickHouse/DuckDB, the overall p95 ratio (bar:
within 2x), and the bytes ClickHouse stores per conflict event with and without raw_line.

Over the analysis benchmark's store (bench/analysis_store.py: 30 days, 50M requests, 2M
conflicts by default). Not part of the test suite; run it when the machine is quiet:

    PYTHONPATH=$PWD .venv/bin/python bench/bench_clickhouse.py --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.analysis_store import Spec, ensure_store
from bench.common import OUT, percentile, summary_row, write_json
from conflictlens.analysis.catalog import QUERIES, Analysis, run_query
from conflictlens.analysis.params import TimeRange
from conflictlens.store.clickhouse import schema
from conflictlens.store.clickhouse.engine import ClickHouseEngine
from conflictlens.store.engine import DuckDBEngine, Engine

DB = "bench"
SKIPPED = {*schema.SUMMARY_TABLES, "hours_watermark", "hour_invalidations", "schema_version"}


def copy_store(con: duckdb.DuckDBPyConnection, client: Any, batch_rows: int = 1_000_000) -> None:
    """Every table through Arrow, a million rows at a time (the views fill the summaries)."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    for table in tables:
        if table in SKIPPED:
            continue
        reader = con.sql(f'SELECT * FROM "{table}"').to_arrow_reader(batch_rows)  # noqa: S608
        for batch in reader:
            if batch.num_rows:
                client.insert_arrow(f"{DB}.{table}", pa.Table.from_batches([batch]))
        print(f"copied {table}", flush=True)


def check_copy(con: duckdb.DuckDBPyConnection, client: Any) -> dict[str, int]:
    """The events and the requests they came with, counted on both sides: a copy that lost
    rows would make every figure below meaningless."""
    counts: dict[str, int] = {}
    for label, sql in (
        ("events", "SELECT count(*) FROM conflict_events"),
        ("requests", "SELECT coalesce(sum(requests), 0) FROM request_rollups"),
    ):
        duck = con.execute(sql).fetchall()[0]
        house = client.query(sql.replace("FROM ", f"FROM {DB}.")).result_rows[0][0]
        if int(duck[0]) != int(house):
            raise SystemExit(f"the copy into ClickHouse lost rows: {label} {duck[0]} != {house}")
        counts[label] = int(house)
    return counts


def settle(client: Any) -> None:
    """Every table merged before timing: a store that has run for a while has its parts
    merged, and merges running in the background while the queries are timed blur them."""
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        parameters={"db": DB},
    ).result_rows
    for (table,) in tables:
        client.command(f"OPTIMIZE TABLE {DB}.`{table}` FINAL")


@dataclass(frozen=True)
class Copies:
    """The DuckDB store, and the same data in chDB (database DB, made the current one)."""

    con: duckdb.DuckDBPyConnection
    client: Any
    folder: Path
    copy_seconds: float
    copied: dict[str, int]


@contextlib.contextmanager
def store_copies(store: Path, workdir: Path) -> Iterator[Copies]:
    """The store opened read-only and copied into a fresh chDB folder, checked and merged;
    closed and removed after."""
    import clickhouse_connect

    folder = Path(tempfile.mkdtemp(prefix="bench-chdb-", dir=workdir))
    con = duckdb.connect(str(store), read_only=True)
    client = clickhouse_connect.get_client(dsn=f"chdb://{folder}")
    try:
        schema.apply(client, DB, retention_days=3650)
        started = time.perf_counter()
        copy_store(con, client)
        copy_seconds = time.perf_counter() - started
        copied = check_copy(con, client)
        print("copied", copied, flush=True)
        settle(client)
        client.command(f"USE {DB}")
        yield Copies(con, client, folder, copy_seconds, copied)
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)


def round_trip(engine: Engine, runs: int = 20) -> float:
    """The p95 of an empty query: the client's own cost, paid by every catalog query."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.sql("SELECT 1 AS one")
        seconds.append(time.perf_counter() - start)
    return percentile(seconds, 95)


def timed(engine: Engine, name: str, time_range: TimeRange | None, runs: int) -> list[float]:
    """Seconds per run after one warm-up run (not counted): serve runs for long, and its first
    ClickHouse run of a text pays the translation (sqlglot), cached after."""
    run_query(engine, name, time_range)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run_query(engine, name, time_range)
        seconds.append(time.perf_counter() - start)
    return seconds


def stored_bytes(client: Any) -> dict[str, float]:
    client.command(f"OPTIMIZE TABLE {DB}.conflict_events FINAL")
    rows = client.query(
        "SELECT sum(rows), sum(data_compressed_bytes) FROM system.parts "
        "WHERE database = {db:String} AND table = 'conflict_events' AND active",
        parameters={"db": DB},
    ).result_rows[0]
    raw = client.query(
        "SELECT sum(data_compressed_bytes) FROM system.columns "
        "WHERE database = {db:String} AND table = 'conflict_events' AND name = 'raw_line'",
        parameters={"db": DB},
    ).result_rows[0][0]
    events, total = int(rows[0] or 0), int(rows[1] or 0)
    if events == 0:
        raise SystemExit(f"system.parts shows no conflict_events rows in {DB}")
    return {
        "events": events,
        "bytes_per_event": total / events if events else 0.0,
        "bytes_per_event_without_raw_line": (total - int(raw)) / events if events else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", type=Path, help="a DuckDB store (default: the analysis one)")
    parser.add_argument("--workdir", type=Path, default=OUT)
    args = parser.parse_args()
    spec = Spec()
    store = args.store or args.workdir / f"analysis-store-{spec.label}.duckdb"
    if args.store is None:
        ensure_store(store, spec)
    with store_copies(store, args.workdir) as copies:
        con, client = copies.con, copies.client
        engines = {"duckdb": DuckDBEngine(con), "clickhouse": ClickHouseEngine(client, DB)}
        empty = {label: round_trip(engine) for label, engine in engines.items()}
        print("empty query p95", empty, flush=True)
        end = spec.end_time
        week = TimeRange(end - dt.timedelta(days=7), end)
        results: dict[str, Any] = {}
        for name, entry in QUERIES.items():
            ranged = isinstance(entry, Analysis) or "since" in entry.params
            row: dict[str, Any] = {}
            for label, engine in engines.items():
                try:
                    row[label] = percentile(
                        timed(engine, name, week if ranged else None, args.runs), 95
                    )
                except Exception as exc:  # a query ClickHouse cannot answer yet is reported
                    row[f"{label}_error"] = str(exc).splitlines()[0][:200]
            if "duckdb" in row and "clickhouse" in row:
                row["ratio"] = row["clickhouse"] / row["duckdb"] if row["duckdb"] else None
            results[name] = row
            print(name, row, flush=True)
        ratios = [r["ratio"] for r in results.values() if r.get("ratio")]
        summary = {
            "store": str(store),
            "copy_seconds": copies.copy_seconds,
            "copied": copies.copied,
            "empty_query_p95": empty,
            "queries": results,
            "p95_ratio": percentile(ratios, 95) if ratios else None,
            "answered_by_both": len(ratios),
            "catalog_entries": len(QUERIES),
            "storage": stored_bytes(client),
        }
        overall = summary["p95_ratio"]
        summary["summary"] = [
            summary_row(
                f"catalog on ClickHouse (chDB) vs DuckDB, {len(ratios)} of {len(QUERIES)} "
                "queries, a week of the 30-day store: p95 of the per-query p95 ratios",
                f"{overall:.1f}x" if overall else "no ratio",
                "<= 2x",
                bool(overall and overall <= 2 and len(ratios) == len(QUERIES)),
                peer="DuckDB",
            ),
            summary_row(
                "ClickHouse bytes per stored conflict event (without raw_line)",
                f"{summary['storage']['bytes_per_event']:.1f} "
                f"({summary['storage']['bytes_per_event_without_raw_line']:.1f})",
                "none",
                None,
            ),
        ]
        print({k: v for k, v in summary.items() if k != "queries"})
        write_json(args.workdir / "bench_clickhouse.json", summary)
    return 0 if summary["summary"][0]["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
