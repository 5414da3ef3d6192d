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

Delivering scheduled reports to channels stays with the embedded store for now.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from conflictlens.analysis import TimeRange, run_query
from conflictlens.analysis.reports.build import ReportOptions, build_report
from conflictlens.analysis.reports.config import ReportsConfig
from conflictlens.analysis.reports.periods import scheduled_period
from conflictlens.analysis.reports.schedule import latest_fire
from conflictlens.replicated_alerts import next_attempt
from conflictlens.store.clickhouse.state import READ_SETTINGS, Claims
from conflictlens.store.engine import Engine

log = logging.getLogger("conflictlens.reports")


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
    built: int = 0  # reports this replica archived

    def ask(self, name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        return run_query(self.engine, name, time_range, **values)

    def run_due(self, now: dt.datetime) -> list[str]:
        """Build and archive the due reports this replica claims; their ids."""
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
                self.client.insert(
                    "report_archive",
                    [
                        [
                            report_id,
                            schedule.name,
                            period.label,
                            self.claims.replica,
                            now,
                            _json(report),
                        ]
                    ],
                    column_names=["id", "schedule", "period", "replica", "created_at", "report"],
                    settings={"insert_deduplication_token": key},
                )
            except Exception as exc:  # the next tick (any replica) tries again
                log.exception("report %s failed", report_id)
                self.claims.outcome(key, attempt, "failed", now, str(exc))
                continue
            self.claims.outcome(key, attempt, "delivered", now, "")
            log.warning("report %s archived", report_id)
            self.built += 1
            done.append(report_id)
        return done


def _json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, default=str, sort_keys=True)
