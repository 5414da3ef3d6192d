"""The engines' own gap, without conflictlens: the operations the catalog is made of, each
written by hand as one plain query, run on DuckDB and on ClickHouse (chDB) over the same week
of the same data, side by side. The catalog's ClickHouse/DuckDB ratio (bench_clickhouse.py)
cannot be expected to beat these: they are the same work with nothing of ours in between.

ClickHouse is timed three ways: through clickhouse-connect (the product's client) on the
store's own tables (Nullable strings, as DuckDB's columns are); the same through chDB's own
connection, no driver between (its Arrow bytes not even read), so that a gap which is only the
driver's shows as such; and through the driver on a copy made the way ClickHouse is fastest
(plain String keys with '' for NULL, sorted by time), so that a gap which is only the
schema's shows as such. The engine's floor is the best of the three.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_clickhouse_floor.py --runs 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.analysis_store import Spec, ensure_store
from bench.bench_clickhouse import DB, settle, store_copies
from bench.common import OUT, percentile, summary_row, write_json

# (name, DuckDB text, ClickHouse text): the same question. EVENTS is the events table (the
# store's or the plain copy), WEEK the range on ts, MINUTES on minute; the range's ends are
# bound parameters, never formatted in.
PRIMITIVES: tuple[tuple[str, str, str], ...] = (
    ("empty query", "SELECT 1 AS one", "SELECT 1 AS one"),
    (
        "count a week of events",
        "SELECT count(*) AS n FROM EVENTS WHERE WEEK",
        "SELECT count(*) AS n FROM EVENTS WHERE WEEK",
    ),
    (
        "group by route",
        "SELECT route, count(*) AS n FROM EVENTS WHERE WEEK GROUP BY route",
        "SELECT route, count(*) AS n FROM EVENTS WHERE WEEK GROUP BY route",
    ),
    (
        "group by six keys (clusters)",
        "SELECT service, method, route, status, error_code, kind, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY service, method, route, status, error_code, kind",
        "SELECT service, method, route, status, error_code, kind, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY service, method, route, status, error_code, kind",
    ),
    (
        "distinct clients",
        "SELECT count(DISTINCT client) AS n FROM EVENTS WHERE WEEK",
        "SELECT uniqExact(client) AS n FROM EVENTS WHERE WEEK",
    ),
    (
        "conflicts per route and minute",
        "SELECT route, date_trunc('minute', ts) AS minute, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY ALL",
        "SELECT route, toStartOfMinute(ts) AS minute, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY route, minute",
    ),
    (
        "hash of method, route and ids, grouped (resources)",
        "SELECT hash(method, route, resource_ids) AS thing, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY thing",
        "SELECT cityHash64(method, route, resource_ids) AS thing, count(*) AS n FROM EVENTS "
        "WHERE WEEK GROUP BY thing",
    ),
    (
        "running count per route (window)",
        "SELECT max(k) AS m FROM (SELECT row_number() OVER (PARTITION BY route ORDER BY ts) "
        "AS k FROM EVENTS WHERE WEEK)",
        "SELECT max(k) AS m FROM (SELECT row_number() OVER (PARTITION BY route ORDER BY ts) "
        "AS k FROM EVENTS WHERE WEEK)",
    ),
    (
        "requests per minute (rollups)",
        "SELECT minute, sum(requests) AS n FROM request_rollups WHERE MINUTES GROUP BY minute",
        "SELECT minute, sum(requests) AS n FROM request_rollups WHERE MINUTES GROUP BY minute",
    ),
    (
        "a week of events, every column, to Arrow (export)",
        "SELECT * EXCLUDE (raw_line) FROM EVENTS WHERE WEEK",
        "SELECT * EXCEPT (raw_line, agent) FROM EVENTS WHERE WEEK",
    ),
)
_DUCKDB_RANGES = {
    "WEEK": "ts >= $since AND ts < $until",
    "MINUTES": "minute >= $since AND minute < $until",
}
_CLICKHOUSE_RANGES = {
    "WEEK": "ts >= {since:DateTime64(6, 'UTC')} AND ts < {until:DateTime64(6, 'UTC')}",
    "MINUTES": "minute >= {since:DateTime64(6, 'UTC')} AND minute < {until:DateTime64(6, 'UTC')}",
}


def _text(template: str, ranges: dict[str, str], events: str) -> str:
    for name, condition in ranges.items():
        template = template.replace(name, condition)
    return template.replace("EVENTS", events)


# The events as ClickHouse likes them best: no Nullable, time first in the sort key.
_PLAIN_COPY = """
CREATE TABLE events_plain ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY (ts)
AS SELECT ts, ifNull(service, '') AS service, ifNull(method, '') AS method,
          ifNull(route, '') AS route, status, ifNull(error_code, '') AS error_code,
          ifNull(kind, '') AS kind, ifNull(client, '') AS client,
          arrayMap(x -> ifNull(x, ''), resource_ids) AS resource_ids,
          ifNull(path, '') AS path, ifNull(user_agent, '') AS user_agent,
          latency_ms, source_id, `offset`, raw_line, agent
FROM conflict_events
"""


def timed(run: Any, runs: int) -> float:
    run()  # warm-up, not counted
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return percentile(seconds, 95)


def measure(
    con: duckdb.DuckDBPyConnection,
    client: Any,
    native: Any,
    duck_template: str,
    house_template: str,
    bounds: dict[str, dt.datetime],
    runs: int,
) -> dict[str, float]:
    """One primitive on DuckDB, and on ClickHouse through the driver, without it, and on the
    plain copy; each ratio to DuckDB, and the floor: the best ClickHouse did."""
    duck_sql = _text(duck_template, _DUCKDB_RANGES, "conflict_events")
    duck_values = {k: v for k, v in bounds.items() if f"${k}" in duck_sql}
    house_sql = _text(house_template, _CLICKHOUSE_RANGES, "conflict_events")
    plain_sql = _text(house_template, _CLICKHOUSE_RANGES, "events_plain")
    native_values = {k: v.isoformat(sep=" ") for k, v in bounds.items()}
    row = {
        "duckdb": timed(lambda: con.sql(duck_sql, params=duck_values).to_arrow_table(), runs),
        "clickhouse": timed(lambda: client.query_arrow(house_sql, parameters=bounds), runs),
        "chdb_native": timed(lambda: native.query(house_sql, "Arrow", params=native_values), runs),
        "clickhouse_plain": timed(lambda: client.query_arrow(plain_sql, parameters=bounds), runs),
    }
    duck = row["duckdb"]
    return {
        **row,
        "ratio": row["clickhouse"] / duck,
        "ratio_native": row["chdb_native"] / duck,
        "ratio_plain": row["clickhouse_plain"] / duck,
        "ratio_floor": min(row["clickhouse"], row["chdb_native"], row["clickhouse_plain"]) / duck,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=OUT)
    args = parser.parse_args()
    spec = Spec()
    store = args.workdir / f"analysis-store-{spec.label}.duckdb"
    ensure_store(store, spec)
    import chdb

    with store_copies(store, args.workdir) as copies:
        con, client = copies.con, copies.client
        client.command(_PLAIN_COPY)
        settle(client)
        # chDB's own connection to the same folder: one engine per process, shared
        native = chdb.connect(str(copies.folder))
        native.query(f"USE {DB}")
        until = spec.end_time
        since = until - dt.timedelta(days=7)
        rows: dict[str, dict[str, float]] = {}
        bounds = {"since": since, "until": until}
        for name, duck_template, house_template in PRIMITIVES:
            rows[name] = measure(
                con, client, native, duck_template, house_template, bounds, args.runs
            )
            row = rows[name]
            print(
                f"{name:52s} duckdb {row['duckdb'] * 1000:6.1f} ms  clickhouse "
                f"{row['clickhouse'] * 1000:6.1f} ms ({row['ratio']:.2f}x)  no driver "
                f"{row['ratio_native']:.2f}x  plain schema {row['ratio_plain']:.2f}x  "
                f"floor {row['ratio_floor']:.2f}x",
                flush=True,
            )
        median = statistics.median(r["ratio_floor"] for r in rows.values())
        summary = {
            "store": str(store),
            "primitives": rows,
            "median_floor_ratio": median,
            "summary": [
                summary_row(
                    "ClickHouse (chDB)/DuckDB on hand-written primitives, the best of "
                    "driver, no driver and plain schema: median ratio (the engines' own gap)",
                    f"{median:.1f}x",
                    "none",
                    None,
                    peer="DuckDB",
                )
            ],
        }
        write_json(args.workdir / "bench_clickhouse_floor.json", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
