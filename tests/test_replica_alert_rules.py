"""The Alerts page's endpoints on ClickHouse replicas (real serve processes on chDB behind
tests/chdb_http.py): the backtest and a rule's preview run through the ClickHouse engine,
and rules edited through one replica's API are in force on every replica.

The data: a generated spike (sample_logs/generator.py) in the minute before U, a few
minutes ago. The rule fires when its one-minute window holds more than half the planted
conflicts: at U, with the planted count as its peak (the generator's truth); the same
episodes and chart series as DuckDB's backtest and preview over the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conflictlens.analysis.alerts import backtest, parse_rule, preview
from conflictlens.cli import cli
from conflictlens.config import load_config
from conflictlens.store import connect
from tests.chdb_http import StoreServer
from tests.helpers import post_json, wait_for
from tests.test_serve import free_port
from tests.test_serve_replicas import (
    DB,
    _copy,
    _get,
    _healthy,
    _planted,
    _replica,
    config_text,
)
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow


def _send(url: str, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = json.dumps(body or {}).encode()  # as conflictlens.client.send_json sends
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _names(base: str) -> list[str]:
    return [rule["name"] for rule in _get(f"{base}/api/alerts")["rules"]]


def test_backtest_preview_and_rule_edits_through_clickhouse_replicas(
    tmp_path: Path, store: StoreServer
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    until = (now - dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
    truth = _planted(tmp_path, until)
    planted = truth["conflicts"]
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", planted // 2))
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    _copy(truth["db"], store.client(DB))
    alerts = load_config(str(config)).alerts
    span = {
        "since": (until - dt.timedelta(minutes=10)).isoformat() + "Z",
        "until": (until + dt.timedelta(minutes=10)).isoformat() + "Z",
    }
    ports = {"a": free_port(), "b": free_port()}
    replicas = [_replica(name, config, tmp_path, port) for name, port in ports.items()]
    a, b = (f"http://127.0.0.1:{port}" for port in ports.values())
    con = connect(Path(truth["db"]), read_only=True)
    try:
        for port in ports.values():
            wait_for(lambda port=port: _healthy(port), 60, "a replica's API")
        # The backtest: the planted spike, fired at U with its count as the peak.
        episodes = _get(f"{a}/api/alerts/backtest?{urllib.parse.urlencode(span)}")
        assert [(e["rule"], e["start"], e["peak_value"]) for e in episodes] == [
            ("spike", until.replace(tzinfo=dt.UTC).isoformat(), planted)
        ]
        first, last = (dt.datetime.fromisoformat(span[k]) for k in ("since", "until"))
        assert episodes == [e.to_json() for e in backtest(con, alerts, first, last)]
        # The rule editor's preview of a rule not saved: DuckDB's answer over the same rows.
        draft = {"name": "draft", "metric": "count", "window": "1m", "above": 1}
        draft["channels"] = ["hook"]
        status, shown = post_json(f"{b}/api/alerts/preview", {"rule": draft, **span})
        assert status == 200, shown
        expected = preview(
            con, parse_rule(draft, alerts.channels), alerts.evaluation_interval, first, last
        )
        assert shown == json.loads(json.dumps(expected))
        assert max(p["value"] or 0 for p in shown["series"]) == planted
        assert [e["start"] for e in shown["episodes"]] == [until.replace(tzinfo=dt.UTC).isoformat()]

        # A rule saved through replica a is in force on b, and the reverse.
        assert _send(f"{a}/api/alerts/rules/draft", "PUT", {"rule": draft})[0] == 200
        assert _names(b) == ["spike", "draft"]
        quiet = {"name": "spike", "metric": "count", "window": "1m", "above": planted}
        quiet["channels"] = ["hook"]
        status, saved = _send(f"{b}/api/alerts/rules/spike", "PUT", {"rule": quiet})
        assert (status, saved["rules"]) == (200, 2), saved
        replay = urllib.parse.urlencode({**span, "rule": "spike"})
        assert _get(f"{a}/api/alerts/backtest?{replay}") == []  # no minute holds more
        replay = urllib.parse.urlencode({**span, "rule": "draft"})
        assert len(_get(f"{a}/api/alerts/backtest?{replay}")) == 1
        # Deleted on b: gone from a (the file still has it: the store's version wins).
        assert _send(f"{b}/api/alerts/rules/spike", "DELETE")[0] == 200
        assert _names(a) == ["draft"]
        assert _send(f"{a}/api/alerts/rules/spike", "DELETE")[0] == 404
        # A renamed rule: the old name is gone, the new one in force.
        renamed = {**draft, "name": "draft2"}
        assert _send(f"{b}/api/alerts/rules/draft", "PUT", {"rule": renamed})[0] == 200
        assert _names(a) == ["draft2"]
        # A rule naming a channel the config lacks: one line, nothing stored.
        status, refused = _send(
            f"{a}/api/alerts/rules/bad", "PUT", {"rule": {**draft, "channels": ["nope"]}}
        )
        assert status == 400 and "nope" in refused["detail"], refused
        assert _names(b) == ["draft2"]

        # Each replica's delivery rounds.
        wait_for(lambda: _get(f"{a}/api/alerts/delivery")["rounds"] >= 1, 30, "a round")
        delivery = _get(f"{a}/api/alerts/delivery")
        assert (delivery["replica"], [c["name"] for c in delivery["channels"]]) == ("a", ["hook"])
    finally:
        con.close()
        for process in replicas:
            process.terminate()
        for process in replicas:
            process.wait(30)
