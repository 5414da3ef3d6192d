"""The alert and annotation endpoints of `conflictlens serve` on a ClickHouse store (a real
serve process on chDB behind tests/chdb_http.py), written as a stateless replica writes
them: one insert per change, with an id derived from the content that is also the insert's
deduplication token.

- `conflictlens annotate` through serve, and a POST of the same annotation twice (a retry):
  two annotations stored, not three, both seen by the catalog's `annotations` query. (An
  incident naming one needs hours of baseline traffic: tests/test_annotations.py covers it.)
- a silence posted twice (one row), listed active, expired (a newer version of the row), then
  listed inactive; expiring it again is a 404.
- GET /api/alerts answers the configured rule, the silence and the recent notifications (a
  test notification queued through POST /api/alerts/test/{rule}).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from conflictlens.cli import cli
from tests.chdb_http import StoreServer
from tests.helpers import post_json, wait_for
from tests.test_serve import free_port
from tests.test_serve_replicas import (
    DB,
    _get,
    _healthy,
    _replica,
    config_text,
)
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow


def test_annotations_and_silences_through_a_clickhouse_replica(
    tmp_path: Path, store: StoreServer
) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    until = (now - dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
    minute = until - dt.timedelta(minutes=1)
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", 1000))
    result = CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    client = store.client(DB)
    port = free_port()
    replica = _replica("a", config, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(port), 60, "the replica's API")
        # `conflictlens annotate` finds serve through the discovery file beside --db.
        deploy_at = minute - dt.timedelta(minutes=3)
        args = ["annotate", "--config", str(config), "--db", str(tmp_path / "a.duckdb")]
        args += ["--at", deploy_at.isoformat() + "Z", "--text", "orders v1.42", "--json"]
        result = CliRunner().invoke(cli, args, env={**os.environ})
        assert result.exit_code == 0, result.output
        cli_id = json.loads(result.output)["id"]
        # A client retrying its POST: the same annotation twice, stored once.
        earlier = {"at": (minute - dt.timedelta(hours=2)).isoformat() + "Z", "text": "flag"}
        answers = [post_json(f"{base}/api/annotations", earlier) for _ in range(2)]
        assert [status for status, _ in answers] == [201, 201]
        assert answers[0][1]["id"] == answers[1][1]["id"] != cli_id
        since = (minute - dt.timedelta(hours=3)).isoformat()
        span = urllib.parse.urlencode({"since": since, "until": until.isoformat()})
        listed = _get(f"{base}/api/queries/annotations?{span}")
        assert [(a["text"], a["id"]) for a in listed] == [
            ("flag", answers[0][1]["id"]),
            ("orders v1.42", cli_id),
        ]

        # A silence, posted twice (a retry): one id, one row.
        silence = {
            "matchers": {"rule": "spike"},
            "starts_at": now.isoformat() + "Z",
            "duration": "2h",
            "comment": "deploy",
        }
        added = [post_json(f"{base}/api/alerts/silences", silence) for _ in range(2)]
        assert [status for status, _ in added] == [201, 201]
        number = added[0][1]["id"]
        assert added[1][1]["id"] == number
        stored = client.query("SELECT count() FROM alert_silences").result_rows[0][0]
        assert stored == 1
        overview = _get(f"{base}/api/alerts")
        assert [rule["name"] for rule in overview["rules"]] == ["spike"]
        assert [(s["id"], s["active"]) for s in overview["silences"]] == [(number, True)]
        assert overview["notifications"] == []
        # Expired: a newer version, read back as the silence's state.
        assert post_json(f"{base}/api/alerts/silences/{number}/expire") == (
            200,
            {"id": number, "expired": True},
        )
        silences = _get(f"{base}/api/alerts/silences")
        assert [(s["id"], s["active"]) for s in silences] == [(number, False)]
        assert post_json(f"{base}/api/alerts/silences/{number}/expire")[0] == 404
        assert post_json(f"{base}/api/alerts/silences/12345/expire")[0] == 404
        # A test notification goes into the shared outbox; the overview lists it.
        status, queued = post_json(f"{base}/api/alerts/test/spike")
        assert (status, queued["channels"]) == (200, ["hook"]), queued
        recent = _get(f"{base}/api/alerts")["notifications"]
        assert [(n["rule"], n["status"], n["channel"]) for n in recent] == [
            ("spike", "test", "hook")
        ]
        assert post_json(f"{base}/api/alerts/test/nothing")[0] == 404
    finally:
        replica.terminate()
        replica.wait(30)
