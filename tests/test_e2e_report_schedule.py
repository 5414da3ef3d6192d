"""End to end: a report scheduled by cron for the next whole minute is built by
`conflictlens serve` once the real clock passes that minute, and delivered to a real webhook
receiver and a real SMTP server, once each; its numbers are those of the lines written.

serve looks for due reports a minute apart (5 s after it starts, then every 60 s), so the
minute is picked to fall between its first and second look: the report leaves at the second,
about 65 s after the start. The schedule's previous fire (a day earlier) has its report in
the archive already, so serve has nothing to catch up at its first look."""

from __future__ import annotations

import datetime as dt
import json
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import (
    Receiver,
    ServeProcess,
    SmtpServer,
    append_lines,
    hook_and_mail,
    wait_for,
    webhook_receiver,
)
from tests.helpers import clf_line, clf_ts
from tests.test_serve import run

pytestmark = pytest.mark.slow

# serve's first look is 5 s after its scheduler starts, which is a few seconds after the
# process: a minute closer than this could pass before the first look.
CLOSEST_MINUTE_S = 20


def next_fire() -> dt.datetime:
    """The next whole minute at least CLOSEST_MINUTE_S ahead, waiting for the one after when
    the next is closer (at most CLOSEST_MINUTE_S)."""
    now = dt.datetime.now(dt.UTC)
    minute = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    if (minute - now).total_seconds() < CLOSEST_MINUTE_S:
        time.sleep((minute - now).total_seconds() + 0.5)
        minute += dt.timedelta(minutes=1)
    return minute


def iso_z(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def store_with_lines(folder: Path, now: dt.datetime) -> Path:
    """12 conflicts and 8 successes 2 hours ago (inside the report's last 24 hours), 5
    conflicts 30 hours ago (outside), imported."""
    recent, old = now - dt.timedelta(hours=2), now - dt.timedelta(hours=30)
    lines = [clf_line("/api/v1/carts/7", ts=clf_ts(recent)) for _ in range(12)]
    lines += [clf_line("/api/v1/carts/7", status=200, ts=clf_ts(recent)) for _ in range(8)]
    lines += [clf_line("/api/v1/carts/7", ts=clf_ts(old)) for _ in range(5)]
    log = folder / "access.log"
    append_lines(log, lines)
    db = folder / "t.duckdb"
    imported = run("ingest", "--db", str(db), "--format", "nginx-combined", str(log))
    assert imported.returncode == 0, imported.stderr
    return db


def config_text(fire: dt.datetime, receiver: Receiver, smtp: SmtpServer) -> str:
    return f"""
[reports]
directory = "archive"
[reports.nightly]
schedule = "{fire.minute} {fire.hour} * * *"
timezone = "UTC"
period = "last-24h"
formats = ["html", "json"]
channels = ["hook", "mail"]
{hook_and_mail(receiver, smtp)}"""


def archive_previous_fire(db: Path, config: Path, fire: dt.datetime) -> None:
    """The report of the fire a day before, as `report --archive` files it (no delivery)."""
    day = dt.timedelta(days=1)
    period = f"{iso_z(fire - 2 * day)}..{iso_z(fire - day)}"
    made = run("report", "--db", str(db), "--config", str(config), "--period", period, "--archive")
    assert made.returncode == 0, made.stderr


def label(fire: dt.datetime) -> str:
    """How a report labels the 24 hours before ``fire`` (UTC)."""
    return f"{fire - dt.timedelta(days=1):%Y-%m-%d %H:%M} to {fire:%Y-%m-%d %H:%M} (UTC)"


def sent(listed: list[dict[str, Any]], period: str) -> bool:
    """The report of ``period`` is in the index, sent to both channels."""
    made = [r for r in listed if r["period"]["label"] == period]
    return bool(made) and sorted((d["channel"], d["status"]) for d in made[0]["deliveries"]) == [
        ("hook", "sent"),
        ("mail", "sent"),
    ]


def reports(serve: ServeProcess) -> list[dict[str, Any]]:
    status, body = serve.get("/api/reports")
    assert status == 200, body
    listed: list[dict[str, Any]] = body["reports"]
    return listed


def test_a_cron_schedule_one_minute_ahead_builds_and_delivers_the_report_in_serve(
    tmp_path: Path,
) -> None:
    db = store_with_lines(tmp_path, dt.datetime.now(dt.UTC))
    config = tmp_path / "conflictlens.toml"
    with webhook_receiver() as receiver, SmtpServer() as smtp:
        fire = next_fire()
        period = label(fire)
        config.write_text(config_text(fire, receiver, smtp), encoding="utf-8")
        archive_previous_fire(db, config, fire)
        serve = ServeProcess(db, config, dashboard=False)
        try:
            before = [r["period"]["label"] for r in reports(serve)]
            assert dt.datetime.now(dt.UTC) < fire, "the minute passed before serve was up"
            # The index is saved after each delivery: both "sent" is the end of the sending.
            wait_for(lambda: sent(reports(serve), period), 150, "the report, delivered")
            after = reports(serve)
        finally:
            serve.stop()
        hooks = [json.loads(r.body) for r in receiver.requests]
        mails = smtp.inbox.messages()
    assert before == [label(fire - dt.timedelta(days=1))]
    assert [r["period"]["label"] for r in after] == [*before, period]
    assert [r["schedule"] for r in after] == [None, "nightly"]
    assert len(hooks) == 1 and len(mails) == 1
    assert hooks[0]["period"]["label"] == period
    assert (hooks[0]["conflicts"], hooks[0]["requests"]) == (12, 20)
    assert sorted(hooks[0]["files"]) == [f["name"] for f in made_files(tmp_path, period)]
    assert_mail_carries_the_report(mails[0], tmp_path, period)
    made = next(f for f in made_files(tmp_path, period) if f["name"].endswith(".json"))
    report = json.loads((tmp_path / "archive" / made["name"]).read_text(encoding="utf-8"))
    assert dt.datetime.fromisoformat(report["schedule"]["fire"]) == fire


def made_files(folder: Path, period: str) -> list[dict[str, Any]]:
    index = json.loads((folder / "archive" / "index.json").read_text(encoding="utf-8"))
    entry = next(e for e in index["reports"] if e["period"]["label"] == period)
    files: list[dict[str, Any]] = sorted(entry["files"], key=lambda f: f["name"])
    return files


def assert_mail_carries_the_report(message: EmailMessage, folder: Path, period: str) -> None:
    attached = list(message.iter_attachments())
    html = next(f for f in made_files(folder, period) if f["name"].endswith(".html"))
    assert [a.get_filename() for a in attached] == [html["name"]]
    assert attached[0].get_content().encode() == (folder / "archive" / html["name"]).read_bytes()
