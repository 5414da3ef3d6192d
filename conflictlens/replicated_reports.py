"""Scheduled reports when serve runs on ClickHouse as one of several replicas: each report
(schedule, period) is built by one replica and archived once, in the store's
``report_archive`` (store/clickhouse/state.py), not in a local directory.

Every replica looks every minute for the latest fire of each schedule; a period with no
archived report is claimed with ``report|<schedule>|<period>`` and attempt number (1 plus
the failed attempts recorded); the replica whose claim is stored builds the report from the
catalog on ClickHouse and inserts it with that key as its deduplication token. A replica
that dies while building leaves a claim without an outcome, taken over after
CLAIM_TIMEOUT as the next attempt: a report is archived once (the archive is keyed by id,
the insert deduplicated), whatever happens to the replicas.

Delivering a report to each channel of its schedule: a claim per (report, channel) and
attempt, as an alert notification's (conflictlens.replicated_alerts): every tick each replica
looks at the reports archived in the last LOOK_BACK whose deliveries are owed, claims
``report-send|<report>|<channel>`` with the next attempt number, and the holder renders the
report from the archived JSON into its own reports directory (an e-mail attaches the file; a
link names it under ``[reports] base_url``, which a fleet should set), sends it, and records
``delivered`` or ``failed`` (tried again after a backoff, up to MAX_ATTEMPTS). Sent once,
unless the sender dies between sending and recording: then again after CLAIM_TIMEOUT, with
the same Idempotency-Key (at least once).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from conflictlens.analysis import TimeRange, run_query
from conflictlens.analysis.reports.archive import PREFIX, ArchivedReport, write_atomic
from conflictlens.analysis.reports.build import ReportOptions, build_report
from conflictlens.analysis.reports.config import ReportsConfig
from conflictlens.analysis.reports.periods import scheduled_period
from conflictlens.analysis.reports.render import EXTENSIONS, render
from conflictlens.analysis.reports.schedule import latest_fire
from conflictlens.replicated_alerts import LOOK_BACK, next_attempt
from conflictlens.store.clickhouse.state import READ_SETTINGS, Claims
from conflictlens.store.engine import Engine

log = logging.getLogger("conflictlens.reports")

Deliver = Callable[[str, ArchivedReport], None]  # (channel name, report); raises on failure
_RECENT = """
    SELECT id, schedule FROM report_archive FINAL
    WHERE created_at >= {since:DateTime64(6, 'UTC')} ORDER BY created_at, id
"""


def archived(client: Any, report_id: str) -> bool:
    rows = client.query(
        "SELECT count() FROM report_archive WHERE id = {id:String}",
        parameters={"id": report_id},
        settings=READ_SETTINGS,
    ).result_rows
    return bool(rows[0][0])


@dataclass
class ReplicatedReports:
    engine: Engine
    client: Any
    claims: Claims
    reports: Callable[[], ReportsConfig]
    deliver: Deliver | None = None  # None: archived only
    built: int = 0  # reports this replica archived
    sent: int = 0  # report deliveries this replica made

    def ask(self, name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        return run_query(self.engine, name, time_range, **values)

    def run_due(self, now: dt.datetime) -> list[str]:
        """Build and archive the due reports this replica claims, then send the deliveries
        it claims; the ids of the reports built."""
        done = self._build_due(now)
        if self.deliver is not None:
            self.send_owed(now)
        return done

    def _build_due(self, now: dt.datetime) -> list[str]:
        config = self.reports()
        done = []
        for schedule in config.schedules:
            fire = latest_fire(schedule, now)
            period = scheduled_period(schedule.period, fire, schedule.timezone)
            report_id = f"{schedule.name}|{period.label}"
            if archived(self.client, report_id):
                continue
            key = f"report|{report_id}"
            attempt = next_attempt(self.claims.history([key]).get(key, []), now)
            if attempt is None or not self.claims.claim(key, attempt, now):
                continue
            try:
                options = ReportOptions(
                    top=schedule.top,
                    gap_minutes=config.gap_minutes,
                    silent_minutes=config.silent_minutes,
                )
                report = build_report(self.ask, period, options=options, generated=now)
                report["schedule"] = {"name": schedule.name, "fire": fire.isoformat()}
                row = (report_id, schedule.name, period.label, self.claims.replica, now)
                insert_report(self.client, row, report, token=key)
            except Exception as exc:  # the next tick (any replica) tries again
                log.exception("report %s failed", report_id)
                self.claims.outcome(key, attempt, "failed", now, str(exc))
                continue
            self.claims.outcome(key, attempt, "delivered", now, "")
            log.warning("report %s archived", report_id)
            self.built += 1
            done.append(report_id)
        return done

    def send_owed(self, now: dt.datetime) -> int:
        """Send each owed delivery of the recent reports that this replica claims."""
        schedules = {s.name: s for s in self.reports().schedules}
        rows = self.client.query(
            _RECENT, parameters={"since": now - LOOK_BACK}, settings=READ_SETTINGS
        ).result_rows
        owed = [
            (str(report_id), channel)
            for report_id, schedule in rows
            if schedule in schedules
            for channel in schedules[schedule].channels
        ]
        keys = {f"report-send|{r}|{c}": (r, c) for r, c in owed}
        history = self.claims.history(list(keys))
        sent = 0
        for key, (report_id, channel) in keys.items():
            attempt = next_attempt(history.get(key, []), now)
            if attempt is None or not self.claims.claim(key, attempt, now):
                continue
            try:
                assert self.deliver is not None
                self.deliver(channel, self._archived(report_id, schedules))
            except Exception as exc:  # any failure of a channel is recorded, never raised
                reason = " ".join(str(exc).split()) or type(exc).__name__
                self.claims.outcome(key, attempt, "failed", now, reason)
                log.warning(
                    "report %s to %s: attempt %d failed: %s", report_id, channel, attempt, reason
                )
                continue
            self.claims.outcome(key, attempt, "delivered", now, "")
            sent += 1
        self.sent += sent
        return sent

    def _archived(self, report_id: str, schedules: Mapping[str, Any]) -> ArchivedReport:
        """The archived report, its files rendered into this replica's reports directory."""
        row = self.client.query(
            "SELECT schedule, report FROM report_archive FINAL WHERE id = {id:String}",
            parameters={"id": report_id},
            settings=READ_SETTINGS,
        ).result_rows[0]
        report = json.loads(row[1])
        config = self.reports()
        directory = Path(config.directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = []
        for fmt in dict.fromkeys((*schedules[row[0]].formats, "json")):
            name = file_name(report_id, fmt)
            write_atomic(directory / name, render(report, fmt))
            files.append({"format": fmt, "name": name})
        entry = {"id": report_id, "files": files}
        return ArchivedReport(report, entry, directory, config.base_url)


def file_name(report_id: str, fmt: str) -> str:
    """The name of an archived report's file in format ``fmt``, the same on every replica:
    ``conflictlens-nightly-2026-11-19__UTC_.html`` (what a delivery's link names and
    ``GET /api/reports/files/{name}`` serves)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", report_id.replace("|", "-"))
    return f"{PREFIX}{stem}{EXTENSIONS[fmt]}"


def insert_report(
    client: Any,
    row: tuple[str, str, str, str, dt.datetime],
    report: Mapping[str, Any],
    *,
    token: str,
) -> None:
    """Archive ``report`` as (id, schedule, period, replica, created_at) in one insert whose
    deduplication token is ``token``: however many replicas insert it, one row is stored."""
    client.insert(
        "report_archive",
        [[*row, _json(report)]],
        column_names=["id", "schedule", "period", "replica", "created_at", "report"],
        settings={"insert_deduplication_token": token},
    )


def _json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, default=str, sort_keys=True)
