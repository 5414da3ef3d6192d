"""Scheduled reports: when a report is due, building it once per period, delivering it, and
retrying deliveries that failed.

On every tick (serve calls :meth:`ReportScheduler.run_due` every minute or so; a cron job or
systemd timer calls it through ``conflictlens report --due``):

1. For each schedule, the latest time its cron expression fired, on the wall clock of its
   zone (cronsim: a fire time that a clock change skips runs at the next valid minute, one
   that repeats runs once). The period that fire reports on ("yesterday" as of the fire's
   date) is looked up in the index; if it is not there, the report is built, written and
   indexed. A fire missed while nothing ran is therefore made up once at the next tick, and
   only the latest one: a week offline gives one catch-up report, not seven.
2. Deliveries still owed (pending, or retrying and due) are attempted; a failure is recorded
   with its reason and retried with a doubling backoff (1 minute up to 1 hour) until
   MAX_ATTEMPTS, then marked failed. The directory itself needs no delivery.
3. Retention.

All of it under the directory's lock, so overlapping runs (serve and cron) take turns.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from cronsim import CronSim

from conflictlens.analysis.reports.archive import Archive, ArchivedReport, Entry, Index
from conflictlens.analysis.reports.build import QueryFn, ReportOptions, build_report, local_queries
from conflictlens.analysis.reports.config import ReportsConfig, ScheduleConfig
from conflictlens.analysis.reports.generate import keep
from conflictlens.analysis.reports.periods import Period, scheduled_period, zone

log = logging.getLogger("conflictlens.reports")

Deliver = Callable[[str, ArchivedReport], None]  # (channel name, report); raises on failure
Clock = Callable[[], dt.datetime]

FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)
MAX_ATTEMPTS = 12  # about seven hours of retries


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def latest_fire(schedule: ScheduleConfig, now: dt.datetime) -> dt.datetime:
    """The latest time at or before ``now`` that ``schedule`` fired, in its zone."""
    local = now.astimezone(zone(schedule.timezone)).replace(microsecond=0)
    # cronsim's reverse iteration yields times strictly before its start: start a second on.
    fire: dt.datetime = next(
        CronSim(schedule.schedule, local + dt.timedelta(seconds=1), reverse=True)
    )
    return fire


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after failure number ``attempts``: 1, 2, 4 ... minutes, at most an hour."""
    doublings: int = max(0, min(attempts - 1, 20))
    return min(LONGEST_RETRY, FIRST_RETRY * (1 << doublings))


@dataclass
class Due:
    schedule: ScheduleConfig
    fire: dt.datetime
    period: Period


class ReportScheduler:
    """Builds the due reports of ``config`` into its directory and delivers them.

    ``deliver(channel, report)`` sends one report to one channel and raises on failure (see
    notify.report_delivery). ``ready()``, when given, is asked before building: serve can
    hold a report back while its followers still catch up after a restart.
    """

    def __init__(
        self,
        config: ReportsConfig,
        clock: Clock = utc_now,
        *,
        deliver: Deliver | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.deliver = deliver
        self.ready = ready
        self.archive = Archive(config.directory)
        self.failures: list[tuple[str, dict[str, Any]]] = []  # (report id, delivery), last tick

    def due(self, index: Index, now: dt.datetime) -> list[Due]:
        """The schedules whose latest fire's period has no report yet."""
        found = []
        for schedule in self.config.schedules:
            fire = latest_fire(schedule, now)
            period = scheduled_period(schedule.period, fire, schedule.timezone)
            if self.archive.find(index, period) is None:
                found.append(Due(schedule, fire, period))
        return found

    def run_due(
        self, source: QueryFn | duckdb.DuckDBPyConnection, now: dt.datetime | None = None
    ) -> list[Path]:
        """One tick: build what is due, deliver what is owed, apply retention. Returns the
        report files written in this tick."""
        now = (now or self.clock()).astimezone(dt.UTC)
        ask = local_queries(source) if isinstance(source, duckdb.DuckDBPyConnection) else source
        written: list[Path] = []
        failed: Exception | None = None
        self.failures = []
        with self.archive.lock():
            index = self.archive.load()
            for due in self.due(index, now):
                if self.ready is not None and not self.ready():
                    log.info("report for %s waits: ingest is catching up", due.period.label)
                    break
                try:
                    entry = self._build(index, due, ask, now)
                except Exception as exc:  # the next tick tries again; deliveries go on
                    log.exception("report for %s failed", due.period.label)
                    failed = exc
                    continue
                self.archive.save(index)
                written += [self.archive.directory / f["name"] for f in entry["files"]]
                log.warning("report for %s written (%d bytes)", due.period.label, entry["size"])
            self._deliver_owed(index, now)
            removed = self.archive.prune(index, now, self.config.retention_days)
            if removed:
                log.warning("reports past retention removed: %s", ", ".join(removed))
            self.archive.save(index)
        if failed is not None:
            raise failed
        return written

    def _build(self, index: Index, due: Due, ask: QueryFn, now: dt.datetime) -> Entry:
        options = ReportOptions(
            top=due.schedule.top,
            gap_minutes=self.config.gap_minutes,
            silent_minutes=self.config.silent_minutes,
        )
        report = build_report(ask, due.period, options=options, generated=now)
        report["schedule"] = {"name": due.schedule.name, "fire": due.fire.isoformat()}
        return keep(
            self.archive,
            index,
            due.period,
            report,
            due.schedule.formats,
            created=now,
            schedule=due.schedule.name,
            channels=due.schedule.channels,
        )

    def _deliver_owed(self, index: Index, now: dt.datetime) -> None:
        for entry in index["reports"]:
            owed = [
                d
                for d in entry.get("deliveries", [])
                if d["status"] in ("pending", "retrying")
                and dt.datetime.fromisoformat(d["next_attempt"]) <= now
            ]
            if not owed:
                continue
            archived = ArchivedReport(
                self.archive.load_report(entry), entry, self.archive.directory, self.config.base_url
            )
            for delivery in owed:
                self._attempt(delivery, archived, now)
                self.archive.save(index)  # each outcome is kept even if the next one hangs

    def _attempt(
        self, delivery: dict[str, Any], archived: ArchivedReport, now: dt.datetime
    ) -> None:
        delivery["attempts"] += 1
        delivery["last_attempt"] = now.isoformat(timespec="seconds")
        try:
            if self.deliver is None:
                raise RuntimeError("no delivery configured in this process")
            self.deliver(delivery["channel"], archived)
        except Exception as exc:  # any failure of a channel is recorded, never raised
            reason = " ".join(str(exc).split()) or type(exc).__name__
            delivery["error"] = reason[:300]
            if delivery["attempts"] >= MAX_ATTEMPTS:
                delivery["status"] = "failed"
                delivery["next_attempt"] = None
            else:
                delivery["status"] = "retrying"
                retry = now + retry_delay(delivery["attempts"])
                delivery["next_attempt"] = retry.isoformat(timespec="seconds")
            self.failures.append((archived.entry["id"], delivery))
            log.warning(
                "report %s to %s: attempt %d failed: %s",
                archived.entry["id"],
                delivery["channel"],
                delivery["attempts"],
                delivery["error"],
            )
            return
        delivery.update(
            status="sent", delivered=delivery["last_attempt"], error=None, next_attempt=None
        )

    def status(self) -> dict[str, Any]:
        """For serve's /api/status: the schedules, the next fire, and each report's
        deliveries (read without the lock: the index is replaced atomically)."""
        now = self.clock()
        index = self.archive.load()
        schedules = []
        for schedule in self.config.schedules:
            local = now.astimezone(zone(schedule.timezone))
            upcoming = next(CronSim(schedule.schedule, local.replace(microsecond=0)))
            schedules.append(
                {
                    "name": schedule.name,
                    "schedule": schedule.schedule,
                    "timezone": schedule.timezone,
                    "period": schedule.period,
                    "next_run": upcoming.isoformat(),
                }
            )
        return {
            "directory": str(self.archive.directory),
            "schedules": schedules,
            "reports": [
                {
                    "id": e["id"],
                    "period": e["period"]["label"],
                    "created": e["created"],
                    "size": e["size"],
                    "deliveries": e.get("deliveries", []),
                }
                for e in index["reports"]
            ],
        }
