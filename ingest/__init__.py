"""Ingest: raw access-log lines → parsed, templated, classified rows in the store.

Nothing here imports analysis/ or dashboard/: data flows one way.
"""

from ingest.formats import FORMATS, FormatError, UnknownFormat, detect_format, get_format
from ingest.kinds import KINDS, KindRule
from ingest.options import CONFLICT_STATUSES, IngestOptions
from ingest.pipeline import ImportSummary, IngestError, import_source
from ingest.routes import RouteRule

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
