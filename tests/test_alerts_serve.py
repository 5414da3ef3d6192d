"""End to end: `conflictlens serve` evaluates a rule on lines written a minute ago, its outbox
delivers the firing to a real webhook on loopback, and the alerts API shows the state."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from tests.helpers import clf_line, clf_ts, write_lines
from tests.test_notify import Receiver
from tests.test_serve import Serve, run

pytestmark = pytest.mark.slow


def test_serve_fires_a_rule_and_the_webhook_gets_it_once(tmp_path: Path) -> None:
    receiver = Receiver().start()
    try:
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        lines = []
        for minute in range(1, 4):  # the three whole minutes before this one
            moment = now - dt.timedelta(minutes=minute) + dt.timedelta(seconds=5)
            lines += [
                clf_line(f"/api/v1/carts/{i}", ts=clf_ts(moment), status=409) for i in range(10)
            ]
            lines += [
                clf_line(f"/api/v1/carts/{i}", ts=clf_ts(moment), status=200) for i in range(10)
            ]
        log = tmp_path / "access.log"
        write_lines(log, lines)
        db = tmp_path / "t.duckdb"
        assert (
            run("ingest", "--db", str(db), "--format", "nginx-combined", str(log)).returncode == 0
        )
        config = tmp_path / "conflictlens.toml"
        config.write_text(
            f"""
[alerts]
evaluation_interval = "1s"
[[alerts.rules]]
name = "cart-conflicts"
match = {{ method = "PUT", route = "/api/v1/carts/*" }}
group_by = ["route"]
metric = "ratio"
window = "5m"
above = 0.2
min_requests = 20
channels = ["ops"]
[alerts.channels.ops]
type = "webhook"
url = "{receiver.url()}"
"""
        )
        server = Serve(db, "--config", str(config))
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not receiver.requests:
                time.sleep(0.2)
            time.sleep(3)  # more evaluations: still one notification
            status, body = server.get("/api/alerts")
        finally:
            server.stop()
    finally:
        receiver.stop()
    assert len(receiver.requests) == 1, [r.body[:200] for r in receiver.requests]
    payload = json.loads(receiver.requests[0].body)
    assert payload["rule"] == "cart-conflicts" and payload["status"] == "firing"
    assert payload["labels"]["route"] == "/api/v1/carts/{id}"
    assert payload["value"] == pytest.approx(0.5)
    state = json.loads(body)
    groups = state["rules"][0]["groups"]
    assert status == 200 and [g["state"] for g in groups] == ["firing"]
