"""Scheduled reports delivered to their channels by ClickHouse replicas, each delivery
once: two replicas (in-process, each with its own client of one store behind
tests/chdb_http.py) run the same ticks at the same moments; a real SMTP server (aiosmtpd)
and a real webhook receiver on loopback are the channels (tests/test_reports_schedule.py's).

The webhook refuses the first attempt (HTTP 500): one replica records the failure, and
after the backoff one replica sends it again, with the same Idempotency-Key. The e-mail's
attachment is the report rendered from the archived JSON, built by ClickHouse from the
store's rows, whose counts are the generated log's truth.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conflictlens.analysis.reports.config import ReportsConfig, ScheduleConfig
from conflictlens.analysis.reports.render import render
from conflictlens.notify.report_delivery import ReportDelivery
from conflictlens.replicated_reports import ReplicatedReports
from conflictlens.store.clickhouse.engine import ClickHouseEngine
from conflictlens.store.clickhouse.state import Claims
from tests.chdb_http import StoreServer
from tests.test_reports_schedule import Hooks, Inbox, channels
from tests.test_reports_schedule import hooks as hooks
from tests.test_reports_schedule import smtp as smtp
from tests.test_serve_replicas import DB, planted_today
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow


def _at_once(replicas: list[ReplicatedReports], tick: Callable[[ReplicatedReports], Any]) -> None:
    start = threading.Barrier(len(replicas))
    failures: list[BaseException] = []

    def run(replica: ReplicatedReports) -> None:
        start.wait()
        try:
            tick(replica)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures


def test_two_replicas_deliver_a_scheduled_report_once_to_each_channel(
    tmp_path: Path, store: StoreServer, smtp: tuple[Inbox, int], hooks: Hooks
) -> None:
    inbox, port = smtp
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    truth, _ = planted_today(tmp_path, store)
    schedule = ScheduleConfig(schedule="* * * * *", formats=("html",), channels=("mail", "hook"))
    hooks.statuses = [500]  # the webhook's first attempt fails
    replicas = []
    for name in ("a", "b"):
        reports = ReportsConfig(
            directory=tmp_path / f"{name}-reports",
            base_url="https://reports.example/cl/",
            nightly=schedule,
        )
        replicas.append(
            ReplicatedReports(
                ClickHouseEngine(store.client(DB), DB),
                store.client(DB),
                Claims(store.client(DB), name),
                lambda reports=reports: reports,
                ReportDelivery(channels(port, hooks.url)),
            )
        )
    _at_once(replicas, lambda r: r.run_due(now))
    (archived,) = store.client(DB).query("SELECT id, report FROM report_archive").result_rows
    report = json.loads(archived[1])
    assert (report["conflicts"], report["requests"]) == (truth["conflicts"], truth["lines"])
    # Sent: the mail once; the webhook tried once (refused).
    assert len(inbox.envelopes) == 1 and len(hooks.requests) == 1
    # Before the backoff ends nothing is sent again; after it, the webhook once.
    _at_once(replicas, lambda r: r.send_owed(now + dt.timedelta(seconds=10)))
    assert len(hooks.requests) == 1
    _at_once(replicas, lambda r: r.send_owed(now + dt.timedelta(seconds=20)))
    _at_once(replicas, lambda r: r.send_owed(now + dt.timedelta(minutes=5)))
    assert len(inbox.envelopes) == 1 and len(hooks.requests) == 2
    assert sum(r.sent for r in replicas) == 2
    first, second = hooks.requests
    label = re.sub(r"[^A-Za-z0-9._:-]", "_", report["period"]["label"])  # "... (UTC)"
    key = f"report-nightly_{label}-hook"
    assert first[1]["Idempotency-Key"] == second[1]["Idempotency-Key"] == key
    assert (second[2]["conflicts"], second[2]["id"]) == (truth["conflicts"], archived[0])
    assert second[2]["link"].startswith("https://reports.example/cl/conflictlens-nightly-")
    # The e-mail attaches the report as rendered from the archive.
    (message,) = inbox.messages()
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content().encode() == render(report, "html")
    assert second[2]["link"].endswith(attachment.get_filename())
