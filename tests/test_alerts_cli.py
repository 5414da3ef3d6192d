"""``conflictlens alerts``: check, list, test (delivered to a real webhook on loopback),
backtest, silences; on the database file, and through a real serve API on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import pytest
import uvicorn
from click.testing import CliRunner, Result

from conflictlens.analysis.alerts import evaluate_all
from conflictlens.analysis.alerts.backtest import evaluation_times
from conflictlens.analysis.alerts.series import BaselineCache
from conflictlens.api import create_app
from conflictlens.api_alerts import alerts_router, evaluation_job
from conflictlens.cli_alerts import alerts
from conflictlens.client import discovery_file, write_discovery
from conflictlens.config import load_config
from conflictlens.store import connect
from tests.helpers import cli_json
from tests.test_alerts_engine import at, ingest, lines_between

SECOND = dt.timedelta(seconds=1)


def run(*args: Any) -> Result:
    return CliRunner().invoke(alerts, [str(a) for a in args])


def one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        bodies: list[Any] = []
        self.bodies = bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


CONFIG = """
db = "alerts.duckdb"

[alerts]
evaluation_interval = "30s"
dashboard_url = "http://127.0.0.1:8501"

[[alerts.rules]]
name = "carts-ratio"
group_by = ["method", "route"]
metric = "ratio"
window = "5m"
above = 0.3
min_requests = 20
for = "2m"
keep_firing_for = "3m"
channels = ["ops"]

[[alerts.rules]]
name = "quiet"
match = {{ route = "/api/v1/users/*" }}
metric = "count"
window = "5m"
anomaly = 4.0

[alerts.channels.ops]
type = "webhook"
url = "{url}"
"""


@pytest.fixture
def setup(tmp_path: Path, receiver: Receiver, run_cli: Any) -> Path:
    """./conflictlens.toml with two rules, and its store with a conflict spike at 10:00-10:20."""
    config = tmp_path / "conflictlens.toml"
    config.write_text(CONFIG.format(url=receiver.url), encoding="utf-8")
    db = tmp_path / "alerts.duckdb"
    ingest(run_cli, db, lines_between(at("08:00"), at("11:30")), "access.log")
    return db


def step_engine(db: Path, start: dt.datetime, end: dt.datetime) -> list[Any]:
    config = load_config().alerts
    cache: BaselineCache = {}
    with closing(connect(db)) as con:
        return [
            change
            for now in evaluation_times(start, end, config.evaluation_interval)
            for change in evaluate_all(con, config, now.replace(tzinfo=dt.UTC), cache=cache)
        ]


# --- help -----------------------------------------------------------------------------------


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *commands(alerts)], ids=lambda p: " ".join(p) or "alerts")
def test_every_alerts_command_documents_itself(path: tuple[str, ...]) -> None:
    command: click.Command = alerts
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert "Example:" in (command.callback.__doc__ or "" if command.callback else "")
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts} has no help text"
    result = run(*path, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout


# --- on the database file -----------------------------------------------------------------------


def test_check_summarises_a_valid_config(setup: Path) -> None:
    result = run("check")
    assert result.exit_code == 0, result.output
    assert "carts-ratio" in result.stdout and "ratio > 0.3" in result.stdout
    assert "conflictlens.toml: OK: 2 rule(s), 1 channel(s), 0 silence(s)" in result.stdout
    summary = cli_json(run("check", "--json"))
    assert [r["name"] for r in summary["rules"]] == ["carts-ratio", "quiet"]
    assert summary["rules"][1]["match"] == {"route": "/api/v1/users/*"}
    assert summary["channels"]["ops"]["type"] == "webhook"
    assert "/hook" not in json.dumps(summary["channels"])  # a webhook URL is a secret


def test_check_refuses_an_invalid_rule_in_one_line(setup: Path) -> None:
    path = Path("conflictlens.toml")
    path.write_text(path.read_text().replace('window = "5m"\nabove', 'window = "5x"\nabove'))
    one_line_error(
        run("check"),
        'conflictlens.toml: alerts.rules[0].window: "5x" is not a duration (e.g. 30s, 5m, 2h)',
    )


def test_list_shows_each_group_state(setup: Path) -> None:
    step_engine(setup, at("09:59"), at("10:07"))
    state = cli_json(run("list", "--json"))
    carts, quiet = state["rules"]
    assert quiet["groups"] == []
    (group,) = carts["groups"]
    assert group["state"] == "firing"
    assert group["labels"]["route"] == "/api/v1/carts/{id}"
    assert group["firing_since"] == "2026-11-20T10:05:00+00:00"
    table = run("list")
    assert table.exit_code == 0
    assert "firing" in table.stdout and "route=/api/v1/carts/{id}" in table.stdout
    assert "normal" in table.stdout  # the quiet rule


def test_test_delivers_to_the_rules_channels(setup: Path, receiver: Receiver) -> None:
    result = run("test", "carts-ratio")
    assert result.exit_code == 0, result.output
    assert "delivered to ops" in result.stdout
    (body,) = receiver.bodies
    assert body["status"] == "test" and body["rule"] == "carts-ratio"
    assert body["labels"]["alertname"] == "carts-ratio"
    with closing(connect(setup, read_only=True)) as con:
        rows = con.execute("SELECT status, delivered_at IS NOT NULL FROM alert_outbox").fetchall()
    assert rows == [("test", True)]


def test_test_errors_are_one_line(setup: Path, receiver: Receiver) -> None:
    one_line_error(run("test", "nope"), "no alert rule named 'nope'")
    one_line_error(run("test", "quiet"), "alert rule quiet has no channels")
    receiver.close()  # the channel is down: said in one line, and the row stays queued
    one_line_error(run("test", "carts-ratio"), "test notification not delivered", "ops")
    with closing(connect(setup, read_only=True)) as con:
        rows = con.execute("SELECT delivered_at, attempts FROM alert_outbox").fetchall()
    assert rows == [(None, 1)]


def test_backtest_json_lists_the_episodes_live_evaluation_produced(setup: Path) -> None:
    changes = step_engine(setup, at("09:00"), at("11:00"))
    live = [(c.rule, c.labels, c.at) for c in changes if c.state in ("firing", "resolved")]
    episodes = cli_json(
        run("backtest", "--since", "2026-11-20T09:00:00Z", "--until", "2026-11-20T11:00Z", "--json")
    )
    assert [(e["rule"], e["labels"], e["start"], e["end"]) for e in episodes] == [
        (
            live[0][0],
            live[0][1],
            live[0][2].isoformat() + "+00:00",
            live[1][2].isoformat() + "+00:00",
        )
    ]
    assert episodes[0]["start"] == "2026-11-20T10:05:00+00:00"
    assert episodes[0]["peak_value"] == 0.6
    table = run("backtest", "--rule", "carts-ratio", "--since", "2026-11-20")
    assert table.exit_code == 0 and "2026-11-20 10:05:00" in table.stdout
    one_line_error(run("backtest", "--rule", "nope"), "no alert rule named 'nope'")
    one_line_error(run("backtest", "--since", "yesterday"), "invalid time 'yesterday'")


def test_silences_add_list_expire(setup: Path) -> None:
    added = run("silence", "add", "--rule", "carts-ratio", "--match", "route=/api/v1/carts/{id}",
                "--for", "2h", "--comment", "deploy")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("silence 1 added for 2h")
    (silence,) = cli_json(run("silence", "list", "--json"))
    assert silence["matchers"] == {"rule": "carts-ratio", "route": "/api/v1/carts/{id}"}
    assert silence["active"] is True and silence["comment"] == "deploy"
    starts = dt.datetime.fromisoformat(silence["starts_at"])
    assert dt.datetime.fromisoformat(silence["ends_at"]) - starts == dt.timedelta(hours=2)
    assert run("silence", "expire", "1").exit_code == 0
    (silence,) = cli_json(run("silence", "list", "--json"))
    assert silence["active"] is False
    one_line_error(run("silence", "expire", "1"), "no active silence 1")
    one_line_error(
        run("silence", "add", "--rule", "r", "--for", "soon"), '"soon" is not a duration'
    )
    one_line_error(
        run("silence", "add", "--rule", "r", "--match", "route", "--for", "1h"), "key=value"
    )


# --- through serve --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serving:
    """serve's API with the alert router, on loopback, owning the store (as serve does)."""

    def __init__(self, db: Path) -> None:
        self.con = connect(db)
        config = load_config().alerts
        self.clock = at("10:07")  # the API's clock, moved by the test

        app = create_app(self.con.cursor, db_path=str(db))
        app.include_router(alerts_router(self.con.cursor, lambda: config, self.now))
        self.job = evaluation_job(self.con.cursor, lambda: config, self.now)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.server = server
        self.thread = threading.Thread(target=server.run, daemon=True)
        self.thread.start()
        while not server.started:
            self.thread.join(0.05)
        write_discovery(db, f"http://127.0.0.1:{port}")
        self.db = db

    def now(self) -> dt.datetime:
        return self.clock.replace(tzinfo=dt.UTC)

    def close(self) -> None:
        discovery_file(self.db).unlink(missing_ok=True)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.con.close()


def test_commands_go_through_serve_when_it_runs(setup: Path, receiver: Receiver) -> None:
    step_engine(setup, at("09:59"), at("10:07"))
    direct = {
        "list": cli_json(run("list", "--json")),
        "backtest": cli_json(run("backtest", "--json")),
    }
    serving = Serving(setup)
    try:
        # The file is held by the serving connection: these answers come over HTTP.
        assert cli_json(run("list", "--json")) == direct["list"]
        assert cli_json(run("backtest", "--json")) == direct["backtest"]
        added = run("silence", "add", "--rule", "carts-ratio", "--for", "30m")
        assert added.exit_code == 0 and added.stdout.startswith("silence 1 added")
        (silence,) = cli_json(run("silence", "list", "--json"))
        assert silence["starts_at"] == "2026-11-20T10:07:00+00:00"  # serve's clock
        assert run("silence", "expire", "1").exit_code == 0
        one_line_error(run("silence", "expire", "1"), "404", "no active silence 1")
        tested = run("test", "carts-ratio")
        assert tested.exit_code == 0 and "serve delivers it" in tested.stdout
        # serve's scheduler job evaluates on its own clock.
        serving.clock = at("10:30")
        serving.job()
        state = cli_json(run("list", "--json"))
        assert state["rules"][0]["groups"][0]["state"] == "resolved"
    finally:
        serving.close()
    with closing(connect(setup, read_only=True)) as con:
        rows = con.execute("SELECT status FROM alert_outbox ORDER BY id").fetchall()
    assert rows == [("firing",), ("test",), ("resolved",)]


def test_api_refusals(setup: Path) -> None:
    serving = Serving(setup)
    try:
        url = f"http://127.0.0.1:{serving.server.config.port}"

        def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
            request = urllib.request.Request(
                url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        assert post("/api/alerts/test/nope", {})[0] == 404
        status, body = post("/api/alerts/silences", {"matchers": {"rule": "x"}})
        assert status == 400 and "exactly one of ends_at and duration" in body["detail"]
        status, body = post(
            "/api/alerts/silences",
            {"matchers": {"rule": "x"}, "starts_at": "2026-11-20T12:00Z", "ends_at": "2026-11-20"},
        )
        assert status == 400 and "after starts_at" in body["detail"]
        status, body = post(
            "/api/alerts/silences",
            {"matchers": {"rule": "x"}, "ends_at": "2026-11-21T00:00:00+01:00"},
        )
        assert status == 201 and body == {"id": 1}
    finally:
        serving.close()
