"""The event store: one DuckDB file, its schema and the single funnel for writes."""

from store.db import DatabaseLocked, StoreError, connect, default_db_path
from store.schema import SCHEMA_VERSION, migrate
from store.writer import Batch, SourceRecord, Writer

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "DatabaseLocked",
    "SourceRecord",
    "StoreError",
    "Writer",
    "connect",
    "default_db_path",
    "migrate",
]
