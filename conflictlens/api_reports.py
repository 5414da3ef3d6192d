"""serve's report endpoints (an APIRouter serve includes). While serve owns the database, a
report made on demand (the dashboard's "Generate now") is built here, on serve's own
connection, and kept in the reports directory of the config in force.

GET  /api/reports               the archive's index: every report, its files and deliveries
GET  /api/reports/files/{name}  one report file, by a name the index lists
POST /api/reports               {"period": "yesterday" | "last-24h" | "last-7d" | "YYYY-MM-DD"
                                 | "FROM..TO", "tz": IANA name, "formats": ["html", ...]}
                                -> the index entry of the report, built and archived now
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from conflictlens.analysis.reports import (
    Archive,
    Period,
    ReportsConfig,
    generate_now,
    parse_request,
)
from conflictlens.analysis.reports.build import local_queries
from conflictlens.analysis.reports.render import MEDIA_TYPES

Cursor = Callable[[], duckdb.DuckDBPyConnection]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReportRequest(BaseModel):
    period: str = Field("yesterday", description="yesterday, last-24h, last-7d, a date, FROM..TO")
    tz: str | None = Field(None, description="IANA zone; default [reports.nightly]'s, else UTC")
    formats: list[str] | None = Field(None, description="html, md, json, csv; JSON is always kept")

    def parsed(self, settings: ReportsConfig, now: dt.datetime) -> tuple[Period, tuple[str, ...]]:
        """The period and formats asked, with the defaults of ``settings``; InvalidValue
        (answered 400 in one line) for a bad period, zone or format."""
        return parse_request(settings, self.period, self.tz, self.formats, now)


def no_file(name: str) -> HTTPException:
    return HTTPException(404, f"no report file {name!r} in the reports index")


def file_response(data: bytes, fmt: str) -> Response:
    """A report file with its format's media type, never sniffed as anything else."""
    media = MEDIA_TYPES.get(fmt, "application/octet-stream")
    return Response(data, media_type=media, headers={"X-Content-Type-Options": "nosniff"})


def reports_router(
    cursor: Cursor, reports: Callable[[], ReportsConfig], clock: Clock = utc_now
) -> APIRouter:
    """``reports()`` gives the [reports] settings in force (serve swaps them on reload)."""
    router = APIRouter(prefix="/api/reports", tags=["reports"])

    @router.get("")
    def index() -> dict[str, Any]:
        """The archive's index: every report kept, newest first, with its files."""
        settings = reports()
        archive = Archive(settings.directory)
        return {"directory": str(archive.directory), **archive.load()}

    @router.get("/files/{name}")
    def report_file(name: str) -> Response:
        """One file of the archive (HTML, Markdown, JSON or CSV)."""
        archive = Archive(reports().directory)
        found = archive.listed_file(name)
        if found is None:
            raise no_file(name)
        path, fmt = found
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise HTTPException(500, f"{path}: {exc.strerror or exc}") from None
        return file_response(data, fmt)

    @router.post("", status_code=201)
    def generate(request: ReportRequest) -> dict[str, Any]:
        """Make a report of a period now, archive it and answer with its entry."""
        settings = reports()
        period, formats = request.parsed(settings, clock())
        with cursor() as con:
            return generate_now(settings, local_queries(con), period, formats, clock())

    return router
