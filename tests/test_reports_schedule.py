"""Scheduled reports with a controlled clock: one report per period across a DST change and
restarts (new scheduler objects over the same directory), a run missed while down made up
once, two processes at once, retention, the index; delivery to a real SMTP server
(aiosmtpd) and real HTTP endpoints on loopback, failures retried with backoff and shown in
the index; and ``conflictlens report --due`` as cron or a systemd timer runs it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import closing
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from conflictlens.analysis.reports import (
    Archive,
    ArchiveError,
    ReportScheduler,
    ReportsConfig,
    ScheduleConfig,
    day_period,
    generate_now,
    latest_fire,
    local_queries,
)
from conflictlens.analysis.reports.schedule import MAX_ATTEMPTS
from conflictlens.notify import parse_channels
from conflictlens.notify.report_delivery import ReportDelivery
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from tests.test_reports import ingest, run_report
from tests.test_serve import free_port

UTC = dt.UTC
BERLIN = "Europe/Berlin"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A week of traffic around the autumn clock change (2026-10-25 in Berlin) and a few
    days around the spring one (2026-03-29)."""
    folder = tmp_path_factory.mktemp("schedule")
    autumn, spring = folder / "autumn.log", folder / "spring.log"
    write_log(
        autumn,
        12_000,
        style="nginx-extended",
        seed=4,
        hours=24 * 7,
        end=dt.datetime(2026, 10, 28, tzinfo=UTC),
    )
    write_log(
        spring,
        6_000,
        style="nginx-extended",
        seed=6,
        hours=24 * 4,
        end=dt.datetime(2026, 3, 31, tzinfo=UTC),
    )
    db = folder / "t.duckdb"
    ingest(db, autumn, spring)
    return db


@pytest.fixture
def con(store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with closing(connect(store, read_only=True)) as connection:
        yield connection


def nightly(directory: Path, **overrides: Any) -> ReportsConfig:
    schedule = ScheduleConfig(timezone=BERLIN, **overrides.pop("schedule", {}))
    return ReportsConfig(directory=directory, nightly=schedule, **overrides)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def ticks(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> Iterator[dt.datetime]:
    moment = start
    while moment <= end:
        yield moment
        moment += step


def run_ticks(
    make: Any, con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime,
    step: dt.timedelta = dt.timedelta(minutes=20),
) -> list[Path]:  # fmt: skip
    """A scheduler made by ``make(clock)`` ticking from start to end; returns every file
    written (a restart is a fresh call)."""
    clock = Clock(start)
    scheduler = make(clock)
    written: list[Path] = []
    for moment in ticks(start, end, step):
        clock.now = moment
        written += scheduler.run_due(con)
    return written


def days(directory: Path) -> list[str]:
    return [entry["period"]["day"] for entry in Archive(directory).load()["reports"]]


def entry_for(directory: Path, day: str) -> dict[str, Any]:
    found = [e for e in Archive(directory).load()["reports"] if e["period"]["day"] == day]
    assert len(found) == 1, found
    entry: dict[str, Any] = found[0]
    return entry


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# --- when reports are made -------------------------------------------------------------------


def test_latest_fire_follows_the_zones_clock() -> None:
    def fire(schedule: ScheduleConfig, now: str) -> dt.datetime:
        # In UTC: an ambiguous local time never compares equal across zones (PEP 495).
        return latest_fire(schedule, t(now)).astimezone(UTC)

    schedule = ScheduleConfig(schedule="0 6 * * *", timezone=BERLIN)
    assert fire(schedule, "2026-10-25T04:59:59Z") == t("2026-10-24T06:00:00+02:00")
    assert fire(schedule, "2026-10-25T05:00:00Z") == t("2026-10-25T06:00:00+01:00")
    night = ScheduleConfig(schedule="30 2 * * *", timezone=BERLIN)
    # 02:30 does not exist on 2026-03-29: cronsim runs it at 03:00 CEST; on 2026-10-25 it
    # exists twice: it runs once, at the first.
    assert fire(night, "2026-03-29T01:00:00Z") == t("2026-03-29T03:00:00+02:00")
    assert fire(night, "2026-10-25T02:29:00Z") == t("2026-10-25T02:30:00+02:00")


def test_one_report_per_day_across_the_autumn_change_and_a_restart(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    config = nightly(tmp_path / "reports")

    def make(clock: Clock) -> ReportScheduler:
        return ReportScheduler(config, clock)

    # Clocks go back at 01:00Z on 2026-10-25; serve restarts at 03:00Z, before that day's run.
    written = run_ticks(make, con, t("2026-10-23T12:00Z"), t("2026-10-25T03:00Z"))
    written += run_ticks(make, con, t("2026-10-25T03:00Z"), t("2026-10-27T12:00Z"))
    assert days(tmp_path / "reports") == [
        "2026-10-22",
        "2026-10-23",
        "2026-10-24",
        "2026-10-25",
        "2026-10-26",
    ]
    assert len(written) == len(set(written)) == 5 * 2  # html and json, once each
    # Each was made at its 06:00 Berlin (05:00Z in winter, 04:00Z in summer) ...
    assert entry_for(tmp_path / "reports", "2026-10-24")["created"] == "2026-10-25T05:00:00+00:00"
    assert entry_for(tmp_path / "reports", "2026-10-23")["created"] == "2026-10-24T04:00:00+00:00"
    # ... the first at the first start (the run of 2026-10-23 06:00 had been missed).
    assert entry_for(tmp_path / "reports", "2026-10-22")["created"] == "2026-10-23T12:00:00+00:00"
    # The day of the change has 25 hours, and the report counts all of them.
    long_day = entry_for(tmp_path / "reports", "2026-10-25")
    assert (long_day["period"]["from"], long_day["period"]["to"]) == (
        "2026-10-24T22:00:00+00:00",
        "2026-10-25T23:00:00+00:00",
    )
    report = json.loads((tmp_path / "reports" / "conflictlens-2026-10-25.json").read_text())
    expected = con.execute(
        "SELECT count(*) FROM conflict_events WHERE ts >= '2026-10-24 22:00' AND ts < '2026-10-25 23:00'"
    ).fetchall()[0][0]
    assert report["conflicts"] == expected > 0
    assert len(report["trend"]["points"]) == 100  # 25 hours of 15-minute buckets


def test_a_run_missed_while_down_is_made_up_once(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    config = nightly(tmp_path / "reports")

    def make(clock: Clock) -> ReportScheduler:
        return ReportScheduler(config, clock)

    run_ticks(make, con, t("2026-10-23T12:00Z"), t("2026-10-24T12:00Z"))
    # Down from 2026-10-24 12:00Z to 2026-10-26 20:00Z: the runs of the 25th and 26th missed.
    run_ticks(make, con, t("2026-10-26T20:00Z"), t("2026-10-27T12:00Z"))
    assert days(tmp_path / "reports") == ["2026-10-22", "2026-10-23", "2026-10-25", "2026-10-26"]
    assert entry_for(tmp_path / "reports", "2026-10-25")["created"] == "2026-10-26T20:00:00+00:00"


def test_one_report_per_day_across_the_spring_change(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    config = nightly(tmp_path / "reports", schedule={"schedule": "30 2 * * *", "formats": ("md",)})

    def make(clock: Clock) -> ReportScheduler:
        return ReportScheduler(config, clock)

    written = run_ticks(
        make, con, t("2026-03-27T12:00Z"), t("2026-03-30T12:00Z"), dt.timedelta(minutes=15)
    )
    assert days(tmp_path / "reports") == ["2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29"]
    assert sorted(p.suffix for p in written) == [".json"] * 4 + [".md"] * 4
    # 02:30 did not exist on the 29th: that night's report came at 03:00 CEST (01:00Z).
    assert entry_for(tmp_path / "reports", "2026-03-28")["created"] == "2026-03-29T01:00:00+00:00"
    short = entry_for(tmp_path / "reports", "2026-03-29")["period"]
    assert (short["from"], short["to"]) == (
        "2026-03-28T23:00:00+00:00",
        "2026-03-29T22:00:00+00:00",
    )


def test_two_processes_at_once_make_one_report(store: Path, tmp_path: Path) -> None:
    config = nightly(tmp_path / "reports")
    now = t("2026-10-26T05:10Z")
    start = threading.Barrier(3)
    written: list[list[Path]] = []

    def one() -> None:
        with closing(connect(store, read_only=True)) as con:  # like a second process
            scheduler = ReportScheduler(config, Clock(now))  # each its own lock handle
            start.wait()
            written.append(scheduler.run_due(con))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(len(w) for w in written) == [0, 0, 2]
    assert days(tmp_path / "reports") == ["2026-10-25"]


def test_retention_deletes_old_reports_and_never_rebuilds_them(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    directory = tmp_path / "reports"
    config = nightly(directory, retention_days=2)

    def make(clock: Clock) -> ReportScheduler:
        return ReportScheduler(config, clock)

    run_ticks(make, con, t("2026-10-22T12:00Z"), t("2026-10-27T12:00Z"), dt.timedelta(hours=6))
    # Periods ending more than two days before 2026-10-27 12:00Z are gone, files and all.
    assert days(directory) == ["2026-10-25", "2026-10-26"]
    assert sorted(p.name for p in directory.iterdir()) == [
        ".lock",
        "conflictlens-2026-10-25.html",
        "conflictlens-2026-10-25.json",
        "conflictlens-2026-10-26.html",
        "conflictlens-2026-10-26.json",
        "index.json",
    ]
    # The newest report stays whatever its age: it tells the scheduler its period is done.
    # (Just before the 28th's run, with one day of retention: the 26th ended 30 hours ago.)
    late = ReportScheduler(nightly(directory, retention_days=1))
    assert late.run_due(con, t("2026-10-28T04:59Z")) == []
    assert days(directory) == ["2026-10-26"]


def test_an_unreadable_index_stops_the_scheduler_instead_of_duplicating(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    directory = tmp_path / "reports"
    directory.mkdir()
    (directory / "index.json").write_text("{ not json")
    scheduler = ReportScheduler(nightly(directory), Clock(t("2026-10-26T06:00Z")))
    with pytest.raises(ArchiveError, match=r"index\.json: unreadable"):
        scheduler.run_due(con)
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "index.json"]


# --- delivery --------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        out = []
        for envelope in self.envelopes:
            message = email.message_from_bytes(
                envelope.original_content or b"", policy=email.policy.default
            )
            assert isinstance(message, EmailMessage)
            out.append(message)
        return out


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Hooks:
    """An HTTP server on loopback that records every POST and answers with the next status
    of ``statuses`` (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.statuses: list[int] = []
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.requests.append((self.path, dict(self.headers), json.loads(body)))
                status = hooks.statuses.pop(0) if hooks.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    try:
        yield server
    finally:
        server.close()


def channels(smtp_port: int, hooks_url: str) -> dict[str, Any]:
    return parse_channels(
        {
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                     "from": "conflictlens <reports@example.org>", "to": ["ops@example.org"], "timeout": 10},
            "hook": {"type": "webhook", "url": f"{hooks_url}/hook", "headers": {"Authorization": "Bearer s3cret-token"}},
            "chat": {"type": "slack", "url": f"{hooks_url}/slack"},
        }
    )  # fmt: skip


def test_a_report_goes_to_email_webhook_and_slack(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, smtp: tuple[Inbox, int], hooks: Hooks
) -> None:
    inbox, port = smtp
    directory = tmp_path / "reports"
    config = nightly(
        directory,
        base_url="https://reports.example/cl/",
        schedule={"channels": ("mail", "hook", "chat")},
    )
    scheduler = ReportScheduler(config, deliver=ReportDelivery(channels(port, hooks.url)))
    written = scheduler.run_due(con, t("2026-10-26T05:00Z"))
    assert [p.name for p in written] == [
        "conflictlens-2026-10-25.html",
        "conflictlens-2026-10-25.json",
    ]
    entry = entry_for(directory, "2026-10-25")
    assert [(d["channel"], d["status"], d["attempts"]) for d in entry["deliveries"]] == [
        ("mail", "sent", 1),
        ("hook", "sent", 1),
        ("chat", "sent", 1),
    ]
    report = json.loads((directory / "conflictlens-2026-10-25.json").read_text())
    # E-mail: the report as the HTML body (no script), the full file attached.
    (message,) = inbox.messages()
    assert message["Subject"].startswith("[conflictlens] report 2026-10-25 (Europe/Berlin): ")
    assert f"{report['conflicts']:,} conflicts" in message["Subject"]
    body = message.get_body(("html",))
    assert body is not None and "<script" not in body.get_content()
    assert "https://reports.example/cl/conflictlens-2026-10-25.html" in body.get_content()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "conflictlens-2026-10-25.html"
    assert (
        attachment.get_content().encode()
        == (directory / "conflictlens-2026-10-25.html").read_bytes()
    )
    # Webhook: the summary and the link; Slack: a message with the link.
    (hook,) = [r for r in hooks.requests if r[0] == "/hook"]
    assert hook[1]["Authorization"] == "Bearer s3cret-token"
    assert hook[1]["Idempotency-Key"] == "report-2026-10-25-hook"
    assert hook[2]["link"] == "https://reports.example/cl/conflictlens-2026-10-25.html"
    assert (hook[2]["conflicts"], hook[2]["period"]) == (report["conflicts"], report["period"])
    (chat,) = [r for r in hooks.requests if r[0] == "/slack"]
    assert chat[2]["text"].startswith("2026-10-25 (Europe/Berlin): ")
    assert (
        "<https://reports.example/cl/conflictlens-2026-10-25.html|Open the report>"
        in json.dumps(chat[2])
    )
    # Nothing is sent twice on the next ticks.
    scheduler.run_due(con, t("2026-10-26T06:00Z"))
    assert len(inbox.envelopes) == 1 and len(hooks.requests) == 2
    # serve's /api/status view: the schedule's next run and each report's deliveries.
    status = ReportScheduler(config, Clock(t("2026-10-26T06:00Z"))).status()
    assert status["schedules"][0]["next_run"] == "2026-10-27T06:00:00+01:00"
    assert [d["status"] for d in status["reports"][0]["deliveries"]] == ["sent"] * 3


def test_slack_text_from_a_log_cannot_link_or_mention(tmp_path: Path) -> None:
    from conflictlens.analysis.reports import ArchivedReport
    from conflictlens.notify.report_delivery import slack_message
    from tests.test_reports import hostile_report

    report = hostile_report()
    entry = {"id": "x", "files": [{"format": "html", "name": "x.html"}]}
    message = json.dumps(slack_message(ArchivedReport(report, entry, tmp_path)))
    assert "<script>" not in message and "&lt;script&gt;" in message
    assert "<!channel>" not in json.dumps(slack_message(ArchivedReport(
        {**report, "top_clusters": [{**report["top_clusters"][0], "route": "<!channel>"}]}, entry, tmp_path
    )))  # fmt: skip


def test_a_failed_delivery_is_retried_with_backoff_and_shown_in_the_index(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, hooks: Hooks
) -> None:
    directory = tmp_path / "reports"
    config = nightly(directory, schedule={"channels": ("hook", "mail")})
    closed = free_port()  # nothing listens there: the mail server is down
    deliver = ReportDelivery(channels(closed, hooks.url))
    hooks.statuses = [503, 503]
    t0 = t("2026-10-26T05:00Z")

    def tick(after: dt.timedelta) -> dict[str, dict[str, Any]]:
        # A new scheduler object each time: the state lives in the index, not in memory.
        ReportScheduler(config, deliver=deliver).run_due(con, t0 + after)
        on_disk = json.loads((directory / "index.json").read_text())
        return {d["channel"]: d for d in on_disk["reports"][0]["deliveries"]}

    first = tick(dt.timedelta(0))
    assert (first["hook"]["status"], first["hook"]["attempts"]) == ("retrying", 1)
    assert "HTTP 503" in first["hook"]["error"] and "s3cret" not in first["hook"]["error"]
    assert first["hook"]["next_attempt"] == "2026-10-26T05:01:00+00:00"
    assert first["mail"]["status"] == "retrying" and "smtp 127.0.0.1" in first["mail"]["error"]
    assert tick(dt.timedelta(seconds=30))["hook"]["attempts"] == 1  # not due yet
    second = tick(dt.timedelta(minutes=1))
    assert (second["hook"]["attempts"], second["hook"]["next_attempt"]) == (
        2,
        "2026-10-26T05:03:00+00:00",
    )
    third = tick(dt.timedelta(minutes=3))
    assert (third["hook"]["status"], third["hook"]["attempts"], third["hook"]["error"]) == (
        "sent",
        3,
        None,
    )
    assert len(hooks.requests) == 3
    # The mail server never comes back: after MAX_ATTEMPTS the delivery is marked failed.
    later = dt.timedelta(minutes=3)
    for _ in range(MAX_ATTEMPTS):
        later += dt.timedelta(hours=1)
        last = tick(later)
    assert (last["mail"]["status"], last["mail"]["attempts"], last["mail"]["next_attempt"]) == (
        "failed",
        MAX_ATTEMPTS,
        None,
    )
    assert len(days(directory)) == 1  # retries never build the report again


# --- made by hand ----------------------------------------------------------------------------


def test_a_report_made_by_hand_is_filed_as_the_scheduler_files_it(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    directory = tmp_path / "reports"
    config = nightly(directory, schedule={"channels": ("ops",)})
    sent: list[str] = []
    scheduler = ReportScheduler(config, deliver=lambda channel, _report: sent.append(channel))
    fire = t("2026-10-27T06:00+01:00")
    scheduler.run_due(con, fire)
    scheduled = entry_for(directory, "2026-10-26")
    assert sent == ["ops"] and scheduled["deliveries"][0]["status"] == "sent"

    # The scheduled period again, by hand: built afresh in place, in one more format; its
    # deliveries and schedule stay, so it is neither sent again nor rebuilt by the scheduler.
    again = generate_now(
        config, local_queries(con), day_period(dt.date(2026, 10, 26), BERLIN), ("md",), fire
    )
    assert again["id"] == scheduled["id"] and again["schedule"] == "nightly"
    assert again["deliveries"] == scheduled["deliveries"]
    assert [f["format"] for f in again["files"]] == ["html", "json", "md"]
    assert days(directory) == ["2026-10-26"]
    assert scheduler.run_due(con, fire + dt.timedelta(minutes=5)) == [] and sent == ["ops"]

    # A period the scheduler never made: the same names and entry, and no deliveries.
    other = generate_now(
        config, local_queries(con), day_period(dt.date(2026, 10, 24), BERLIN), ("html",), fire
    )
    assert [f["name"] for f in other["files"]] == [
        "conflictlens-2026-10-24.html",
        "conflictlens-2026-10-24.json",
    ]
    assert other["schedule"] is None and other["deliveries"] == []
    assert days(directory) == ["2026-10-24", "2026-10-26"]
    assert {p.name for p in directory.iterdir()} == {
        ".lock",
        "index.json",
        *(f["name"] for e in Archive(directory).load()["reports"] for f in e["files"]),
    }


# --- the one-shot command --------------------------------------------------------------------


def test_report_due_for_cron_and_systemd_timers(store: Path, tmp_path: Path, hooks: Hooks) -> None:
    config = tmp_path / "conflictlens.toml"
    config.write_text(
        f"""
db = "{store}"

[alerts.channels.hook]
type = "webhook"
url = "{hooks.url}/hook"

[reports]
directory = "reports"
retention_days = 30

[reports.nightly]
schedule = "0 6 * * *"
timezone = "Europe/Berlin"
formats = ["html", "md"]
channels = ["hook"]
"""
    )
    first = run_report("--config", config, "--due", "--now", "2026-10-26T05:30:00Z")
    assert first.exit_code == 0, (first.output, first.exception)
    assert f"wrote {tmp_path / 'reports' / 'conflictlens-2026-10-25.html'}" in first.stdout
    assert len(hooks.requests) == 1
    again = run_report("--config", config, "--due", "--now", "2026-10-26T07:00:00Z")
    assert again.exit_code == 0 and "no report due" in again.stdout
    listing = run_report("--config", config, "--list")
    assert (
        "2026-10-25 (Europe/Berlin):" in listing.stdout
        and "hook: sent after 1 attempt(s)" in listing.stdout
    )
    hooks.statuses = [500]
    failing = run_report("--config", config, "--due", "--now", "2026-10-27T05:30:00Z")
    assert failing.exit_code == 1
    assert "delivery of 2026-10-26 to hook failed: POST" in failing.stderr
    assert (
        "HTTP 500" in failing.stderr
        and "next try after 2026-10-27T05:31:00+00:00" in failing.stderr
    )
