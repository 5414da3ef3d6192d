"""``type = "alertmanager"`` against the real thing: Debian's prometheus-alertmanager (0.25).

Two Alertmanagers (an HA pair, each on its own) and a conflictlens serve with a rule that
fires on a planted spike: the alert appears in both with the rule's labels and the dashboard
as its generator URL, stays active past the end time of a single push (conflictlens pushes
it again while it fires), is shown suppressed under an Alertmanager silence matching its
labels, and is resolved once the spike leaves the rule's window.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clf_line, clf_ts, query
from tests.needs import needs, program
from tests.test_serve import Serve, free_port, wait_for

ALERTMANAGER = program("prometheus-alertmanager")
pytestmark = [
    pytest.mark.slow,
    needs(ALERTMANAGER, "Debian's prometheus-alertmanager is not installed"),
]

AM_CONFIG = """
route:
  receiver: nowhere
  group_wait: 1h
receivers:
  - name: nowhere
"""
RULE = "orders-conflict-spike"
DASHBOARD = "http://dashboard.example:8501"


class Alertmanager:
    """One real Alertmanager on loopback, without clustering."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        (folder / "am.yml").write_text(AM_CONFIG)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        assert ALERTMANAGER is not None
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={folder / 'am.yml'}",
                f"--storage.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for(self.ready, 60, "Alertmanager to be ready")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "/api/v2" + path,
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.api("/alerts") if a["labels"].get("alertname") == RULE]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def config(folder: Path, log: Path, pair: list[Alertmanager]) -> Path:
    urls = ", ".join(json.dumps(am.url) for am in pair)
    path = folder / "conflictlens.toml"
    path.write_text(
        f"""
[[sources]]
path = "{log}"

[alerts]
evaluation_interval = "1s"
dashboard_url = "{DASHBOARD}"

[alerts.channels.am]
type = "alertmanager"
urls = [{urls}]
resend_interval = "1s"

[[alerts.rules]]
name = "{RULE}"
match = {{ route = "/api/orders/*" }}
group_by = ["method", "route", "error_code"]
metric = "count"
window = "1m"
above = 5
severity = "critical"
labels = {{ team = "orders" }}
annotations = {{ runbook = "https://runbooks.example/orders" }}
channels = ["am"]
"""
    )
    return path


def planted_spike(log: Path) -> None:
    """Twenty conflicts on one route in the minute before this one: the rule's one-minute
    window holds them until the next minute begins, then it resolves."""
    now = dt.datetime.now(dt.UTC)
    if now.second >= 40:  # leave the alert at least 20 s to fire, push again and be silenced
        time.sleep(61 - now.second)
        now = dt.datetime.now(dt.UTC)
    moment = now.replace(second=30, microsecond=0) - dt.timedelta(minutes=1)
    lines = [clf_line(f"/api/orders/{i}", status=409, ts=clf_ts(moment)) for i in range(20)]
    lines.append(clf_line("/api/orders/1", status=200, method="GET", ts=clf_ts(moment)))
    log.write_bytes(b"\n".join(lines) + b"\n")


def test_alerts_reach_a_real_alertmanager_pair_stay_active_honour_silences_and_resolve(
    tmp_path,
):
    pair = [Alertmanager(tmp_path / "am1"), Alertmanager(tmp_path / "am2")]
    log = tmp_path / "access.log"
    db = tmp_path / "store.duckdb"
    server = None
    try:
        planted_spike(log)
        server = Serve(db, "--config", str(config(tmp_path, log, pair)))
        for am in pair:  # an HA pair: each member gets every alert
            wait_for(lambda am=am: bool(am.alerts()), 60, f"the alert in {am.url}")
        first = pair[0].alerts()
        (alert,) = first
        assert alert["labels"] == {
            "alertname": RULE,
            "method": "PUT",
            "route": "/api/orders/{id}",
            "severity": "critical",
            "team": "orders",
        }
        assert alert["generatorURL"].startswith(DASHBOARD + "/?")
        assert "route=%2Fapi%2Forders%2F%7Bid%7D" in alert["generatorURL"]
        assert alert["annotations"]["runbook"] == "https://runbooks.example/orders"
        assert "20 conflicts" in alert["annotations"]["value"]
        assert alert["status"]["state"] == "active"
        pushed_until = dt.datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))

        # A single push ends 4 resend intervals (4 s) after it: past that it is still active,
        # with a later end, because conflictlens pushed it again.
        time.sleep(5)
        (still,) = pair[0].alerts()
        assert still["status"]["state"] == "active"
        assert dt.datetime.fromisoformat(still["endsAt"].replace("Z", "+00:00")) > pushed_until
        assert still["startsAt"] == alert["startsAt"]

        silence = pair[0].api(
            "/silences",
            {
                "matchers": [
                    {"name": "alertname", "value": RULE, "isRegex": False, "isEqual": True},
                    {"name": "team", "value": "orders", "isRegex": False, "isEqual": True},
                ],
                "startsAt": dt.datetime.now(dt.UTC).isoformat(),
                "endsAt": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
                "createdBy": "test",
                "comment": "planned maintenance",
            },
        )
        (silenced,) = pair[0].alerts()
        assert silenced["status"]["state"] == "suppressed"
        assert silenced["status"]["silencedBy"] == [silence["silenceID"]]
        assert pair[1].alerts()[0]["status"]["state"] == "active"  # a silence is per instance

        # The spike leaves the one-minute window when the next minute begins: resolved.
        for am in pair:
            wait_for(lambda am=am: not am.alerts(), 90, f"the alert resolved in {am.url}")
    finally:
        if server is not None:
            server.stop()
        for am in pair:
            am.stop()
    rows = query(db, "SELECT status, delivered_at IS NOT NULL FROM alert_outbox ORDER BY id")
    assert rows == [("firing", True), ("resolved", True)]
