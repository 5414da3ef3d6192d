"""End to end: each section of the config file changed while `conflictlens serve` runs takes
effect without a restart: sources, alert rules, alert channels, reports, and serve's token.

Each change is waited for by its own effect (lines stored, a notification received, a
directory reported); where the change itself cannot be seen before it is used, another
change in the same write marks the reload (a channel added, a reports directory)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import (
    Receiver,
    ServeProcess,
    append_lines,
    minute_lines,
    wait_for,
    webhook_receiver,
)
from tests.test_tail import seq_lines

pytestmark = pytest.mark.slow

RULE = "put-conflicts"
SERVE = '[serve]\nflush_ms = 100\n[alerts]\nevaluation_interval = "1s"\n'
TOKEN = "reloaded-token-0123456789"


def source(folder: Path) -> str:
    return f'[[sources]]\npath = "{folder}/*.log"\n'


def channel(name: str, receiver: Receiver) -> str:
    return f'[alerts.channels.{name}]\ntype = "webhook"\nurl = "{receiver.url()}"\n'


def rule(*channels: str) -> str:
    """A route's PUT conflict ratio above 20 % over 10 minutes, on 20 requests or more."""
    return (
        f'[[alerts.rules]]\nname = "{RULE}"\nmatch = {{ method = "PUT" }}\n'
        'group_by = ["route"]\nmetric = "ratio"\nwindow = "10m"\nabove = 0.2\n'
        f"min_requests = 20\nchannels = {json.dumps(list(channels))}\n"
    )


def reports(folder: Path) -> str:
    return f'[reports]\ndirectory = "{folder}"\n'


def statuses(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["status"] for r in receiver.requests]


def started(tmp_path: Path, text: str) -> tuple[ServeProcess, Path]:
    config = tmp_path / "conflictlens.toml"
    config.write_text(text, encoding="utf-8")
    return ServeProcess(tmp_path / "t.duckdb", config, dashboard=False), config


def test_a_source_added_to_the_config_is_followed(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, tag, count in ((first, "a", 300), (second, "b", 200)):
        folder.mkdir()
        (folder / "access.log").write_bytes(seq_lines(tag, range(count)))
    serve, config = started(tmp_path, SERVE + source(first))
    try:
        wait_for(lambda: serve.stored_lines() == 300, 30, "the first source's 300 lines")
        config.write_text(SERVE + source(first) + source(second), encoding="utf-8")
        wait_for(lambda: serve.stored_lines() == 500, 30, "the added source's 200 lines")
    finally:
        serve.stop()


def test_an_alert_rule_added_to_the_config_fires(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    now = dt.datetime.now(dt.UTC)
    spike = minute_lines("/api/v1/carts/7", 409, 10, range(1, 4), now)
    spike += minute_lines("/api/v1/carts/7", 200, 10, range(1, 4), now)
    append_lines(log, spike)
    with webhook_receiver() as receiver:
        head = SERVE + source(logs) + channel("hook", receiver)
        serve, config = started(tmp_path, head)
        try:
            wait_for(lambda: serve.stored_lines() == len(spike), 30, "the spike stored")
            config.write_text(head + rule("hook"), encoding="utf-8")
            wait_for(lambda: statuses(receiver) == ["firing"], 60, "the new rule's firing")
            listed = serve.get("/api/alerts")[1]
        finally:
            serve.stop()
    assert [r["name"] for r in listed["rules"]] == [RULE]
    assert json.loads(receiver.requests[0].body)["rule"] == RULE


def test_a_changed_channel_url_receives_the_next_notification(tmp_path: Path) -> None:
    """The channel ``hook`` moves to another receiver; a channel added in the same write
    shows that serve read it."""
    with webhook_receiver() as old, webhook_receiver() as new, webhook_receiver() as marker:
        serve, config = started(tmp_path, SERVE + rule("hook") + channel("hook", old))
        try:
            assert serve.post(f"/api/alerts/test/{RULE}", {})[0] == 200
            wait_for(lambda: statuses(old) == ["test"], 30, "the test at the old URL")
            config.write_text(
                SERVE + rule("hook") + channel("hook", new) + channel("marker", marker),
                encoding="utf-8",
            )
            wait_for(lambda: channels(serve) == ["hook", "marker"], 30, "the reload")
            assert serve.post(f"/api/alerts/test/{RULE}", {})[0] == 200
            wait_for(lambda: statuses(new) == ["test"], 30, "the test at the new URL")
        finally:
            serve.stop()
    assert statuses(old) == ["test"] and statuses(marker) == []


def channels(serve: ServeProcess) -> list[str]:
    names: list[str] = serve.get("/api/alerts")[1]["channels"]
    return names


def test_a_changed_reports_directory_gets_the_next_report(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    serve, config = started(tmp_path, reports(first))
    asked = {"period": "2026-11-19", "tz": "UTC", "formats": ["md"]}
    try:
        assert serve.post("/api/reports", asked)[0] == 201
        config.write_text(reports(second), encoding="utf-8")
        wait_for(lambda: directory(serve) == str(second), 30, "the new reports directory")
        status, entry = serve.post("/api/reports", asked)
    finally:
        serve.stop()
    assert status == 201, entry
    names = sorted(f["name"] for f in entry["files"])
    assert names == ["conflictlens-2026-11-19.json", "conflictlens-2026-11-19.md"]
    assert all((second / name).is_file() for name in names)


def directory(serve: ServeProcess) -> str:
    shown: str = serve.get("/api/reports")[1]["directory"]
    return shown


def test_a_token_added_to_the_config_is_required(tmp_path: Path) -> None:
    """The reports directory changed in the same write shows that serve read it."""
    serve, config = started(tmp_path, reports(tmp_path / "first"))
    try:
        assert serve.get("/api/status")[0] == 200
        second = tmp_path / "second"
        config.write_text(f'[serve]\ntoken = "{TOKEN}"\n' + reports(second), encoding="utf-8")
        wait_for(lambda: directory_with(serve, TOKEN) == str(second), 30, "the reload")
        without, with_token = serve.get("/api/status")[0], serve.get("/api/status", TOKEN)[0]
    finally:
        serve.stop()
    assert (without, with_token) == (401, 200)


def directory_with(serve: ServeProcess, token: str) -> Any:
    """The reports directory serve names, asked with ``token`` (ignored while none is set)."""
    return serve.get("/api/reports", token)[1]["directory"]
