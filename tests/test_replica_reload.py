"""A serve replica of a ClickHouse store (a real serve process, chDB behind
tests/chdb_http.py) takes a changed config file as the embedded serve does: new rules and a
channel's new address are in force without a restart; a config it cannot take (broken TOML,
another store, [[sources]]) is refused in one line shown in /api/status, and the running
one stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conflictlens.cli import cli
from tests.chdb_http import StoreServer
from tests.helpers import wait_for
from tests.test_serve import free_port
from tests.test_serve_replicas import DB, _get, _healthy, _replica, config_text
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow

SECOND_RULE = """
[[alerts.rules]]
name = "second"
metric = "count"
window = "5m"
above = 3
channels = ["hook"]
"""


def _errors(base: str) -> list[str]:
    return [
        f["config_error"] for f in _get(f"{base}/api/status")["following"] if "config_error" in f
    ]


def _state(base: str) -> tuple[list[str], list[Any]]:
    rules = [r["name"] for r in _get(f"{base}/api/alerts")["rules"]]
    return rules, [c["target"] for c in _get(f"{base}/api/alerts/delivery")["channels"]]


def test_a_clickhouse_replica_reloads_its_config(tmp_path: Path, store: StoreServer) -> None:
    config = tmp_path / "conflictlens.toml"
    first = config_text(store.url, "http://127.0.0.1:9/hook", 1000)
    config.write_text(first)
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    port = free_port()
    replica = _replica("a", config, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(port), 60, "the replica's API")
        assert _state(base) == (["spike"], ["http://127.0.0.1:9/…"])
        # A rule added and the channel moved: in force without a restart.
        changed = config_text(store.url, "http://127.0.0.1:10/hook", 1000) + SECOND_RULE
        config.write_text(changed)
        wanted = (["spike", "second"], ["http://127.0.0.1:10/…"])
        wait_for(lambda: _state(base) == wanted, 30, "the reloaded config")
        # Refused, in one line each; the running config stays.
        config.write_text(changed + "\n[alerts\n")
        wait_for(lambda: bool(_errors(base)), 30, "the refusal of broken TOML")
        other = changed.replace(f'database = "{DB}"', 'database = "elsewhere"')
        config.write_text(other)
        wait_for(lambda: "[store] changed" in " ".join(_errors(base)), 30, "a store refused")
        config.write_text(changed + '\n[[sources]]\npath = "/var/log/nginx/*.log"\n')
        wait_for(lambda: "agent" in " ".join(_errors(base)), 30, "sources refused")
        assert all("\n" not in error for error in _errors(base))
        assert _state(base) == wanted
        # A good file again: taken, the refusal cleared.
        config.write_text(first)
        wait_for(lambda: _state(base)[0] == ["spike"] and not _errors(base), 30, "the first")
    finally:
        replica.terminate()
        replica.wait(30)
