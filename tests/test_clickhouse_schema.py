"""The ClickHouse schema, applied to chDB (ClickHouse's engine in-process): idempotent, an
insert sent twice with one token stored once, retention and partitions in force, and the
cluster form replicated and distributed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from conflictlens.store.clickhouse import schema

clickhouse_connect = pytest.importorskip("clickhouse_connect")

DB = "cl_schema"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    con = clickhouse_connect.get_client(dsn="chdb://memory")
    schema.apply(con, DB, retention_days=30)
    yield con
    con.command(f"DROP DATABASE IF EXISTS {DB}")


def _tables(client: Any) -> dict[str, str]:
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": DB},
    ).result_rows
    return {name: text for name, text in rows}


def test_every_catalog_table_exists_and_apply_is_idempotent(client: Any) -> None:
    before = _tables(client)
    schema.apply(client, DB, retention_days=30)  # a second time: nothing changes, no error
    assert _tables(client) == before
    wanted = {
        "conflict_events", "request_rollups", "rejects", "sources", "route_map",
        "alert_outbox", "alert_state", "alert_silences", "annotations",
        "conflict_hours", "request_hours", "conflict_slots", "request_slots",
        "hours_watermark", "hour_invalidations",
    }  # fmt: skip
    assert wanted <= set(before)


def test_events_carry_raw_line_agent_and_a_64_bit_source_id(client: Any) -> None:
    columns = dict(
        client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = 'conflict_events'",
            parameters={"db": DB},
        ).result_rows
    )
    assert columns["raw_line"] == "Nullable(String)"
    assert columns["agent"] == "LowCardinality(String)"
    assert columns["source_id"] == "Int64"
    assert columns["resource_ids"] == "Array(String)"
    assert columns["ts"] == "DateTime64(3, 'UTC')"


def test_retention_and_partitions_are_in_force(client: Any) -> None:
    tables = _tables(client)
    for name, column in (("conflict_events", "ts"), ("request_rollups", "minute")):
        text = tables[name]
        assert f"PARTITION BY toDate({column})" in text
        assert f"TTL toDateTime({column}) + toIntervalDay(30)" in text
        assert "non_replicated_deduplication_window = 10000" in text
    assert "SummingMergeTree" in tables["request_rollups"]
    assert "ReplacingMergeTree(updated_at)" in tables["sources"]
    assert "ORDER BY (agent, source_id)" in tables["sources"]


def _events(count: int) -> pa.Table:
    # within the retention: rows older than it are dropped as they are inserted
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return pa.table(
        {
            "ts": pa.array(
                [start + dt.timedelta(seconds=i) for i in range(count)], pa.timestamp("ms")
            ),
            "status": pa.array([409] * count, pa.int16()),
            "route": [f"/orders/{{id}}/{i % 3}" for i in range(count)],
            "service": ["orders"] * count,
            "source_id": pa.array([2**62 + 7] * count, pa.int64()),
            "offset": pa.array([i * 100 for i in range(count)], pa.int64()),
            "resource_ids": [["a1"]] * count,
            "agent": ["gw-1"] * count,
        }
    )


def test_a_batch_sent_twice_with_one_token_is_stored_once(client: Any) -> None:
    batch = _events(25)
    for _ in range(2):
        client.insert_arrow(
            f"{DB}.conflict_events",
            batch,
            settings={**schema.INSERT_SETTINGS, "insert_deduplication_token": "gw-1:7:0"},
        )
    client.insert_arrow(
        f"{DB}.conflict_events",
        batch,
        settings={**schema.INSERT_SETTINGS, "insert_deduplication_token": "gw-1:7:1"},
    )
    stored = client.query(f"SELECT count(), max(source_id) FROM {DB}.conflict_events").result_rows
    assert stored == [(50, 2**62 + 7)]  # the repeat dropped, a new token kept
    # the summaries follow every insert: 50 events in one hour, in three routes
    hours = client.query(
        f"SELECT sum(conflicts), count(DISTINCT route) FROM {DB}.conflict_hours"
    ).result_rows
    assert hours == [(50, 3)]


def test_the_cluster_form_is_replicated_and_distributed() -> None:
    statements = schema.ddl("fleet", cluster="main", retention_days=7)
    text = "\n".join(statements)
    assert all(" ON CLUSTER main" in s for s in statements)
    assert (
        "ReplicatedMergeTree('/clickhouse/tables/{shard}/fleet/conflict_events', '{replica}')"
        in text
    )
    assert "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/fleet/request_rollups'" in text
    for table in ("conflict_events", "request_rollups", "rejects", "sources"):
        assert f"Distributed(main, fleet, {table}_local, rand())" in text
    assert "INTERVAL 7 DAY" in text


def test_rows_older_than_the_retention_are_not_kept(client: Any) -> None:
    old = _events(3).set_column(
        0, "ts", pa.array([dt.datetime(2001, 1, 1)] * 3, pa.timestamp("ms"))
    )
    client.insert_arrow(f"{DB}.conflict_events", old)
    stored = client.query(
        f"SELECT count() FROM {DB}.conflict_events WHERE ts < '2002-01-01'"
    ).result_rows
    assert stored == [(0,)]


def test_retention_must_be_a_day_or_more() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        schema.ddl(retention_days=0)


def test_names_are_identifiers_only() -> None:
    with pytest.raises(ValueError, match="database"):
        schema.ddl("x; DROP TABLE y")
    with pytest.raises(ValueError, match="cluster"):
        schema.ddl(cluster="a b")
