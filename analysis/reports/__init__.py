"""Reports: a period's conflicts as one document (HTML, Markdown, JSON, CSV), built from the
catalog's named queries, scheduled, archived in a directory with an index, and delivered.

Importing the package registers the report queries (``analysis.reports.queries``) in the
catalog.
"""

from conflictlens.analysis.reports import queries as _queries  # noqa: F401 - registers the named queries
from conflictlens.analysis.reports.archive import Archive, ArchivedReport, ArchiveError
from conflictlens.analysis.reports.build import (
    QueryFn,
    Report,
    ReportOptions,
    build_report,
    local_queries,
)
from conflictlens.analysis.reports.config import ReportsConfig, ScheduleConfig, parse_reports
from conflictlens.analysis.reports.generate import (
    default_formats,
    default_zone,
    generate_now,
    parse_request,
)
from conflictlens.analysis.reports.periods import Period, day_period, parse_period
from conflictlens.analysis.reports.render import FORMATS, render
from conflictlens.analysis.reports.schedule import Deliver, ReportScheduler, latest_fire

__all__ = [
    "FORMATS",
    "Archive",
    "ArchiveError",
    "ArchivedReport",
    "Deliver",
    "Period",
    "QueryFn",
    "Report",
    "ReportOptions",
    "ReportScheduler",
    "ReportsConfig",
    "ScheduleConfig",
    "build_report",
    "day_period",
    "default_formats",
    "default_zone",
    "generate_now",
    "latest_fire",
    "local_queries",
    "parse_period",
    "parse_reports",
    "parse_request",
    "render",
]
