"""serve's report endpoints on a ClickHouse store (a stateless replica): the paths, requests
and answers of conflictlens.api_reports, from the store's ``report_archive``, so any replica
answers the same and the dashboard's Reports page and ``conflictlens report`` work through
any of them.

GET  /api/reports               the archive's index (conflictlens.replicated_report_index)
GET  /api/reports/files/{name}  one file the index lists, rendered from the archived JSON
POST /api/reports               as api_reports: the report of the period, built now through
                                the replica's ClickHouse engine and archived once

A report made on demand has an id fixed by its period (``now|2026-11-19|UTC``), also its
insert's deduplication token: the same request on two replicas, or retried, stores one row.
A period already archived under that id is answered from the store, not built again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from fastapi import APIRouter
from fastapi.responses import Response

from conflictlens._errors import StoreError
from conflictlens.analysis import TimeRange, run_query
from conflictlens.analysis.reports import Period, ReportsConfig, build_report
from conflictlens.analysis.reports.generate import report_options
from conflictlens.analysis.reports.render import render
from conflictlens.api_reports import ReportRequest, file_response, no_file, utc_now
from conflictlens.replicated_report_index import ReportIndex
from conflictlens.replicated_reports import archived, insert_report
from conflictlens.store.engine import Engine

Clock = Callable[[], dt.datetime]


class NotArchived(StoreError):
    """The report's row was not read back after its insert (a store losing writes)."""

    status_code = 503


def requested_id(period: Period) -> str:
    """A "generate now" report's id: its day and zone, else its UTC instants (a period's
    key, as the DuckDB archive finds one)."""
    if period.day is not None:
        return f"now|{period.day.isoformat()}|{period.tz}"
    return f"now|{_compact(period.since)}-{_compact(period.until)}"


def _compact(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y%m%dT%H%M%S.%fZ" if utc.microsecond else "%Y%m%dT%H%M%SZ")


def reports_router(
    engine: Engine,
    client: Any,
    reports: Callable[[], ReportsConfig],
    *,
    replica: str,
    database: str,
    clock: Clock = utc_now,
) -> APIRouter:
    """``reports()`` gives the [reports] settings in force (schedules' formats and channels)."""
    router = APIRouter(prefix="/api/reports", tags=["reports"])
    index = ReportIndex(client, reports)

    def ask(name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        return run_query(engine, name, time_range, **values)

    @router.get("")
    def listed() -> dict[str, Any]:
        """The archive's index: every report kept, by period, with its files and deliveries."""
        return {"archive": f"{database}.report_archive", **index.load()}

    @router.get("/files/{name}")
    def report_file(name: str) -> Response:
        """One file of the archive (HTML, Markdown, JSON or CSV), rendered from the store."""
        found = index.listed_file(name)
        report = index.report(found[0]) if found else None
        if found is None or report is None:
            raise no_file(name)
        return file_response(render(report, found[1]), found[1])

    @router.post("", status_code=201)
    def generate(request: ReportRequest) -> dict[str, Any]:
        """Make a report of a period now, archive it once and answer with its entry."""
        settings, now = reports(), clock()
        period, formats = request.parsed(settings, now)
        report_id = requested_id(period)
        if not archived(client, report_id):
            options = report_options(settings)
            report = build_report(ask, period, options=options, generated=now)
            report["request"] = {"formats": list(dict.fromkeys((*formats, "json")))}
            row = (report_id, "", period.label, replica, now)
            insert_report(client, row, report, token=report_id)
        entry = index.entry(report_id)
        if entry is None:
            raise NotArchived(
                f"report {report_id} was not found in report_archive after its insert"
            )
        return entry

    return router
