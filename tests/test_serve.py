"""conflictlens serve: one process owns the store; other processes read through its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.ipc
import pytest

from conflictlens.sample_logs.generator import write_log
from tests.helpers import MARKER, conflicts_by_cluster, query, wait_for

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "conflictlens"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serve")
    log = folder / "access.log"
    write_log(log, 5000, style="nginx-extended", seed=11)
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    return db


class Serve:
    def __init__(self, db: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--db", str(db), "--port", str(self.port), "--no-dashboard", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60  # a ceiling for a loaded machine, not a speed check
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"serve exited: {err}")
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("serve did not answer within 60 s")

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        """SIGTERM, and wait for the exit (the timeout is a ceiling, not a speed check)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)  # waits, and closes the pipes

    def following(self) -> list[dict[str, Any]]:
        following: list[dict[str, Any]] = json.loads(self.get("/api/status")[1])["following"]
        return following

    def settled(self, marker: Path | None = None) -> bool:
        """Every followed file stored to its end and every rotated one let go (none draining
        or being read); with ``marker``, that file is followed too."""
        following = self.following()
        return all(s.get("state") == "following" and s["lag_bytes"] == 0 for s in following) and (
            marker is None or str(marker) in {s.get("path") for s in following}
        )

    def wait_settled(self, folder: Path, timeout: float = 120) -> None:
        """Settled, then settled again after a scan that began later: a marker file
        made now shows in the status only once a scan found it, and any compressed sibling
        is looked at by that scan."""
        wait_for(self.settled, timeout, "rotated files let go")
        marker = folder / "zz-marker.log"
        marker.write_bytes(MARKER)
        wait_for(lambda: self.settled(marker), timeout, "a scan after that")


def test_clusters_through_serve_equal_clusters_from_the_file(store):
    direct = run("clusters", "--db", str(store), "--json")
    assert direct.returncode == 0, direct.stderr
    server = Serve(store)
    try:
        # The file is held by serve: opening it ourselves would fail; the CLI asks serve instead.
        through = run("clusters", "--db", str(store), "--json")
        narrowed = run(
            "clusters",
            "--db",
            str(store),
            "--json",
            "--method",
            "PUT",
            "--since",
            "2026-11-19T12:00:00Z",
        )
    finally:
        server.stop()
    assert through.returncode == 0, through.stderr
    assert json.loads(through.stdout) == json.loads(direct.stdout)
    assert json.loads(direct.stdout), "the fixture store has conflicts"
    rows = json.loads(narrowed.stdout)
    assert rows and {r["method"] for r in rows} == {"PUT"}
    assert not store.with_name(store.name + ".serve").exists()


ANALYSIS_COMMANDS = (
    ("hotspots", "--sort", "volume"),
    ("resources",),
    ("storms", "--min-count", "2", "--max-gap", "600"),
    ("incidents", "--threshold", "2"),
    ("clusters", "--over-time", "--bucket", "hour"),
)


def test_every_analysis_through_serve_equals_the_file(store):
    direct = [run(*c, "--db", str(store), "--json") for c in ANALYSIS_COMMANDS]
    assert all(r.returncode == 0 for r in direct), [r.stderr for r in direct]
    server = Serve(store)
    try:
        through = [run(*c, "--db", str(store), "--json") for c in ANALYSIS_COMMANDS]
        status, body = server.get("/api/queries/hotspots?sort=nope")
        assert status == 400 and b"unknown sort" in body
        status, body = server.get("/api/queries/storms?min_count=2&max_gap_s=600.5")
        assert status == 200
    finally:
        server.stop()
    for command, mine, theirs in zip(ANALYSIS_COMMANDS, direct, through, strict=True):
        assert theirs.returncode == 0, theirs.stderr
        assert json.loads(theirs.stdout) == json.loads(mine.stdout), command[0]
    assert any(json.loads(r.stdout) for r in direct[1:3]), "resources/storms found something"


def test_api_endpoints(store):
    server = Serve(store)
    try:
        status, body = server.get("/api/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = server.get("/api/status")
        info = json.loads(body)
        assert status == 200 and info["store"]["events"] > 0 and info["sources"][0]["lines"] == 5000
        assert info["store"]["size_bytes"] >= store.stat().st_size > 0
        status, body = server.get("/api/queries")
        assert status == 200 and "clusters" in {q["name"] for q in json.loads(body)}
        status, body = server.get("/api/queries/clusters?limit=2&method=POST")
        rows = json.loads(body)
        assert status == 200 and len(rows) <= 2 and all(r["method"] == "POST" for r in rows)
        status, body = server.get("/api/queries/clusters?format=arrow&limit=100000")
        assert status == 200
        arrow = pyarrow.ipc.open_stream(body).read_all().to_pylist()  # an Arrow IPC stream
        status, body = server.get("/api/queries/clusters?limit=100000")
        assert status == 200 and arrow == json.loads(body)  # the same rows as the JSON
        truth = json.loads(Path(f"{store.with_name('access.log')}.truth.json").read_text())
        assert conflicts_by_cluster(arrow) == conflicts_by_cluster(truth["conflicts_by_cluster"])
        status, body = server.get("/api/queries/clusters?bogus=1")
        assert status == 400 and b"bogus" in body
        status, body = server.get("/api/queries/clusters?since=yesterdayish")
        assert status == 400
        status, body = server.get("/api/queries/nope")
        assert status == 404
        status, body = server.get("/metrics")
        text = body.decode()
        assert (
            status == 200
            and "conflictlens_lines_total" in text
            and "conflictlens_conflicts_total{route=" in text
        )
        status, body = server.get("/openapi.json")
        assert status == 200 and "/api/queries/{name}" in json.loads(body)["paths"]
    finally:
        server.stop()


def test_a_second_serve_is_refused(store):
    server = Serve(store)
    try:
        second = run("serve", "--db", str(store), "--port", str(free_port()), "--no-dashboard")
    finally:
        server.stop()
    assert (
        second.returncode != 0
        and "already running" in second.stderr
        and "Traceback" not in second.stderr
    )


def test_binding_beyond_loopback_needs_a_token(store):
    env = {k: v for k, v in os.environ.items() if k != "CONFLICTLENS_TOKEN"}
    refused = run(
        "serve", "--db", str(store), "--host", "0.0.0.0", "--port", str(free_port()), env=env
    )  # no --no-dashboard: the token is what is missing, and said first
    assert (
        refused.returncode != 0 and "token" in refused.stderr and "Traceback" not in refused.stderr
    )


@pytest.mark.parametrize("command", ["serve", "dashboard"])
def test_the_dashboard_beyond_loopback_needs_a_password(store, tmp_path, command):
    config = tmp_path / "conflictlens.toml"
    config.write_text('[serve]\ntoken = "s3cret-token-0123456789"\n')
    env = {k: v for k, v in os.environ.items() if k != "CONFLICTLENS_DASHBOARD_PASSWORD_HASH"}
    where = ("--db", str(store), "--config", str(config), "--host", "0.0.0.0")
    refused = run(command, *where, "--port", str(free_port()), env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "without a login" in refused.stderr
    assert "[dashboard] password_hash" in refused.stderr


def test_a_token_is_checked_when_configured(store, tmp_path):
    token = "s3cret-token-0123456789"
    config = tmp_path / "conflictlens.toml"
    config.write_text(f'[serve]\ntoken = "{token}"\n')
    server = Serve(store, "--config", str(config))
    try:
        assert server.get("/api/status")[0] == 401
        assert server.get("/api/status", token="wrong-token-000000000")[0] == 401
        assert server.get("/api/status", token=token)[0] == 200
        assert server.get("/api/health")[0] == 200  # liveness stays open
        with_token = run("clusters", "--db", str(store), "--json", "--config", str(config))
        assert with_token.returncode == 0 and json.loads(with_token.stdout)
    finally:
        server.stop()


def test_serve_follows_the_configured_sources(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    first = logs / "access.log"
    write_log(first, 2000, style="nginx-extended", seed=21)
    config = tmp_path / "conflictlens.toml"
    config.write_text(
        f'db = "t.duckdb"\n[[sources]]\npath = "{logs}/*.log"\nservice = "edge"\n[serve]\nflush_ms = 100\n'
    )
    db = tmp_path / "t.duckdb"
    server = Serve(db, "--config", str(config))
    try:

        def stored() -> int:
            return sum(s["lines"] for s in json.loads(server.get("/api/status")[1])["sources"])

        wait_for(lambda: stored() >= 2000, 60, "the first file")
        # A file that appears later is picked up from byte 0.
        second = logs / "other.log"
        write_log(second, 500, style="nginx-combined", seed=22)
        wait_for(lambda: stored() >= 2500, 60, "the second file")
        assert stored() == 2500
        info = json.loads(server.get("/api/status")[1])
        following = {s["path"]: s for s in info["following"]}
        assert str(first) in following and following[str(first)]["lag_bytes"] == 0
        assert (
            following[str(first)]["lag_seconds"] == 0
            and "lines_per_second" in following[str(first)]
        )
        rows = json.loads(
            run("clusters", "--db", str(db), "--json", "--config", str(config)).stdout
        )
        assert rows and {r["service"] for r in rows} == {"edge"}
    finally:
        server.stop()
    truth = [json.loads(Path(f"{p}.truth.json").read_text()) for p in (first, second)]
    stored = json.loads(run("clusters", "--db", str(db), "--json").stdout)
    assert sum(r["conflicts"] for r in stored) == sum(t["conflicts"] for t in truth)


def test_an_invalid_source_is_refused_in_one_line(tmp_path):
    config = tmp_path / "conflictlens.toml"
    config.write_text('[[sources]]\npath = "/tmp/*.log"\nformat = "nope"\n')
    result = run(
        "serve",
        "--db",
        str(tmp_path / "t.duckdb"),
        "--config",
        str(config),
        "--port",
        str(free_port()),
        "--no-dashboard",
    )
    assert result.returncode != 0 and "nope" in result.stderr and "Traceback" not in result.stderr


def test_a_config_change_reloads_sources_and_a_bad_one_is_refused(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_log(first / "access.log", 300, style="nginx-combined", seed=31)
    write_log(second / "access.log", 200, style="nginx-combined", seed=32)
    config = tmp_path / "conflictlens.toml"
    source = '[[sources]]\npath = "{}/*.log"\n'
    config.write_text("[serve]\nflush_ms = 100\n" + source.format(first))
    server = Serve(tmp_path / "t.duckdb", "--config", str(config))

    def stored() -> int:
        return sum(s["lines"] for s in json.loads(server.get("/api/status")[1])["sources"])

    try:
        wait_for(lambda: stored() == 300, 60, "the first source")
        config.write_text(
            "[serve]\nflush_ms = 100\n" + source.format(first) + source.format(second)
        )
        wait_for(lambda: stored() == 500, 60, "the new source followed after the reload")
        config.write_text("[serve]\nflush_ms = 100\n[[sources]]\npath = 42\n")
        wait_for(lambda: any("config_error" in s for s in server.following()), 60, "the refusal")
        with (first / "access.log").open("a") as handle:
            handle.write(
                '10.0.0.1 - - [19/Nov/2026:10:00:00 +0000] "PUT /api/v1/users/1 HTTP/1.1" 409 1 "-" "ua"\n'
            )
        wait_for(lambda: stored() == 501, 60, "the running config to stay after a bad one")
    finally:
        server.stop()


def test_serve_killed_at_random_moments_stores_every_line_exactly_once(tmp_path):
    """The issue's crash test with serve itself: a writer appends to three files (one rotated
    and compressed now and then) while `conflictlens serve` is killed with SIGKILL at random
    moments (CONFLICTLENS_SERVE_KILLS, default 20) and restarted; afterwards every line is
    stored once, compared by the sequence number in each line's path."""
    from tests.test_tail import MultiAppender, assert_exactly_once, stored_in

    kills = int(os.environ.get("CONFLICTLENS_SERVE_KILLS", "20"))
    rng = __import__("random").Random(5)
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / f"{name}.log" for name in ("a", "b", "c")]
    for f in files:
        f.write_bytes(b"")
    db = tmp_path / "t.duckdb"
    config = tmp_path / "conflictlens.toml"
    config.write_text(f'[[sources]]\npath = "{logs}/*.log*"\n[serve]\nflush_ms = 200\n')
    appender = MultiAppender(files, rate=3000, rotate_every=1.5)
    appender.start()
    try:
        for _ in range(kills):
            server = Serve(db, "--config", str(config))
            time.sleep(rng.uniform(0.1, 1.5))
            server.proc.kill()
            server.proc.communicate(timeout=10)
            assert max(stored_in(db).values(), default=1) == 1, "a line stored twice"
    finally:
        written = appender.finish()
    server = Serve(db, "--config", str(config))

    def stored_lines() -> int:
        return sum(s["lines"] for s in json.loads(server.get("/api/status")[1])["sources"])

    try:
        wait_for(lambda: stored_lines() >= sum(written.values()), 120, "serve to catch up")
        server.wait_settled(logs)
    finally:
        server.stop()
    assert appender.rotations >= 3
    assert_exactly_once(stored_in(db), written)


def test_ingest_while_serve_owns_the_store_says_how(store, tmp_path):
    log = tmp_path / "more.log"
    write_log(log, 100, style="nginx-combined", seed=51)
    server = Serve(store)
    try:
        result = run("ingest", "--db", str(store), str(log))
    finally:
        server.stop()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "serve owns" in result.stderr and "[[sources]]" in result.stderr


def test_a_reload_that_drops_the_token_is_refused_while_serve_is_exposed(tmp_path: Path) -> None:
    """Bound beyond loopback, serve must keep a token: a config without one is refused (the
    running config stays); on loopback the same config is taken."""
    from conflictlens.cli import UserError, _reloaded_followers
    from conflictlens.config import load_config
    from conflictlens.jobs import Live
    from conflictlens.store import connect

    path = tmp_path / "conflictlens.toml"
    path.write_text('[serve]\ntoken = "first-token-0123456789"\n')
    live = Live(load_config(str(path)))
    path.write_text("[alerts]\n")
    with connect(tmp_path / "t.duckdb") as con:
        with pytest.raises(UserError, match=r"serve\.token removed"):
            _reloaded_followers(path, con, live, exposed=True)
        assert live.config.serve.token == "first-token-0123456789"
        _reloaded_followers(path, con, live, exposed=False)
    assert live.config.serve.token is None


def _post(server: Serve, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_annotations_through_serve_need_the_token_and_say_what_is_wrong(store, tmp_path):
    db = tmp_path / "annotated.duckdb"
    db.write_bytes(store.read_bytes())
    token = "s3cret-token-0123456789"
    config = tmp_path / "conflictlens.toml"
    config.write_text(f'[serve]\ntoken = "{token}"\n')
    server = Serve(db, "--config", str(config))
    try:
        body = {"at": "2026-11-19T15:20:00Z", "text": "orders v1.42", "service": "orders"}
        assert _post(server, "/api/annotations", body)[0] == 401
        status, answer = _post(server, "/api/annotations", body, token)
        assert status == 201 and answer["id"] >= 1
        for bad, said in (
            ({"at": "2026-11-19T15:20:00Z"}, "text: Field required"),
            ({"text": 42}, "text: Input should be a valid string"),
            ({"text": "x", "at": "yesterday"}, "at: invalid time"),
            ({"text": "", "at": "now"}, "text: must not be empty"),
        ):
            status, answer = _post(server, "/api/annotations", bad, token)
            assert status == 400 and said in answer["detail"], (bad, answer)
            assert "\n" not in answer["detail"]
        # the CLI goes through serve (which holds the file), with the config's token
        cli = run(
            "annotate", "--db", str(db), "--config", str(config), "--at", "2026-11-19T15:30Z",
            "--text", "flag checkout-v2", "--json",
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        status, listed = server.get("/api/annotations?since=2026-11-19&service=orders", token)
        rows = json.loads(listed)
        assert status == 200 and [(r["text"], r["service"]) for r in rows] == [
            ("orders v1.42", "orders"),
            ("flag checkout-v2", None),
        ]
        assert rows[0]["at"].startswith("2026-11-19T15:20:00")
        status, same = server.get("/api/queries/annotations?service=orders", token)
        assert status == 200 and json.loads(same) == rows
        status, spec = server.get("/openapi.json", token)
        schema = json.loads(spec)["components"]["schemas"]["AnnotationRequest"]
        assert schema["required"] == ["text"] and {"at", "text", "service"} <= set(
            schema["properties"]
        )
    finally:
        server.stop()
    assert query(db, "SELECT count(*) FROM annotations") == [(2,)]


def test_events_sorted_through_serve(store):
    server = Serve(store)
    try:
        status, body = server.get("/api/queries/events?sort=latency_ms&descending=false&limit=50")
        rows = json.loads(body)
        assert status == 200 and len(rows) == 50 and "raw_line" in rows[0]
        latencies = [r["latency_ms"] for r in rows]
        assert latencies == sorted(latencies)
        status, body = server.get("/api/queries/events?sort=latency_ms&limit=50")
        assert [r["latency_ms"] for r in json.loads(body)] == sorted(
            (r["latency_ms"] for r in json.loads(body)), reverse=True
        )
        status, body = server.get("/api/queries/events?sort=ts%20desc")
        assert status == 400 and b"unknown sort" in body
        status, body = server.get("/api/queries/events?descending=maybe")
        assert status == 400 and b"descending must be true or false" in body
    finally:
        server.stop()
