"""End to end: `conflictlens serve` with its dashboard follows a log; a planted spike of 409s
fires an alert rule; a real webhook receiver and a real SMTP server each get exactly one
"firing" and one "resolved" notification; the link in them opens the dashboard narrowed to
the alert, in headless Chromium, which shows the alert and its conflicts.

No repeat is proven with a positive signal, not a quiet sleep alone: after several delivery
rounds, a second route's spike fires the same rule for another group, and its notification
must arrive next on both channels (rows leave a channel in the order they were written)."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from conflictlens.jobs import DELIVER_EVERY
from tests.e2e_support import (
    ROOT,
    Receiver,
    ServeProcess,
    SmtpServer,
    append_lines,
    chromium,
    free_port,
    grid_rows,
    hook_and_mail,
    metric_value,
    minute_lines,
    open_page,
    wait_for,
    webhook_receiver,
)

pytestmark = pytest.mark.slow

RULE = "put-conflicts"
CARTS, ORDERS = "/api/v1/carts/{id}", "/api/v1/orders/{id}"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
WATCHED_ROUNDS = 4  # delivery rounds watched for a repeat after the resolve


def config_text(logs: Path, dashboard: str, receiver: Receiver, smtp: SmtpServer) -> str:
    """A PUT rule grouped by route: a route's conflict ratio above 20 % over 10 minutes (at
    least 20 requests) fires; both channels get it."""
    return f"""
[[sources]]
path = "{logs}/*.log"
[serve]
flush_ms = 100
[alerts]
evaluation_interval = "1s"
dashboard_url = "{dashboard}"
[[alerts.rules]]
name = "{RULE}"
match = {{ method = "PUT" }}
group_by = ["route"]
metric = "ratio"
window = "10m"
above = 0.2
min_requests = 20
channels = ["hook", "mail"]
{hook_and_mail(receiver, smtp)}"""


def spike(route: str, now: dt.datetime) -> list[bytes]:
    """10 conflicts and 10 successes a minute on ``route`` over the 3 minutes before ``now``:
    ratio 0.5 on 60 requests."""
    path = route.replace("{id}", "7")
    return minute_lines(path, 409, 10, range(1, 4), now) + minute_lines(
        path, 200, 10, range(1, 4), now
    )


def background(now: dt.datetime) -> list[bytes]:
    """Conflicts the alert's view must leave out: on the rule's route outside its window, and
    on another method in its window."""
    return minute_lines("/api/v1/carts/7", 409, 20, range(30, 31), now) + minute_lines(
        "/api/v1/users/7", 409, 5, range(1, 4), now
    )


# -- what each channel received, as (status, route) -------------------------------------------


def webhook_seen(receiver: Receiver) -> list[tuple[str, str]]:
    return [(p["status"], p["labels"]["route"]) for p in map(_json, receiver.requests)]


def _json(request: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(request.body)
    return payload


def mail_seen(smtp: SmtpServer) -> list[tuple[str, str]]:
    """From each mail's plain text: its title line (``FIRING: rule``) and its Route line."""
    seen = []
    for message in smtp.inbox.messages():
        text = _plain(message)
        title = text.splitlines()[0]
        route = next(line for line in text.splitlines() if line.startswith("Route:"))
        status = title.split(":")[0].lower()
        seen.append((status, route.split()[-1]))
    return seen


def _plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, message
    return str(part.get_content())


def mail_link(message: EmailMessage) -> str:
    line = next(x for x in _plain(message).splitlines() if x.startswith("Dashboard:"))
    return line.split()[-1]


def arrived(receiver: Receiver, smtp: SmtpServer, wanted: tuple[str, str]) -> bool:
    return wanted in webhook_seen(receiver) and wanted in mail_seen(smtp)


# -- the test --------------------------------------------------------------------------------


def test_a_spike_fires_resolves_and_links_to_the_dashboard_once_per_channel(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    log.write_bytes(b"")
    config = tmp_path / "conflictlens.toml"
    dashboard_port = free_port()
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    with webhook_receiver() as receiver, SmtpServer() as smtp:
        config.write_text(config_text(logs, dashboard, receiver, smtp), encoding="utf-8")
        serve = ServeProcess(tmp_path / "t.duckdb", config, dashboard_port=dashboard_port)
        try:
            now = dt.datetime.now(dt.UTC)
            append_lines(log, background(now) + spike(CARTS, now))
            firing = ("firing", CARTS)
            wait_for(lambda: arrived(receiver, smtp, firing), 90, "the firing on both channels")
            payload = _json(receiver.requests[0])
            link = payload["dashboard_url"]
            shown = alert_view(link)
            # 300 more successes in the same minutes: ratio 30/360, under the threshold.
            append_lines(log, minute_lines("/api/v1/carts/7", 200, 100, range(1, 4), now))
            resolved = ("resolved", CARTS)
            wait_for(lambda: arrived(receiver, smtp, resolved), 90, "the resolve on both channels")
            time.sleep(WATCHED_ROUNDS * DELIVER_EVERY)  # rounds in which a repeat would leave
            append_lines(log, spike(ORDERS, now))
            marker = ("firing", ORDERS)
            wait_for(lambda: arrived(receiver, smtp, marker), 90, "the second route's firing")
        finally:
            serve.stop()
        hooks, mails = webhook_seen(receiver), mail_seen(smtp)
        messages = smtp.inbox.messages()
        payloads = [_json(r) for r in receiver.requests]
    assert hooks == [firing, resolved, marker], hooks
    assert mails == [firing, resolved, marker], mails
    assert [mail_link(m) for m in messages[:2]] == [link, payloads[1]["dashboard_url"]]
    assert (payloads[0]["value"], payloads[0]["conflicts"], payloads[0]["requests"]) == (
        0.5,
        30,
        60,
    )
    assert (payloads[1]["conflicts"], payloads[1]["requests"]) == (30, 360)
    assert payloads[1]["value"] == round(30 / 360, 6)  # payloads round to 6 places
    assert shown == {
        "conflicts": "30",
        "active": [
            {
                "state": "firing",
                "rule": RULE,
                "labels": f"alertname={RULE}, route={CARTS}, severity=warning",
            }
        ],
    }
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert (query["method"], query["route"]) == (["PUT"], [CARTS])


def alert_view(link: str) -> dict[str, Any]:
    """The Overview the link opens: its Conflicts figure and its active alerts."""
    with chromium() as driver:
        open_page(driver, link, "Overview", ARTIFACTS / "alert-link.png")
        columns = ("state", "rule", "labels", "firing since")  # headers as the table shows them
        wait_for(lambda: grid_rows(driver, *columns) is not None, 30, "the active alerts")
        rows = grid_rows(driver, *columns) or []
        return {
            "conflicts": metric_value(driver, "Conflicts"),
            "active": [{k: r[k] for k in ("state", "rule", "labels")} for r in rows],
        }
