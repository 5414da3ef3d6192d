"""conflictlens agent → a ClickHouse store (chDB behind ClickHouse's HTTP interface, in its
own process: tests/chdb_http.py), against the generator's truth.

Unit level: a batch shipped twice with its tokens is stored once; a batch whose inserts did
not all succeed stays in the state file and, sent again, is stored once.
End to end: the agent process follows a log appended live; the store ends up with exactly
the generator's conflicts, requests per route and requests per minute, and no log line.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conflictlens.agent import state
from conflictlens.agent.runner import AgentOptions, ShipLoop
from conflictlens.ingest.batch import parse_chunk
from conflictlens.ingest.formats import get_format
from conflictlens.ingest.lines import Chunk
from conflictlens.ingest.options import IngestOptions
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import Writer
from conflictlens.store.clickhouse import schema
from conflictlens.store.clickhouse.shipper import Shipper
from tests.chdb_http import StoreServer
from tests.helpers import conflicts_by_cluster, truth_requests, wait_for

ROOT = Path(__file__).resolve().parent.parent
_databases = itertools.count(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreServer]:
    server = StoreServer(tmp_path_factory.mktemp("clickhouse"))
    server.start()
    yield server
    server.stop()


def fresh_database(store: StoreServer) -> str:
    """A database of its own for one test, with the store's schema."""
    name = f"agent_test_{os.getpid()}_{next(_databases)}"
    client = store.client()
    schema.apply(client, name)
    client.close()
    return name


# -- what the store holds -----------------------------------------------------------------


def scalar(store: StoreServer, database: str, sql: str) -> Any:
    client = store.client(database)
    try:
        return client.query(sql).result_rows[0][0]
    finally:
        client.close()


def stored_conflicts(store: StoreServer, database: str) -> list[dict[str, Any]]:
    client = store.client(database)
    try:
        rows = client.query(
            "SELECT method, route, status, error_code, toInt64(count()) FROM conflict_events "
            "GROUP BY method, route, status, error_code"
        ).result_rows
    finally:
        client.close()
    return [
        {"method": m, "route": r, "status": s, "error_code": e, "conflicts": n}
        for m, r, s, e, n in rows
    ]


def stored_requests(store: StoreServer, database: str, by: str) -> dict[Any, int]:
    client = store.client(database)
    try:
        rows = client.query(
            f"SELECT {by}, toInt64(sum(requests)) FROM request_rollups GROUP BY {by}"
        ).result_rows
    finally:
        client.close()
    return {tuple(row[:-1]) if len(row) > 2 else row[0]: row[-1] for row in rows}


def duplicate_events(store: StoreServer, database: str) -> int:
    return int(
        scalar(
            store, database, "SELECT count() - uniqExact(source_id, offset) FROM conflict_events"
        )
    )


def requests_per_minute(log: Path) -> dict[Any, int]:
    """Counted from the lines themselves (the bracketed time of a combined line), not by the
    code under test."""
    stamps = pl.read_csv(
        log, has_header=False, separator="\x01", quote_char=None, new_columns=["line"]
    )["line"].str.extract(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2})", 1)
    minutes = stamps.str.strptime(pl.Datetime("ms"), "%d/%b/%Y:%H:%M")
    return {k.replace(tzinfo=None): int(v) for k, v in minutes.value_counts().iter_rows()}


def assert_store_has(store: StoreServer, database: str, log: Path, truth: dict[str, Any]) -> None:
    assert duplicate_events(store, database) == 0
    conflicts = stored_conflicts(store, database)
    assert conflicts_by_cluster(conflicts) == conflicts_by_cluster(truth["conflicts_by_cluster"])
    assert sum(c["conflicts"] for c in conflicts) == truth["conflicts"]
    assert stored_requests(store, database, "method, route") == truth_requests(truth)
    minutes = stored_requests(store, database, "minute")
    assert {k.replace(tzinfo=None): v for k, v in minutes.items()} == requests_per_minute(log)


# -- the agent as a process ---------------------------------------------------------------


def agent_config(folder: Path, store: StoreServer, database: str, log: Path) -> Path:
    config = folder / "agent.toml"
    config.write_text(
        f'[store]\nbackend = "clickhouse"\nurl = "{store.url}"\ndatabase = "{database}"\n\n'
        f'[agent]\nname = "node-1"\nstate = "state.duckdb"\nship_interval_ms = 1000\n'
        f"flush_ms = 200\n\n"
        f'[[sources]]\npath = "{log}"\n'
    )
    return config


def start_agent(config: Path, output: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with output.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "conflictlens", "agent", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def wait_for_every_line(
    store: StoreServer, database: str, truth: dict[str, Any], seconds: float
) -> None:
    """Until the store counts at least every line written (more: a line stored twice, which
    the checks that follow say)."""
    wait_for(
        lambda: (
            scalar(store, database, "SELECT sum(requests) FROM request_rollups") >= truth["lines"]
        ),
        seconds,
        "every line in the store",
    )


def stop_agent(agent: subprocess.Popen[bytes]) -> int:
    agent.send_signal(signal.SIGTERM)
    return agent.wait(60)


def append_live(source: Path, log: Path, pieces: int, pause: float) -> None:
    """The generator's log appended to ``log`` in ``pieces`` parts, cut mid-line too."""
    data = source.read_bytes()
    step = len(data) // pieces + 1
    with log.open("ab", buffering=0) as handle:
        for at in range(0, len(data), step):
            handle.write(data[at : at + step])
            time.sleep(pause)


@pytest.mark.slow
def test_agent_ships_a_live_log_as_the_generator_wrote_it(
    store: StoreServer, tmp_path: Path
) -> None:
    database = fresh_database(store)
    generated = tmp_path / "generated.log"
    truth = write_log(generated, 30_000, hours=2.0)
    log = tmp_path / "access.log"
    log.touch()
    agent = start_agent(agent_config(tmp_path, store, database, log), tmp_path / "agent.out")
    try:
        append_live(generated, log, pieces=12, pause=0.25)
        wait_for_every_line(store, database, truth, 90)
    finally:
        code = stop_agent(agent)
    assert code == 0, (tmp_path / "agent.out").read_text()
    assert_store_has(store, database, generated, truth)
    # Never raw lines; the status row says how far the source was read.
    assert scalar(store, database, "SELECT countIf(raw_line IS NOT NULL) FROM conflict_events") == 0
    client = store.client(database)
    status = client.query(
        "SELECT agent, path, format, offset, lines, conflicts FROM sources FINAL"
    ).result_rows
    client.close()
    assert status == [
        (
            "node-1",
            str(log),
            "nginx-combined",
            log.stat().st_size,
            truth["lines"],
            truth["conflicts"],
        )
    ]


# -- unit level: one batch, shipped in process ---------------------------------------------

LINES = (
    b"".join(
        f'10.0.0.{i % 7} - - [20/Nov/2026:10:0{i % 5}:00 +0000] "PUT /orders/{i} HTTP/1.1" '
        f'{409 if i % 3 else 200} 12 "-" "curl/8"\n'.encode()
        for i in range(60)
    )
    + b"not a log line\n"
)


def one_batch_state(folder: Path, name: str = "node-u") -> Any:
    """A state file holding one outbound batch of LINES, committed by the store's Writer."""
    con = state.open_state(folder / "state.duckdb", name)
    writer = Writer(con)
    assert writer.outbound
    source = writer.register_source(device=1, inode=2, prefix=LINES[:64], path="/var/log/x.log")
    fmt = get_format("nginx-combined", None)
    batch = parse_chunk(Chunk(LINES, 0, len(LINES), 0), fmt, IngestOptions(), source.source_id)
    writer.commit(batch)
    return con


def ship_loop(con: Any, store: StoreServer, database: str, name: str = "node-u") -> ShipLoop:
    def connect() -> Shipper:
        return Shipper(store.client(database), database)

    options = AgentOptions(name=name, state=Path("state"), specs=(), connect=connect)
    return ShipLoop(con.cursor(), options)


def counts(store: StoreServer, database: str, rejects: bool = True) -> tuple[int, ...]:
    """Events, requests and (unless the table is gone) rejects stored."""
    found = (
        int(scalar(store, database, "SELECT count() FROM conflict_events")),
        int(scalar(store, database, "SELECT sum(requests) FROM request_rollups")),
    )
    if not rejects:
        return found
    return (*found, int(scalar(store, database, "SELECT count() FROM rejects")))


def test_a_batch_shipped_twice_is_stored_once(store: StoreServer, tmp_path: Path) -> None:
    database = fresh_database(store)
    con = one_batch_state(tmp_path)
    row = state.oldest(con)
    assert row is not None and state.backlog(con)[0] == 1
    loop = ship_loop(con, store, database)
    batch = loop._batch(row)
    shipper = Shipper(store.client(database), database)
    shipper.ship(batch)
    shipper.ship(batch)  # as after a crash between the inserts and forgetting the batch
    assert counts(store, database) == (40, 60, 1)
    assert duplicate_events(store, database) == 0
    con.close()


def test_a_batch_stays_until_every_insert_succeeded(store: StoreServer, tmp_path: Path) -> None:
    database = fresh_database(store)
    con = one_batch_state(tmp_path)
    client = store.client(database)
    client.command(f"DROP TABLE {database}.rejects")  # the third insert of the batch fails
    loop = ship_loop(con, store, database)
    assert not loop.ship_waiting()
    assert loop.outage_since is not None and "rejects" in (loop.last_error or "")
    assert state.backlog(con)[0] == 1  # kept: the events went, the rejects did not
    assert counts(store, database, rejects=False) == (40, 60)
    schema.apply(client, database)  # the table is back
    client.close()
    assert loop.ship_waiting()
    assert state.backlog(con)[0] == 0
    assert counts(store, database) == (40, 60, 1)  # the events and rollups sent again: once
    con.close()


def test_the_state_file_keeps_no_rows_of_its_own_and_no_raw_lines(tmp_path: Path) -> None:
    con = one_batch_state(tmp_path)
    assert con.execute("SELECT count(*) FROM conflict_events").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM request_rollups").fetchall() == [(0,)]
    row = state.oldest(con)
    assert row is not None and row.events is not None
    events = pl.read_ipc(row.events)
    assert "raw_line" not in events.columns and events.height == 40
    assert con.execute('SELECT "offset", lines FROM sources').fetchall() == [(len(LINES), 61)]
    con.close()


def test_a_state_file_is_one_agent_s(tmp_path: Path) -> None:
    state.open_state(tmp_path / "state.duckdb", "node-a").close()
    with pytest.raises(Exception, match="state of agent 'node-a'"):
        state.open_state(tmp_path / "state.duckdb", "node-b")


def test_agent_without_a_store_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "conflictlens", "agent", "--source", str(tmp_path / "x.log")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        'Error: no store: set [store] backend = "clickhouse" and its url in the config, or '
        "give --url"
    ]
