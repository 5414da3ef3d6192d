"""Two `conflictlens serve` replicas (real processes on loopback) against one ClickHouse
(chDB behind ClickHouse's HTTP interface, tests/chdb_http.py): each notification and each
scheduled report exactly once, and both APIs answer the store's totals.

The data: a generated log (sample_logs/generator.py) whose every line lies in the minute
before the first evaluation slot B, a planted spike over an empty past, imported and copied
into ClickHouse before the replicas start (the rows of the future are invisible to an
evaluation until their time comes). A rule on the conflict count over one minute fires at
B, when the spike's minute is complete, and resolves at B + 1 min, when the window is empty.
A real webhook receiver, slow to answer, is the channel: it must get one "firing" and one
"resolved", while both replicas evaluate every 5 seconds and both try to deliver every 5 seconds.

Scheduled reports: two replicas (in-process, on their own threads) run the same tick at
once against the same store; one report is archived, built by ClickHouse from the store's
rows, with the generated log's counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chdb  # noqa: F401 - the tests need chDB (the dev install has it): no silent skip
import pytest
from click.testing import CliRunner

from conflictlens.cli import cli
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from tests.chdb_http import StoreServer
from tests.helpers import wait_for
from tests.test_serve import free_port

pytestmark = pytest.mark.slow

DB = "replicas"
ROOT = Path(__file__).resolve().parent.parent
COPIED = ("conflict_events", "request_rollups", "rejects", "sources")


def config_text(store_url: str, hook: str, above: int) -> str:
    return f"""
[store]
backend = "clickhouse"
url = "{store_url}"
database = "{DB}"
[alerts]
evaluation_interval = "5s"
[[alerts.rules]]
name = "spike"
metric = "count"
window = "1m"
above = {above}
channels = ["hook"]
[alerts.channels.hook]
type = "webhook"
url = "{hook}"
timeout = 20
"""


def _planted(folder: Path, until: dt.datetime) -> dict[str, Any]:
    """The spike: a generated log in [until - 1 min, until), imported, copied to ClickHouse."""
    log = folder / "spike.log"
    truth = write_log(log, 4000, style="nginx-combined", seed=11, end=until, hours=1 / 60)
    db = folder / "import.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    return truth | {"db": str(db)}


def planted_today(folder: Path, store: StoreServer) -> tuple[dict[str, Any], Path]:
    """The spike planted in today's first minute, imported and copied into the store, whose
    schema a config naming it (no channel that answers) has initialised: the truth, the
    config."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    truth = _planted(folder, now.replace(tzinfo=None, hour=0, minute=0, second=0))
    config = folder / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", 1))
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    _copy(truth["db"], store.client(DB))
    return truth, config


def _copy(db: str, client: Any) -> None:
    con = connect(Path(db), read_only=True)
    try:
        for table in COPIED:
            data = con.sql(f'SELECT * FROM "{table}"').arrow()
            data = data.read_all() if hasattr(data, "read_all") else data
            if data.num_rows:
                client.insert_arrow(table, data)
    finally:
        con.close()


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url}: {exc.code} {exc.read()[:300]!r}") from None


class SlowReceiver:
    """A webhook receiver on loopback that answers each POST after SEND_SECONDS: a send
    outlasts a delivery round (replicated_alerts.DELIVER_EVERY), so the other replica's next
    round finds the notification not yet delivered and only its claim keeps it from sending."""

    SEND_SECONDS = 7.0

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(SlowReceiver.SEND_SECONDS)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreServer]:
    server = StoreServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _replica(name: str, config: Path, folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONFLICTLENS_REPLICA": name}
    command = [sys.executable, "-m", "conflictlens", "serve", "--config", str(config)]
    command += ["--db", str(folder / f"{name}.duckdb"), "--port", str(port), "--no-dashboard"]
    with (folder / f"{name}.log").open("wb") as out:  # the child keeps its own handle
        return subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=out)


def _healthy(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/api/health")["status"] == "ok"
    except OSError:
        return False


@contextlib.contextmanager
def replicas_running(config: Path, folder: Path) -> Iterator[dict[str, int]]:
    """Two serve replicas, "a" and "b", on the store ``config`` names: their API ports, once
    both answer; stopped after."""
    ports = {"a": free_port(), "b": free_port()}
    replicas = [_replica(name, config, folder, port) for name, port in ports.items()]
    try:
        for port in ports.values():
            wait_for(lambda port=port: _healthy(port), 60, "a replica's API")
        yield ports
    finally:
        for process in replicas:
            process.terminate()
        for process in replicas:
            process.wait(30)


def test_two_replicas_send_each_notification_once_and_answer_the_truth(
    tmp_path: Path, store: StoreServer
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    first_slot = (now + dt.timedelta(seconds=100)).replace(second=0, microsecond=0)
    truth = _planted(tmp_path, first_slot)
    receiver = SlowReceiver()
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, receiver.url(), truth["conflicts"] // 2))
    result = CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    client = store.client(DB)
    _copy(truth["db"], client)
    try:
        with replicas_running(config, tmp_path) as ports:
            # Both answer the store's totals over the spike's minute, equal to the truth.
            minute = first_slot - dt.timedelta(minutes=1)  # the log's times are whole seconds
            span = {"since": minute.isoformat(), "until": first_slot.isoformat()}
            query = urllib.parse.urlencode(span)
            for port in ports.values():
                totals = _get(f"http://127.0.0.1:{port}/api/queries/totals?{query}")[0]
                assert (totals["conflicts"], totals["requests"]) == (
                    truth["conflicts"],
                    truth["lines"],
                )
                assert (
                    _get(f"http://127.0.0.1:{port}/api/status")["store"]["events"]
                    == truth["conflicts"]
                )

            def statuses() -> list[str]:
                return [json.loads(body)["status"] for body in receiver.bodies]

            wait_for(lambda: "resolved" in statuses(), 240, "the resolved notification")
            # Several more evaluation and delivery rounds of both replicas: nothing more arrives.
            time.sleep(15)
            assert statuses() == ["firing", "resolved"]
            firing = json.loads(receiver.bodies[0])
            assert firing["conflicts"] == truth["conflicts"]
            outbox = client.query("SELECT DISTINCT id FROM alert_outbox").result_rows
            assert len(outbox) == 2, outbox
            work = [_get(f"http://127.0.0.1:{port}/api/replica") for port in ports.values()]
            assert sum(w["notifications_sent"] for w in work) == 2, work
    finally:
        receiver.stop()


def test_two_replicas_archive_a_due_report_once(tmp_path: Path, store: StoreServer) -> None:
    from conflictlens.analysis.reports.config import ReportsConfig, ScheduleConfig
    from conflictlens.replicated_reports import ReplicatedReports
    from conflictlens.store.clickhouse.engine import ClickHouseEngine
    from conflictlens.store.clickhouse.state import Claims

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    truth, _ = planted_today(tmp_path, store)
    reports = ReportsConfig(nightly=ScheduleConfig(schedule="* * * * *", formats=("json",)))
    replicas = [
        ReplicatedReports(
            # Built on ClickHouse, as in a replica: every report query runs there.
            ClickHouseEngine(store.client(DB), DB),
            store.client(DB),
            Claims(store.client(DB), n),
            lambda: reports,
        )
        for n in ("a", "b")
    ]
    start = threading.Barrier(2)
    done: dict[str, list[str]] = {}

    def tick(replica: ReplicatedReports) -> None:
        start.wait()
        done[replica.claims.replica] = replica.run_due(now)

    threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(map(len, done.values())) == [0, 1], done
    for replica in replicas:  # the next ticks find it archived
        assert replica.run_due(now + dt.timedelta(seconds=30)) == []
    rows = store.client(DB).query("SELECT id, report FROM report_archive").result_rows
    assert len(rows) == 1, [r[0] for r in rows]
    report = json.loads(rows[0][1])
    assert (report["conflicts"], report["requests"]) == (truth["conflicts"], truth["lines"])


def test_sources_with_a_clickhouse_store_are_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text("http://127.0.0.1:9", "http://127.0.0.1:9/none", 1))
    config.write_text(config.read_text() + '\n[[sources]]\npath = "/var/log/nginx/*.log"\n')
    result = CliRunner().invoke(cli, ["serve", "--config", str(config), "--no-dashboard"])
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0, result.output
    assert "gateway nodes run `conflictlens agent`" in result.output


def test_cli_reads_the_clickhouse_store_without_a_server(
    tmp_path: Path, store: StoreServer
) -> None:
    # within the store's retention (a TTL drops older rows at once)
    until = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
    truth = _planted(tmp_path, until)
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", 1))
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    _copy(truth["db"], store.client(DB))
    since = (until - dt.timedelta(minutes=1)).isoformat()
    args = ["clusters", "--config", str(config), "--since", since, "--until", until.isoformat()]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    clusters = json.loads(result.output)
    assert sum(c["conflicts"] for c in clusters) == truth["conflicts"]
