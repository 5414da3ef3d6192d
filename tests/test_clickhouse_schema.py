"""The ClickHouse schema, applied to chDB (ClickHouse's engine in-process): idempotent, an
insert sent twice with one token stored once, retention and partitions in force, and the
cluster form replicated and distributed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from conflictlens.cli import cli
from conflictlens.store.clickhouse import schema
from tests.clickhouse_target import clickhouse_client, clickhouse_url

DB = "cl_schema"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    con = clickhouse_client()
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
    assert columns["ts"] == "DateTime64(6, 'UTC')"


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
    client.command(f"OPTIMIZE TABLE {DB}.conflict_events FINAL")  # a merge applies the TTL
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


def test_cli_prints_the_schema_for_a_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["clickhouse", "schema", "--cluster", "main", "--database", "fleet",
              "--retention-days", "14"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE IF NOT EXISTS fleet.conflict_events_local ON CLUSTER main" in result.output
    assert "INTERVAL 14 DAY" in result.output
    assert result.output.count(";") == len(schema.ddl("fleet", "main", 14))


def test_cli_init_creates_the_store_named_by_the_config(client: Any, tmp_path: Path) -> None:
    # the module's store (chDB holds one engine per process: its in-memory one)
    config = tmp_path / "conflictlens.toml"
    config.write_text(
        f'[store]\nbackend = "clickhouse"\nurl = "{clickhouse_url()}"\n'
        'database = "cli_init"\nretention_days = 10\n'
    )
    for _ in range(2):  # again: nothing to do, no error
        result = CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "cli_init:" in result.output
    made = client.query("SELECT create_table_query FROM system.tables WHERE database = 'cli_init' "
                        "AND name = 'conflict_events'").result_rows  # fmt: skip
    assert "toIntervalDay(10)" in made[0][0]


def test_cli_init_refuses_a_duckdb_store_and_bad_settings(tmp_path: Path) -> None:
    config = tmp_path / "conflictlens.toml"
    config.write_text("[store]\nretention_days = 0\n")
    result = CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)])
    assert result.exit_code == 1
    assert "store.retention_days" in result.output and "Traceback" not in result.output
    config.write_text('[store]\nbackend = "duckdb"\n')
    result = CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)])
    assert result.exit_code == 1
    assert 'backend is not "clickhouse"' in result.output


def test_the_longest_retention_keeps_what_is_inserted() -> None:
    # A TTL date past 2106 wraps round into the past: every row would be dropped on insert.
    with pytest.raises(ValueError, match="retention_days"):
        schema.ddl(retention_days=schema.MAX_RETENTION_DAYS + 1)
    con = clickhouse_client()
    database = "cl_schema_longest"
    schema.apply(con, database, retention_days=schema.MAX_RETENTION_DAYS)
    try:
        con.insert_arrow(f"{database}.conflict_events", _events(7))
        assert con.query(f"SELECT count(*) FROM {database}.conflict_events").result_rows == [(7,)]
    finally:
        con.command(f"DROP DATABASE IF EXISTS {database}")


def test_a_request_time_keeps_its_microseconds(client: Any) -> None:
    """Envoy and Caddy log microseconds; the catalog's answers must equal DuckDB's, which
    keeps them."""
    logged = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=651225)
    events = _events(1).set_column(0, "ts", pa.array([logged], pa.timestamp("us")))
    client.insert_arrow(f"{DB}.conflict_events", events)
    found = client.query(
        f"SELECT ts FROM {DB}.conflict_events WHERE source_id = {{id:Int64}} "
        "AND toMicrosecond(ts) = 651225",
        parameters={"id": 2**62 + 7},
    ).result_rows
    assert [row[0].replace(tzinfo=None) for row in found] == [logged]
