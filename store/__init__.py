"""The event store: one DuckDB file, its schema and the single funnel for writes."""

from conflictlens.store.db import (
    DatabaseLocked,
    StoreError,
    connect,
    default_db_path,
    prepare_batch_import,
)
from conflictlens.store.route_map import (
    RouteResolver,
    apply_route_map,
    read_route_map,
    replace_route_map,
    stored_routes,
)
from conflictlens.store.schema import SCHEMA_VERSION, migrate
from conflictlens.store.summaries import refresh_summaries, summarised_before
from conflictlens.store.writer import Batch, SourceRecord, Writer

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "DatabaseLocked",
    "RouteResolver",
    "SourceRecord",
    "StoreError",
    "Writer",
    "apply_route_map",
    "connect",
    "default_db_path",
    "migrate",
    "prepare_batch_import",
    "read_route_map",
    "refresh_summaries",
    "replace_route_map",
    "stored_routes",
    "summarised_before",
]
