"""Ingest: raw access-log lines → parsed, templated, classified rows in the store.

Nothing here imports analysis/ or dashboard/: data flows one way.
"""

from conflictlens.ingest.formats import (
    FORMATS,
    FormatError,
    UnknownFormat,
    detect_format,
    get_format,
)
from conflictlens.ingest.kinds import KINDS, KindRule
from conflictlens.ingest.options import CONFLICT_STATUSES, IngestOptions
from conflictlens.ingest.pipeline import ImportSummary, IngestError, import_source
from conflictlens.ingest.routes import RouteRule

__all__ = [
    "CONFLICT_STATUSES",
    "FORMATS",
    "KINDS",
    "FormatError",
    "ImportSummary",
    "IngestError",
    "IngestOptions",
    "KindRule",
    "RouteRule",
    "UnknownFormat",
    "detect_format",
    "get_format",
    "import_source",
]
