"""Alert delivery: channel config, messages, and the outbox against real receivers.

Receivers are real: an HTTP server on loopback (webhook, Alertmanager, Slack), a program run
as the command channel; the outbox is a real DuckDB file. Time is a controlled clock passed to
``deliver_due``: ten minutes of retries take no ten minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conflictlens.notify import (
    NOT_CONFIGURED,
    ChannelConfigError,
    CommandChannel,
    Deliverer,
    EmailChannel,
    HttpChannel,
    backoff,
    deliver_due,
    describe_channel,
    parse_channels,
)
from conflictlens.notify.render import (
    ZERO_TIME,
    Alert,
    measure_text,
    render_alertmanager,
    render_email,
    render_postable_alerts,
    render_slack,
    rfc3339,
)
from conflictlens.notify.send import build_email

# --- helpers shared with test_notify_email.py ------------------------------------------------

T0 = dt.datetime(2026, 11, 20, 10, 0, 0)  # naive UTC, like the store
FINGERPRINT = "9f2c4e1a7b3d5f60a1b2c3d4e5f60718"


def open_outbox(path: Path) -> duckdb.DuckDBPyConnection:
    """The store, whose migrations create ``alert_outbox``."""
    from conflictlens.store import connect

    return connect(path)


def make_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "rule": "doc-version-spike",
        "status": "firing",
        "fingerprint": FINGERPRINT,
        "group_key": "doc-version-spike|edge|PUT|/api/v2/documents/{hex}|VERSION_MISMATCH|version",
        "labels": {
            "alertname": "doc-version-spike",
            "severity": "critical",
            "service": "edge",
            "method": "PUT",
            "route": "/api/v2/documents/{hex}",
            "error_code": "VERSION_MISMATCH",
            "kind": "version",
            "team": "docs",
        },
        "annotations": {"runbook": "https://runbooks.example/conflicts"},
        "severity": "critical",
        "starts_at": "2026-11-20T09:55:00+00:00",
        "ends_at": None,
        "metric": "count",
        "window": "5m",
        "value": 42,
        "threshold": 10,
        "baseline": {"median": 3, "mad": 1.5, "method": "weekly"},
        "requests": 1200,
        "conflicts": 42,
        "top_resources": [
            {"resource": "7f3a9c21", "conflicts": 30},
            {"resource": "0b1e2d3c", "conflicts": 12},
        ],
        "top_clients": [
            {"client": "10.0.0.7", "conflicts": 25},
            {"client": "10.0.0.9", "conflicts": 17},
        ],
        "dashboard_url": "https://dash.example/conflicts?route=%2Fapi%2Fv2%2Fdocuments",
        "summary": "PUT /api/v2/documents/{hex} answered 42 VERSION_MISMATCH conflicts in 5m.",
    }
    payload.update(changes)
    return payload


def add_row(
    con: duckdb.DuckDBPyConnection,
    channel: str,
    *,
    payload: dict[str, Any] | str | None = None,
    at: dt.datetime = T0,
    fingerprint: str | None = None,
) -> int:
    """A row as the alert engine writes it: due at once."""
    data = payload if payload is not None else make_payload()
    text = data if isinstance(data, str) else json.dumps(data)
    fields = data if isinstance(data, dict) else {}
    rows = con.execute(
        """
        INSERT INTO alert_outbox (created_at, channel, rule, fingerprint, status, payload,
                                  next_attempt_at)
        VALUES ($at, $channel, $rule, $fingerprint, $status, $payload, $at)
        RETURNING id
        """,
        {
            "at": at,
            "channel": channel,
            "rule": fields.get("rule", "poison"),
            "fingerprint": fingerprint or fields.get("fingerprint", FINGERPRINT),
            "status": fields.get("status", "firing"),
            "payload": text,
        },
    ).fetchall()
    return int(rows[0][0])


def outbox(con: duckdb.DuckDBPyConnection) -> dict[int, dict[str, Any]]:
    rows = con.execute(
        "SELECT id, channel, attempts, next_attempt_at, delivered_at, last_error "
        "FROM alert_outbox ORDER BY id"
    ).fetchall()
    names = ("channel", "attempts", "next_attempt_at", "delivered_at", "last_error")
    return {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on loopback that records every POST. ``answers`` are used first
    (status, body, extra headers), then ``status``."""

    status: int = 200
    body: bytes = b"ok"
    answers: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, answer, extra = (
                    receiver.answers.pop(0)
                    if receiver.answers
                    else (receiver.status, receiver.body, {})
                )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def keys(self) -> list[str]:
        return [r.headers["idempotency-key"] for r in self.requests]


@pytest.fixture
def receiver() -> Any:
    server = Receiver().start()
    yield server
    if server._server is not None:
        server.stop()


@pytest.fixture
def con(tmp_path: Path) -> Any:
    connection = open_outbox(tmp_path / "outbox.duckdb")
    yield connection
    connection.close()


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def channels(table: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return parse_channels(table, **kwargs)


# --- config ----------------------------------------------------------------------------------

SLACK_SECRET = "T0000SECRET/B0000SECRET/xoxbSecretPathPart"


def test_every_channel_type_parses_with_secrets_from_environment_and_files(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slack.url").write_text(
        f"https://hooks.slack.com/services/{SLACK_SECRET}\n"
    )
    (tmp_path / "secrets" / "smtp").write_text("pa ss\n")
    parsed = parse_channels(
        {
            "hook": {
                "type": "webhook",
                "url": "https://hooks.example/in?token=abc123",
                "headers": {"Authorization": "Bearer sekrit-token"},
                "timeout": 3,
            },
            "am": {"type": "alertmanager", "url_env": "AM_URL"},
            "slack": {"type": "slack", "url_file": "secrets/slack.url"},
            "mail": {
                "type": "email",
                "host": "smtp.example",
                "username": "alerts",
                "password_file": "secrets/smtp",
                "from": "conflictlens <alerts@example.org>",
                "to": ["ops@example.org", "dev@example.org"],
            },
            "script": {"type": "command", "argv": ["/usr/local/bin/page", "--token=zzz"]},
        },
        base_dir=tmp_path,
        environ={"AM_URL": "http://127.0.0.1:9093/hook"},
    )
    hook, am, slack, mail, script = (parsed[n] for n in ("hook", "am", "slack", "mail", "script"))
    assert isinstance(hook, HttpChannel) and hook.timeout == 3.0
    assert hook.url.reveal() == "https://hooks.example/in?token=abc123"
    assert [(k, v.reveal()) for k, v in hook.headers] == [("Authorization", "Bearer sekrit-token")]
    assert isinstance(am, HttpChannel) and am.url.reveal() == "http://127.0.0.1:9093/hook"
    assert am.secret_env == ("AM_URL",)
    assert isinstance(slack, HttpChannel)
    assert slack.url.reveal() == f"https://hooks.slack.com/services/{SLACK_SECRET}"
    assert isinstance(mail, EmailChannel)
    assert (mail.port, mail.security, mail.to) == (
        587,
        "starttls",
        ("ops@example.org", "dev@example.org"),
    )
    assert mail.password is not None and mail.password.reveal() == "pa ss"  # only the newline goes
    assert isinstance(script, CommandChannel) and script.timeout == 30.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"ops": {"type": "pager"}},
            'alerts.channels.ops.type: "pager" is not one of webhook, alertmanager, slack, '
            "email, command",
        ),
        ({"ops": {}}, "alerts.channels.ops.type: missing"),
        ({"ops": {"type": "webhook"}}, "alerts.channels.ops.url: missing"),
        (
            {"ops": {"type": "webhook", "url": "http://a.example/x", "argv": ["x"]}},
            "alerts.channels.ops.argv: unknown key",
        ),
        (
            {"ops": {"type": "slack", "url": "http://a", "url_env": "X"}},
            "alerts.channels.ops.url_env: give only one of url, url_env, url_file",
        ),
        (
            {"ops": {"type": "slack", "url_env": "NOT_SET_ANYWHERE"}},
            "alerts.channels.ops.url_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            {"ops": {"type": "slack", "url_file": "/nonexistent/slack.url"}},
            "alerts.channels.ops.url_file: cannot read /nonexistent/slack.url",
        ),
        (
            {"ops": {"type": "webhook", "url": "ftp://files.example/secret-path"}},
            "alerts.channels.ops.url: expected an http:// or https:// URL with a host",
        ),
        (
            {"ops": {"type": "webhook", "url": "http://h.example/", "timeout": 0}},
            "alerts.channels.ops.timeout: expected seconds above 0",
        ),
        (
            {"ops": {"type": "webhook", "url": "http://h.example/", "headers": {"X-A": "a\nb"}}},
            "alerts.channels.ops.headers.X-A: expected a one-line string",
        ),
        (
            {"ops": {"type": "webhook", "url": "http://h.example/", "headers": {"Host": "x"}}},
            "alerts.channels.ops.headers.Host: set by conflictlens itself",
        ),
        (
            {
                "m": {
                    "type": "email",
                    "host": "h",
                    "from": "a@b.c",
                    "to": ["d@e.f"],
                    "password": "p",
                }
            },
            "alerts.channels.m.password: not read from the config: use password_env or password_file",
        ),
        (
            {
                "m": {
                    "type": "email",
                    "host": "h",
                    "from": "a@b.c",
                    "to": ["d@e.f"],
                    "username": "u",
                }
            },
            "alerts.channels.m.password: missing (give one of password_env, password_file)",
        ),
        (
            {
                "m": {
                    "type": "email",
                    "host": "h",
                    "security": "none",
                    "from": "a@b.c",
                    "to": ["d@e.f"],
                    "username": "u",
                    "password_env": "HOME",
                }
            },
            'alerts.channels.m.username: a login needs security = "starttls" or "tls"',
        ),
        (
            {
                "m": {
                    "type": "email",
                    "host": "h",
                    "security": "ssl",
                    "from": "a@b.c",
                    "to": ["d@e.f"],
                }
            },
            'alerts.channels.m.security: "ssl" is not one of starttls, tls, none',
        ),
        (
            {"m": {"type": "email", "host": "h", "from": "a@b.c", "to": []}},
            "alerts.channels.m.to: expected a list of e-mail addresses",
        ),
        (
            {"m": {"type": "email", "host": "h", "from": "a@b.c", "to": ["nobody"]}},
            'alerts.channels.m.to[1]: "nobody" is not an e-mail address',
        ),
        ({"c": {"type": "command", "argv": []}}, "alerts.channels.c.argv: expected a non-empty"),
        ({"c": {"type": "command", "argv": "page-me"}}, "alerts.channels.c.argv: expected"),
        ({"my team": {"type": "command", "argv": ["x"]}}, 'alerts.channels."my team": a channel'),
    ],
)
def test_a_bad_channel_is_refused_naming_the_exact_key(table, message):
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(table, environ={"HOME": "/root"})
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_an_invalid_secret_url_is_refused_without_repeating_it(tmp_path):
    (tmp_path / "u").write_text("hooks.slack.com/services/" + SLACK_SECRET)
    with pytest.raises(ValueError) as caught:
        parse_channels({"s": {"type": "slack", "url_file": str(tmp_path / "u")}})
    assert SLACK_SECRET not in str(caught.value)


def test_repr_str_and_description_of_channels_hold_no_secret():
    parsed = parse_channels(
        {
            "slack": {
                "type": "slack",
                "url": f"https://user:pw123456@hooks.slack.com/services/{SLACK_SECRET}?x=qs-secret",
                "headers": {"Authorization": "Bearer header-secret"},
            },
            "mail": {
                "type": "email",
                "host": "smtp.example",
                "username": "alerts",
                "password_env": "SMTP_PASSWORD",
                "from": "alerts@example.org",
                "to": ["ops@example.org"],
            },
            "script": {"type": "command", "argv": ["page", "--token=argv-secret"]},
        },
        environ={"SMTP_PASSWORD": "smtp-password-secret"},
    )
    shown = " ".join(
        text
        for channel in parsed.values()
        for text in (
            repr(channel),
            str(channel),
            f"{channel}",
            json.dumps(describe_channel(channel)),
        )
    )
    for secret in (
        SLACK_SECRET,
        "pw123456",
        "qs-secret",
        "header-secret",
        "smtp-password-secret",
        "argv-secret",
        "services",
    ):
        assert secret not in shown
    assert "https://hooks.slack.com/…" in shown  # enough to know which channel it is
    assert describe_channel(parsed["slack"])["headers"] == ["Authorization"]


# --- messages --------------------------------------------------------------------------------

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def assert_alertmanager_v4(body: dict[str, Any]) -> None:
    """The structure Alertmanager's webhook_config sends, key for key and type for type."""
    assert set(body) == {
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    }
    assert body["version"] == "4"
    assert body["status"] in ("firing", "resolved")
    assert isinstance(body["receiver"], str) and body["receiver"]
    assert isinstance(body["externalURL"], str)
    assert isinstance(body["truncatedAlerts"], int)
    assert isinstance(body["groupKey"], str)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in body[key].items())
    assert body["alerts"]
    for alert in body["alerts"]:
        assert set(alert) == {
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        }
        assert alert["status"] in ("firing", "resolved")
        assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) for k in alert["labels"])
        assert all(
            isinstance(v, str) for v in [*alert["labels"].values(), *alert["annotations"].values()]
        )
        assert "alertname" in alert["labels"]
        assert RFC3339.match(alert["startsAt"]) and RFC3339.match(alert["endsAt"])
        if alert["status"] == "firing":
            assert alert["endsAt"] == ZERO_TIME
        assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
        assert isinstance(alert["generatorURL"], str)
    assert body["commonLabels"].items() >= body["groupLabels"].items()
    # Prometheus' LabelSet.String() of the group labels, behind the root route's key.
    expected_key = (
        "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(body["groupLabels"].items())) + "}"
    )
    assert body["groupKey"] == expected_key


def test_alertmanager_payload_is_version_4_for_firing_and_resolved():
    firing = render_alertmanager(Alert(make_payload()), "am")
    assert_alertmanager_v4(firing)
    alert = firing["alerts"][0]
    assert alert["startsAt"] == "2026-11-20T09:55:00Z"
    assert alert["labels"]["alertname"] == "doc-version-spike"
    assert alert["labels"]["team"] == "docs"
    assert alert["fingerprint"] == FINGERPRINT[:16]
    assert alert["generatorURL"].startswith("https://dash.example/conflicts")
    assert firing["externalURL"] == "https://dash.example"
    assert firing["groupLabels"] == {
        "alertname": "doc-version-spike",
        "service": "edge",
        "method": "PUT",
        "route": "/api/v2/documents/{hex}",
        "error_code": "VERSION_MISMATCH",
        "kind": "version",
    }
    resolved = render_alertmanager(
        Alert(make_payload(status="resolved", ends_at="2026-11-20T12:30:00.250+01:00")), "am"
    )
    assert_alertmanager_v4(resolved)
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-11-20T11:30:00.25Z"


def message_texts(payload: dict[str, Any]) -> dict[str, str]:
    """Each human-readable rendering flattened to text, for the "says everything" checks."""
    alert = Alert(payload)
    email = render_email(alert)
    am = render_alertmanager(alert, "am")
    return {
        "slack": json.dumps(render_slack(alert), ensure_ascii=False),
        "email-text": email.subject + "\n" + email.text,
        "email-html": email.html,
        "alertmanager": json.dumps(am, ensure_ascii=False),
    }


@pytest.mark.parametrize("kind", ["slack", "email-text", "email-html", "alertmanager"])
def test_every_message_says_what_someone_on_call_needs(kind):
    text = message_texts(make_payload())[kind]
    for needed in (
        "doc-version-spike",  # the rule
        "/api/v2/documents/{hex}",  # the route
        "VERSION_MISMATCH",  # the error code
        "version",  # its kind
        "42 conflicts in 5m",  # the value
        "threshold 10",  # against the threshold
        "baseline median 3",  # and the baseline
        "7f3a9c21",  # top resource
        "10.0.0.7",  # top client
        "2026-11-20 09:55:00 UTC",  # since when
        "https://dash.example/conflicts",  # the link
    ):
        assert needed in text, f"{kind} lacks {needed!r}"


def test_ratio_values_read_as_percentages_and_rates_per_minute():
    alert = Alert(make_payload(metric="ratio", value=0.125, threshold=0.05, baseline=None))
    assert "12.5 % in 5m against threshold 5 %" in render_email(alert).text
    alert = Alert(make_payload(metric="rate", value=8.4, threshold=2, baseline=None))
    assert "8.4 conflicts/min in 5m against threshold 2 conflicts/min" in render_email(alert).text


def test_a_test_notification_says_so_and_fires_in_alertmanager_terms():
    alert = Alert(make_payload(status="test"))
    assert "This is a test notification" in json.dumps(render_slack(alert))
    assert "This is a test notification" in render_email(alert).text
    assert render_email(alert).subject.startswith("[conflictlens] TEST: doc-version-spike")
    body = render_alertmanager(alert, "am")
    assert_alertmanager_v4(body)
    assert body["status"] == "firing"  # Alertmanager knows no other state


def test_slack_message_is_escaped_and_within_slack_limits():
    payload = make_payload(summary="a <b> & c <!channel>", dashboard_url="javascript:alert(1)")
    message = render_slack(Alert(payload))
    assert set(message) == {"text", "blocks"}
    text = json.dumps(message)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "javascript:" not in text  # not a link
    header = message["blocks"][0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        assert len(block.get("fields", [])) <= 10


def test_email_headers_cannot_be_injected_and_html_is_escaped():
    labels = make_payload()["labels"] | {
        "route": "/x\r\nBcc: victim@example.org",
        "kind": "<script>",
    }
    alert = Alert(make_payload(labels=labels, rule="rule\nX-Evil: 1"))
    content = render_email(alert)
    assert "\n" not in content.subject and "\r" not in content.subject
    assert "<script>" not in content.html and "&lt;script&gt;" in content.html
    channel = parse_channels(
        {"m": {"type": "email", "host": "h", "from": "a@example.org", "to": ["b@example.org"]}}
    )["m"]
    assert isinstance(channel, EmailChannel)
    message = build_email(channel, content, "1-abc")
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Message-ID"] == "<1-abc@example.org>"


# --- transports and the outbox ---------------------------------------------------------------


def test_each_http_channel_posts_its_message_with_the_idempotency_key(con, receiver):
    table = {
        "hook": {"type": "webhook", "url": receiver.url("/hook"), "headers": {"X-Team": "docs"}},
        "am": {"type": "webhook", "format": "alertmanager-v4", "url": receiver.url("/am")},
        "api": {"type": "alertmanager", "url": receiver.url("/prefix/")},
        "slack": {"type": "slack", "url": receiver.url("/services/T/B/x")},
    }
    stored = {name: json.dumps(make_payload(summary=f"for {name}")) for name in table}
    ids = {name: add_row(con, name, payload=text) for name, text in stored.items()}

    summary = deliver_due(con, parse_channels(table), T0)

    assert (summary.delivered, summary.failed) == (4, 0)
    got = {r.path: r for r in receiver.requests}
    assert set(got) == {"/hook", "/am", "/prefix/api/v2/alerts", "/services/T/B/x"}
    paths = {"hook": "/hook", "am": "/am", "api": "/prefix/api/v2/alerts"}
    for name, path in (*paths.items(), ("slack", "/services/T/B/x")):
        request = got[path]
        assert request.headers["idempotency-key"] == f"{ids[name]}-{FINGERPRINT}"
        assert request.headers["content-type"] == "application/json"
    assert got["/hook"].body == stored["hook"].encode()  # the payload itself, byte for byte
    assert got["/hook"].headers["x-team"] == "docs"
    assert_alertmanager_v4(got["/am"].json())
    assert got["/am"].json()["receiver"] == "am"
    (pushed,) = got["/prefix/api/v2/alerts"].json()  # PostableAlerts: a list, one alert here
    assert pushed["labels"]["alertname"] == make_payload()["rule"]
    assert pushed["annotations"]["summary"] == "for api"
    slack = got["/services/T/B/x"].json()
    assert "doc-version-spike" in slack["text"] and slack["blocks"][0]["type"] == "header"
    assert all(row["delivered_at"] == T0 and row["attempts"] == 1 for row in outbox(con).values())


def test_command_channel_gets_the_payload_on_stdin_and_alert_variables(con, tmp_path, monkeypatch):
    out = tmp_path / "received"
    script = tmp_path / "receive.py"
    script.write_text(
        "import json, os, sys\n"
        "data = sys.stdin.read()\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('CONFLICTLENS_ALERT_')}\n"
        "env['leaked'] = [k for k in ('SLACK_URL', 'CONFLICTLENS_TOKEN') if k in os.environ]\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(json.dumps({'stdin': data, 'env': env}) + '\\n')\n"
    )
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/" + SLACK_SECRET)
    monkeypatch.setenv("CONFLICTLENS_TOKEN", "serve-token-0123456789")
    parsed = parse_channels(
        {
            "run": {"type": "command", "argv": [sys.executable, str(script), str(out)]},
            "slack": {"type": "slack", "url_env": "SLACK_URL"},
        }
    )
    stored = json.dumps(make_payload())
    row = add_row(con, "run", payload=stored)

    summary = deliver_due(con, {"run": parsed["run"], "slack": parsed["slack"]}, T0)

    assert summary.delivered == 1
    (line,) = out.read_text().splitlines()
    got = json.loads(line)
    assert got["stdin"] == stored
    env = got["env"]
    assert env["CONFLICTLENS_ALERT_RULE"] == "doc-version-spike"
    assert env["CONFLICTLENS_ALERT_ROUTE"] == "/api/v2/documents/{hex}"
    assert env["CONFLICTLENS_ALERT_ERROR_CODE"] == "VERSION_MISMATCH"
    assert env["CONFLICTLENS_ALERT_IDEMPOTENCY_KEY"] == f"{row}-{FINGERPRINT}"
    assert env["CONFLICTLENS_ALERT_THRESHOLD"] == "10"
    assert env["leaked"] == []  # other channels' secret variables and serve's token stay out


def test_command_failures_are_recorded_with_a_reason(con, tmp_path):
    failing = tmp_path / "fail.py"
    failing.write_text("import sys\nsys.stderr.write('upstream pager said no\\n')\nsys.exit(3)\n")
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(60)\n")
    parsed = parse_channels(
        {
            "fail": {"type": "command", "argv": [sys.executable, str(failing)]},
            "slow": {"type": "command", "argv": [sys.executable, str(slow)], "timeout": 0.5},
            "missing": {"type": "command", "argv": [str(tmp_path / "no-such-program")]},
        }
    )
    ids = {name: add_row(con, name) for name in parsed}

    summary = deliver_due(con, parsed, T0)

    assert summary.failed == 3
    rows = outbox(con)
    assert rows[ids["fail"]]["last_error"] == (
        f"command {sys.executable} exited with status 3: upstream pager said no"
    )
    assert rows[ids["slow"]]["last_error"] == (
        f"command {sys.executable} did not finish within 0.5 s (killed)"
    )
    assert rows[ids["missing"]]["last_error"].startswith("command not found: ")


def test_failed_row_waits_its_backoff_then_is_retried(con, receiver):
    receiver.answers = [(503, b"busy", {})]
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    row = add_row(con, "hook")
    assert row == 1  # the wait below is this row's: its jitter comes from "1-<fingerprint>"

    deliver_due(con, parsed, T0)
    state = outbox(con)[row]
    # The first failure waits 5 s jittered into [2.5 s, 5 s): for this row, as a number.
    wait = dt.timedelta(seconds=4.168675)
    assert state["attempts"] == 1 and state["delivered_at"] is None
    assert (
        state["last_error"]
        == f"POST http://127.0.0.1:{receiver.port}/…: HTTP 503 Service Unavailable: busy"
    )
    assert state["next_attempt_at"] == T0 + wait

    early = T0 + wait - dt.timedelta(microseconds=1)
    assert deliver_due(con, parsed, early).delivered == 0  # not due yet: not tried
    assert len(receiver.requests) == 1
    assert deliver_due(con, parsed, T0 + wait).delivered == 1
    assert outbox(con)[row]["attempts"] == 2 and outbox(con)[row]["last_error"] is None
    assert receiver.keys() == [f"{row}-{FINGERPRINT}"] * 2  # the same key on every attempt


def test_backoff_doubles_from_5_seconds_and_stays_under_10_minutes_with_stable_jitter():
    for attempts in range(12):
        base = min(600.0, 5.0 * 2**attempts)
        waits = {backoff(attempts, f"{n}-fp").total_seconds() for n in range(50)}
        assert all(base / 2 <= w < base for w in waits)
        assert len(waits) > 40  # rows that failed together do not retry together
    # The waits of one row after each failure, as numbers (5 s doubling, each jittered into
    # [b/2, b), 10 minutes at most): the same row always waits the same.
    attempts = (0, 1, 2, 3, 7, 8, 40)
    expected = (2.793709, 7.605959, 16.124932, 34.788313, 462.624738, 470.43903, 509.145441)
    assert [backoff(n, "7-fp") for n in attempts] == [dt.timedelta(seconds=s) for s in expected]


def test_receiver_down_then_back_every_row_arrives_exactly_once_across_a_restart(
    tmp_path, receiver, caplog
):
    caplog.set_level(logging.INFO, logger="conflictlens.notify")
    path = tmp_path / "outbox.duckdb"
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    clock = Clock()
    connection = open_outbox(path)
    ids = [
        add_row(
            connection, "hook", fingerprint=f"fp{n}", payload=make_payload(fingerprint=f"fp{n}")
        )
        for n in range(6)
    ]
    receiver.stop()  # the receiver goes down
    deliverer = Deliverer(connection.cursor, parsed, clock=clock)

    for _ in range(60):  # five simulated minutes, a round every 5 s
        summary = deliverer.run_once()
        assert summary.delivered == 0 and summary.failed <= 1  # stops at the first failure
        clock.advance(5)
    # Restart: the process goes away and comes back; the rows are all still there.
    connection.close()
    connection = open_outbox(path)
    deliverer = Deliverer(connection.cursor, parsed, clock=clock)
    for _ in range(60):
        deliverer.run_once()
        clock.advance(5)

    rows = outbox(connection)
    assert all(r["delivered_at"] is None for r in rows.values())
    assert all(r["last_error"].endswith("Connection refused") for r in rows.values())
    # Retried, but with backoff: in 10 minutes a row is tried at most 9 times, not 120.
    assert all(2 <= r["attempts"] <= 9 for r in rows.values())
    assert all(r["next_attempt_at"] <= clock.now + dt.timedelta(minutes=10) for r in rows.values())

    receiver.start()  # back, on the same port
    for _ in range(150):
        deliverer.run_once()
        if all(r["delivered_at"] for r in outbox(connection).values()):
            break
        clock.advance(5)
    rows = outbox(connection)
    connection.close()
    assert all(r["delivered_at"] is not None for r in rows.values())
    assert sorted(receiver.keys()) == sorted(f"{i}-fp{n}" for n, i in enumerate(ids))
    assert len(receiver.requests) == len(ids)  # exactly once each
    assert "127.0.0.1" in caplog.text  # failures were logged, with the target's origin


def test_a_failing_or_hanging_channel_does_not_hold_back_a_working_one(con, receiver):
    hanging = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    hanging_port = hanging.getsockname()[1]
    try:
        parsed = parse_channels(
            {
                "down": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"},
                "hangs": {
                    "type": "slack",
                    "url": f"http://127.0.0.1:{hanging_port}/services/x",
                    "timeout": 0.5,
                },
                "works": {"type": "webhook", "url": receiver.url()},
            }
        )
        for n in range(5):
            for name in parsed:
                add_row(con, name, fingerprint=f"{name}{n}")
        summary = deliver_due(con, parsed, T0)
    finally:
        hanging.close()

    assert summary.channels["works"].delivered == 5
    for name in ("down", "hangs"):
        result = summary.channels[name]
        assert (result.delivered, result.failed, result.deferred) == (0, 1, 4)
    assert summary.channels["hangs"].error == (
        f"POST http://127.0.0.1:{hanging_port}/…: no answer within 0.5 s"
    )
    attempts = {
        name: [r["attempts"] for r in outbox(con).values() if r["channel"] == name]
        for name in parsed
    }
    assert attempts == {"down": [1, 0, 0, 0, 0], "hangs": [1, 0, 0, 0, 0], "works": [1] * 5}


def test_rows_of_an_unconfigured_channel_wait_and_leave_once_it_is_configured(con, receiver):
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    waiting = add_row(con, "gone")
    add_row(con, "hook")

    summary = deliver_due(con, parsed, T0)

    assert (summary.delivered, summary.unconfigured) == (1, 1)
    row = outbox(con)[waiting]
    assert row["last_error"] == NOT_CONFIGURED == "channel not configured"
    assert (row["attempts"], row["next_attempt_at"], row["delivered_at"]) == (0, T0, None)
    later = parse_channels(
        {
            "hook": {"type": "webhook", "url": receiver.url()},
            "gone": {"type": "webhook", "url": receiver.url("/gone")},
        }
    )
    assert deliver_due(con, later, T0 + dt.timedelta(seconds=1)).delivered == 1
    assert outbox(con)[waiting]["last_error"] is None


def test_a_resolved_never_overtakes_its_firing(con, receiver):
    receiver.answers = [(500, b"oops", {})]
    am = {"type": "webhook", "format": "alertmanager-v4", "url": receiver.url()}
    parsed = parse_channels({"am": am})
    firing = add_row(con, "am")
    resolved = add_row(
        con, "am", payload=make_payload(status="resolved", ends_at="2026-11-20T10:00:00+00:00")
    )

    first = deliver_due(con, parsed, T0)
    assert (first.failed, first.deferred) == (1, 1)
    # The resolved row is due, its firing is not yet: it waits for it.
    assert deliver_due(con, parsed, T0 + dt.timedelta(seconds=1)).delivered == 0
    third = deliver_due(con, parsed, T0 + dt.timedelta(seconds=5))
    assert third.delivered == 2
    sent = [(r.headers["idempotency-key"], r.json()["status"]) for r in receiver.requests]
    assert sent == [
        (f"{firing}-{FINGERPRINT}", "firing"),
        (f"{firing}-{FINGERPRINT}", "firing"),
        (f"{resolved}-{FINGERPRINT}", "resolved"),
    ]


def test_a_payload_that_cannot_be_rendered_does_not_stop_its_channel(con, receiver):
    parsed = parse_channels({"slack": {"type": "slack", "url": receiver.url()}})
    poison = add_row(con, "slack", payload="{not json", fingerprint="poison")
    fine = add_row(con, "slack")

    summary = deliver_due(con, parsed, T0)

    assert (summary.delivered, summary.failed) == (1, 1)
    rows = outbox(con)
    assert rows[poison]["last_error"].startswith("cannot render: payload is not valid JSON")
    assert rows[poison]["next_attempt_at"] > T0
    assert rows[fine]["delivered_at"] == T0


def test_a_resend_after_a_crash_carries_the_same_idempotency_key(con, receiver):
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    row = add_row(con, "hook")
    deliver_due(con, parsed, T0)
    # The process died between sending and marking: the row is undelivered in the store.
    con.execute("UPDATE alert_outbox SET delivered_at = NULL WHERE id = ?", [row])
    deliver_due(con, parsed, T0 + dt.timedelta(seconds=1))
    assert receiver.keys() == [f"{row}-{FINGERPRINT}"] * 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_a_redirect_is_a_failure_not_a_delivery(con, receiver):
    receiver.answers = [(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"})]
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    row = add_row(con, "hook")
    assert deliver_due(con, parsed, T0).failed == 1
    assert "HTTP 302 Found (redirects are not followed)" in outbox(con)[row]["last_error"]


def test_secrets_stay_out_of_last_error_logs_and_status(con, receiver, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    secret_path = f"/services/{SLACK_SECRET}"
    # A receiver that echoes the request path in its error body, as some do.
    receiver.answers = [(404, f"no_service for {secret_path}".encode(), {})]
    monkeypatch.setenv("SLACK_URL", receiver.url(secret_path))
    monkeypatch.setenv("DOWN_URL", f"http://127.0.0.1:{free_port()}{secret_path}?token=qs-secret")
    parsed = parse_channels(
        {
            "slack": {
                "type": "slack",
                "url_env": "SLACK_URL",
                "headers": {"Authorization": "Bearer header-secret"},
            },
            "down": {"type": "slack", "url_env": "DOWN_URL"},
        }
    )
    add_row(con, "slack")
    add_row(con, "down")
    deliverer = Deliverer(con.cursor, parsed, clock=Clock())

    summary = deliverer.run_once()

    assert summary.failed == 2
    assert receiver.requests[0].path == secret_path  # the secret went where it belongs
    assert receiver.requests[0].headers["authorization"] == "Bearer header-secret"
    errors = [r["last_error"] for r in outbox(con).values()]
    assert (
        errors[0]
        == f"POST http://127.0.0.1:{receiver.port}/…: HTTP 404 Not Found: no_service for ***"
    )
    assert errors[1].endswith("/…: Connection refused")
    shown = " ".join(
        [*errors, caplog.text, json.dumps(deliverer.status()), repr(parsed), repr(summary)]
    )
    for secret in (SLACK_SECRET, "header-secret", "qs-secret", "services"):
        assert secret not in shown


def test_deliverer_thread_delivers_when_woken_and_stops(tmp_path, receiver):
    path = tmp_path / "outbox.duckdb"
    connection = open_outbox(path)
    parsed = parse_channels({"hook": {"type": "webhook", "url": receiver.url()}})
    deliverer = Deliverer(connection.cursor, lambda: parsed, interval=60)
    deliverer.start()
    try:
        row = add_row(connection, "hook", at=dt.datetime(2000, 1, 1))
        deliverer.wake()
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        deliverer.stop()
    status = deliverer.status()
    connection.close()
    assert receiver.keys() == [f"{row}-{FINGERPRINT}"]
    assert status["running"] is False and status["last_error"] is None
    assert status["channels"] == [describe_channel(parsed["hook"])]


def test_a_round_that_fails_is_reported_and_the_thread_goes_on(tmp_path):
    connection = duckdb.connect(str(tmp_path / "no-outbox.duckdb"))  # no alert_outbox table
    deliverer = Deliverer(connection.cursor, {}, interval=60)
    deliverer.start()
    deadline = time.monotonic() + 20
    while deliverer.last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = deliverer.status()["running"]
    deliverer.stop()
    connection.close()
    assert alive
    assert deliverer.last_error is not None and "alert_outbox" in deliverer.last_error


# --- Alertmanager's API ----------------------------------------------------------------------


def test_alertmanager_channels_take_a_pair_of_urls_and_a_resend_interval():
    parsed = parse_channels(
        {
            "pair": {
                "type": "alertmanager",
                "urls": ["http://am1:9093", "http://am2:9093/prefix"],
                "resend_interval": "30s",
            },
            "one": {"type": "alertmanager", "url": "http://am:9093"},
            "v4": {"type": "webhook", "format": "alertmanager-v4", "url": "http://bridge/in"},
        }
    )
    pair, one, v4 = parsed["pair"], parsed["one"], parsed["v4"]
    assert isinstance(pair, HttpChannel) and isinstance(one, HttpChannel)
    assert [u.reveal() for u in pair.urls] == ["http://am1:9093", "http://am2:9093/prefix"]
    assert (pair.resend_seconds, one.resend_seconds) == (30.0, 60.0)
    assert isinstance(v4, HttpChannel) and v4.format == "alertmanager-v4"
    refused = {
        "alerts.channels.x.url: give url or urls, not both": {
            "type": "alertmanager",
            "url": "http://a",
            "urls": ["http://b"],
        },
        "alerts.channels.x.urls: the same Alertmanager is listed twice": {
            "type": "alertmanager",
            "urls": ["http://a:9093", "http://a:9093/"],
        },
        "alerts.channels.x.urls[2]: expected an http:// or https:// URL": {
            "type": "alertmanager",
            "urls": ["http://a", "ftp://b"],
        },
        "alerts.channels.x.resend_interval: expected a duration from 1s to 1h": {
            "type": "alertmanager",
            "url": "http://a",
            "resend_interval": "2h",
        },
        'alerts.channels.x.format: "v5" is not one of conflictlens, alertmanager-v4': {
            "type": "webhook",
            "url": "http://a",
            "format": "v5",
        },
        "alerts.channels.x.format: unknown key": {
            "type": "alertmanager",
            "url": "http://a",
            "format": "alertmanager-v4",
        },
    }
    for message, table in refused.items():
        with pytest.raises(ChannelConfigError) as caught:
            parse_channels({"x": table})
        assert str(caught.value).startswith(message)


def test_an_alert_pushed_to_alertmanager_ends_by_itself_unless_pushed_again():
    now = dt.datetime(2026, 11, 20, 10, 5, tzinfo=dt.UTC)
    lifetime = dt.timedelta(minutes=4)
    (firing,) = render_postable_alerts(Alert(make_payload()), now, lifetime)
    assert firing["endsAt"] == "2026-11-20T10:09:00Z"
    assert firing["startsAt"] == rfc3339(Alert(make_payload()).starts_at)
    assert firing["generatorURL"] == make_payload()["dashboard_url"]
    assert firing["labels"]["alertname"] == "doc-version-spike"
    assert firing["annotations"]["value"] == measure_text(Alert(make_payload()))
    assert firing["annotations"]["summary"] == make_payload()["summary"]
    ended = make_payload(status="resolved", ends_at="2026-11-20T10:04:00+00:00")
    (resolved,) = render_postable_alerts(Alert(ended), now, lifetime)
    assert resolved["endsAt"] == "2026-11-20T10:04:00Z"  # when it resolved, not now


def test_an_alertmanager_pair_with_one_member_down_still_gets_the_alert(con, receiver):
    down = Receiver(status=503).start()
    try:
        pair = {"type": "alertmanager", "urls": [down.url("/"), receiver.url("/")]}
        row = add_row(con, "am")
        summary = deliver_due(con, parse_channels({"am": pair}), T0)
        assert summary.delivered == 1 and outbox(con)[row]["delivered_at"] == T0
        assert [r.path for r in receiver.requests] == ["/api/v2/alerts"]
        assert [r.path for r in down.requests] == ["/api/v2/alerts"]  # tried as well
        receiver.status = 503
        add_row(con, "am", fingerprint="other")
        both_down = deliver_due(con, parse_channels({"am": pair}), T0)
        assert both_down.failed == 1 and "HTTP 503" in (both_down.channels["am"].error or "")
    finally:
        down.stop()


def test_firing_alerts_are_pushed_again_until_they_resolve(con, receiver):
    from conflictlens.notify.resend import Resender

    channels = parse_channels(
        {
            "am": {"type": "alertmanager", "url": receiver.url("/"), "resend_interval": "10s"},
            "hook": {"type": "webhook", "url": receiver.url("/hook")},
        }
    )
    clock = [100.0]
    resender = Resender(lambda: channels, clock=lambda: clock[0])
    for channel in ("am", "hook"):
        add_row(con, channel)
    con.execute(
        "INSERT INTO alert_state (rule, fingerprint, labels, state, updated_at) "
        "VALUES ('doc-version-spike', ?, '{}', 'firing', ?)",
        [FINGERPRINT, T0],
    )
    assert resender.run(con) == 0  # nothing delivered yet: the outbox sends it first
    deliver_due(con, channels, T0)
    receiver.requests.clear()
    assert resender.run(con) == 0  # this channel's interval is not over yet
    clock[0] += 10
    assert resender.run(con) == 1
    assert [r.path for r in receiver.requests] == ["/api/v2/alerts"]  # not the webhook
    con.execute("UPDATE alert_state SET state = 'resolved'")
    clock[0] += 10
    assert resender.run(con) == 0
