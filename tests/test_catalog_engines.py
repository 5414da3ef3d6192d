"""One catalog, two engines, the same rows: every entry of analysis.catalog.QUERIES is run on
the embedded DuckDB store and on the same data copied into ClickHouse (chDB, in-process), for
a day, a week and the whole store, with filters off and on, and the answers must be equal:
the same columns in the same order, the same rows in the same order, floats to 1e-9.

The entries are taken from the catalog itself: a query added to it is in this test."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from click.testing import CliRunner

from conflictlens.analysis.baselines import summarised_before
from conflictlens.analysis.catalog import QUERIES, Analysis, run_query
from conflictlens.analysis.params import TimeRange
from conflictlens.cli import cli
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from conflictlens.store.clickhouse import schema
from conflictlens.store.clickhouse.engine import ClickHouseEngine
from conflictlens.store.engine import DuckDBEngine
from tests.clickhouse_target import clickhouse_client

pytestmark = pytest.mark.slow

DB = "catalog_engines"
HOURS = 72.0
# The summaries are views in ClickHouse: filled by the copy of the events and rollups.
NOT_COPIED = {*schema.SUMMARY_TABLES, "hours_watermark", "hour_invalidations"}


class Store:
    def __init__(self, duck: DuckDBEngine, house: ClickHouseEngine, truth: dict[str, Any]):
        self.duck, self.house, self.truth = duck, house, truth


def _extras(con: Any, end: dt.datetime) -> None:
    """Annotations and alert notifications, so their queries answer rows."""
    for hours, text, service in ((30, "deploy orders v2", None), (5, "config push", "orders")):
        con.execute(
            'INSERT INTO annotations ("at", text, service, created_at) VALUES (?, ?, ?, ?)',
            [end - dt.timedelta(hours=hours), text, service, end],
        )
    for i in range(6):
        payload = json.dumps(
            {"labels": {"route": f"/r/{i % 2}"}, "value": i * 0.5, "summary": f"s{i}"}
        )
        con.execute(
            "INSERT INTO alert_outbox (created_at, channel, rule, fingerprint, status, payload, "
            "next_attempt_at, delivered_at) VALUES (?, 'ops', ?, ?, 'firing', ?, ?, ?)",
            [end - dt.timedelta(hours=i * 20), f"rule{i % 2}", f"f{i}", payload, end,
             None if i % 3 else end],
        )  # fmt: skip


def _copy(con: Any, client: Any) -> None:
    tables = [row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()]  # fmt: skip
    for table in tables:
        if table in NOT_COPIED or table == "schema_version":
            continue
        data = con.sql(f'SELECT * FROM "{table}"').arrow()
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        if data.num_rows:
            client.insert_arrow(f"{DB}.{table}", data)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("engines")
    log = folder / "bad-day.log"
    truth = write_log(log, 150_000, style="nginx-extended", seed=3, hours=HOURS, scenario="bad-day")
    db = folder / "store.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    con = connect(db)
    _extras(con, dt.datetime.fromisoformat(truth["to"]).replace(tzinfo=None))
    client = clickhouse_client()
    schema.apply(client, DB, retention_days=3650)  # the sample's times are in 2026
    _copy(con, client)
    # (a session's USE does not outlive an HTTP request: the engine's client names the database)
    yield Store(DuckDBEngine(con), ClickHouseEngine(clickhouse_client(DB), DB), truth)
    client.command(f"DROP DATABASE IF EXISTS {DB}")
    con.close()


def _ranges(truth: dict[str, Any]) -> dict[str, TimeRange]:
    end = dt.datetime.fromisoformat(truth["to"]).replace(tzinfo=None) + dt.timedelta(seconds=1)
    return {
        "day": TimeRange(end - dt.timedelta(days=1), end),
        "week": TimeRange(end - dt.timedelta(days=7), end),
        "all": TimeRange(),
    }


def _filters(store: Store, name: str) -> dict[str, Any]:
    """The busiest cluster's service, method, route and error code, as far as the entry
    takes them."""
    top = store.duck.sql(
        "SELECT service, method, route, error_code AS code FROM conflict_events "
        "GROUP BY ALL ORDER BY count(*) DESC, route LIMIT 1"
    ).to_dicts()[0]
    params = QUERIES[name].params
    return {k: v for k, v in top.items() if k in params and v is not None}


# The only columns exempt from the comparison, each a count of how rows are stored rather
# than of what they say: a ClickHouse SummingMergeTree merges the partial per-minute rollup
# rows that DuckDB keeps apart (the requests they sum to are compared). Nothing else may be
# added here; the query's description says so too.
STORAGE_DETAILS = {"store_status": {"rollup_rows"}}


def _normalised(frame: pl.DataFrame) -> pl.DataFrame:
    """Integers of any width as Int64: a source id is INTEGER in DuckDB, Int64 in ClickHouse
    (an agent sends a 63-bit hash)."""
    return frame.with_columns(pl.col(pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16,
                                     pl.UInt32).cast(pl.Int64))  # fmt: skip


def assert_same_rows(duck: pl.DataFrame, house: pl.DataFrame) -> None:
    from polars.testing import assert_frame_equal

    assert duck.columns == house.columns
    assert_frame_equal(_normalised(duck), _normalised(house), rel_tol=1e-9, abs_tol=0)


def _takes_range(name: str) -> bool:
    entry = QUERIES[name]
    return isinstance(entry, Analysis) or "since" in entry.params


# An entry that takes no range or filters (rejects, sources, ...) is asked once.
CASES = [
    (name, span, filtered)
    for name in QUERIES
    for span in (("day", "week", "all") if _takes_range(name) else ("all",))
    for filtered in ((False, True) if _takes_range(name) else (False,))
]


@pytest.mark.parametrize(("name", "span", "filtered"), CASES)
def test_both_engines_answer_the_same_rows(
    store: Store, name: str, span: str, filtered: bool
) -> None:
    values = _filters(store, name) if filtered else {}
    time_range = _ranges(store.truth)[span] if _takes_range(name) else None
    duck = run_query(store.duck, name, time_range, **values)
    house = run_query(store.house, name, time_range, **values)
    exempt = STORAGE_DETAILS.get(name, set())
    assert exempt <= set(duck.columns) and exempt <= set(house.columns)
    assert_same_rows(duck.drop(*exempt), house.drop(*exempt))


def test_every_catalog_entry_is_compared() -> None:
    assert {name for name, _, _ in CASES} == set(QUERIES)


def test_clickhouse_uses_its_summaries_up_to_the_newest_hour(store: Store) -> None:
    """The summaries answer everything before the watermark, the raw tables the rest: a
    watermark ClickHouse gave back as a bare number (a DateTime reaches Arrow as UInt32)
    sent every baseline to the raw tables, the same answers many times slower."""
    newest = store.duck.sql("SELECT max(minute) AS m FROM request_rollups")["m"][0]
    assert isinstance(newest, dt.datetime)
    hour = newest.replace(minute=0, second=0, microsecond=0)
    assert summarised_before(store.house) == hour
