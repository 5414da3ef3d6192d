"""End to end: `conflictlens serve` evaluates a rule on lines written a minute ago, its outbox
delivers the firing to a real webhook on loopback exactly once, and the alerts API shows the
state. serve wakes its delivery thread whenever it writes to the outbox."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from conflictlens import jobs
from conflictlens.api import create_app
from conflictlens.config import load_config
from conflictlens.store import connect
from tests.helpers import clf_line, clf_ts, wait_for, write_lines
from tests.test_notify import Receiver
from tests.test_serve import Serve, free_port, run

pytestmark = pytest.mark.slow

RULE = "cart-conflicts"


def planted_store(folder: Path) -> Path:
    """A store whose last three whole minutes hold PUT /api/v1/carts/* at a ratio of 0.5."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    lines = []
    for minute in range(1, 4):  # the three whole minutes before this one
        moment = now - dt.timedelta(minutes=minute) + dt.timedelta(seconds=5)
        for status in (409, 200):
            lines += [
                clf_line(f"/api/v1/carts/{i}", ts=clf_ts(moment), status=status) for i in range(10)
            ]
    log = folder / "access.log"
    write_lines(log, lines)
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), "--format", "nginx-combined", str(log)).returncode == 0
    return db


def rule_config(folder: Path, receiver: Receiver) -> Path:
    config = folder / "conflictlens.toml"
    config.write_text(
        f"""
[alerts]
evaluation_interval = "1s"
[[alerts.rules]]
name = "{RULE}"
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
    return config


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def instant(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def get_json(server: Serve, path: str) -> Any:
    status, body = server.get(path)
    assert status == 200, body
    return json.loads(body)


def test_serve_fires_a_rule_and_the_webhook_gets_it_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = planted_store(tmp_path)
    server = Serve(db, "--config", str(rule_config(tmp_path, receiver)))
    try:
        wait_for(lambda: receiver.requests, 60, "the firing notification")

        def group() -> dict[str, Any]:
            [found] = get_json(server, "/api/alerts")["rules"][0]["groups"]
            return dict(found)

        # Watch long enough to see a repeat: evaluations (every second) go on until 15 s
        # after the firing, and then a delivery round begins, which would send anything they
        # queued. A rule that notifies again every few seconds is caught.
        def evaluated_for(seconds: float) -> bool:
            state = group()
            watched = instant(state["last_condition_at"]) - instant(state["firing_since"])
            return watched >= dt.timedelta(seconds=seconds)

        wait_for(lambda: evaluated_for(15), 120, "15 s of evaluations after the firing")
        last_evaluation = instant(group()["last_condition_at"])

        def delivered_since(moment: dt.datetime) -> bool:
            delivery = get_json(server, "/api/alerts/delivery")
            return delivery["last_run"] is not None and instant(delivery["last_run"]) > moment

        wait_for(lambda: delivered_since(last_evaluation), 120, "a later delivery round")
        state = get_json(server, "/api/alerts")
    finally:
        server.stop()
    assert len(receiver.requests) == 1, [r.body[:200] for r in receiver.requests]
    payload = json.loads(receiver.requests[0].body)
    assert payload["rule"] == RULE and payload["status"] == "firing"
    assert payload["labels"]["route"] == "/api/v1/carts/{id}"
    assert payload["value"] == pytest.approx(0.5)
    assert [g["state"] for g in state["rules"][0]["groups"]] == ["firing"]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI app under uvicorn on a free loopback port; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 60, "the API server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post(url: str) -> Any:
    request = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_serve_wakes_its_delivery_whenever_it_writes_to_the_outbox(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's own parts (jobs.py), with the delivery tick an hour away: only a wake brings
    a notification within the ceilings, after an evaluation and after the test endpoint."""
    monkeypatch.setattr(jobs, "DELIVER_EVERY", 3600.0)
    db = planted_store(tmp_path)
    live = jobs.Live(load_config(str(rule_config(tmp_path, receiver))))
    with closing(connect(db)) as con, closing(con.cursor()) as job_cursor:
        delivery = jobs.serve_delivery(live, con.cursor)
        [evaluate] = [
            job for job in jobs.serve_jobs(live, con.cursor, delivery) if job.name == "alerts"
        ]
        app = create_app(con.cursor, db_path=str(db))
        for router in jobs.serve_routers(live, con.cursor, delivery):
            app.include_router(router)
        delivery.start()
        try:
            wait_for(lambda: delivery.rounds >= 1, 60, "the round at start (nothing due)")
            evaluate.run(job_cursor)  # fires: one row queued
            wait_for(lambda: len(receiver.requests) == 1, 60, "the firing, woken")
            with serving(app) as url:
                post(f"{url}/api/alerts/test/{RULE}")
                wait_for(lambda: len(receiver.requests) == 2, 60, "the test, woken")
                # (the receiver has the request before the round that sent it has ended)
                wait_for(lambda: delivery.rounds >= 3, 60, "the test's round ended")
                with urllib.request.urlopen(f"{url}/api/alerts/delivery", timeout=30) as answer:
                    status = json.loads(answer.read())
        finally:
            delivery.stop()
    statuses = [json.loads(r.body)["status"] for r in receiver.requests]
    assert statuses == ["firing", "test"]
    assert status["interval_s"] == 3600.0 and status["rounds"] == 3  # start, and two wakes
