"""The ClickHouse store's schema: the same tables and columns as the DuckDB store
(store/schema.py), so one query catalog reads both.

Types: TIMESTAMP is DateTime64(6, 'UTC') like DuckDB's, microseconds (naive UTC on the way out),
and DateTime64(3) where a time is whole minutes or slots (the same 8 bytes); VARCHAR is
Nullable(String), also where the values repeat (service, method, route, codes): a
LowCardinality column stores them in a tenth of the space, but every query that sorts or merges
its blocks (an export, the grouped rollups) pays tens of ms per such column and 0.5M rows to
re-index their dictionaries, while plain strings in sort-key order compress almost as well
(88 against 82 bytes per stored conflict event).
VARCHAR[] is Array(String); integers keep their DuckDB width, except ``source_id``: an agent
sends a 63-bit hash of its name and its local source id, so it is Int64. The tables agents
insert into (events, rollups, rejects, sources) carry the shipping gateway node in ``agent``
and keep the last 10 000 insert tokens, so a batch an agent sends again is stored once.

The hourly and 5-minute summaries are materialized views (SummingMergeTree targets) fed by
every insert into conflict_events and request_rollups: they are complete at all times, late
rows included, so ``hours_watermark`` is a view on the newest complete hour and
``hour_invalidations`` stays empty. Readers sum() the summaries and the rollups, so parts
not merged yet change no answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_DATABASE = "conflictlens"
DEFAULT_RETENTION_DAYS = 90
# The TTL is a DateTime (seconds since 1970 in 32 bits, up to 2106): a longer retention wraps
# round to a date in the past and every row inserted is dropped at once.
MAX_RETENTION_DAYS = 20_000
DEDUP_WINDOW = 10_000
# What an insert into conflict_events or request_rollups passes along with its
# insert_deduplication_token, so that the summary views skip a repeated block too.
INSERT_SETTINGS = {"deduplicate_blocks_in_dependent_materialized_views": 1}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

TS = "DateTime64(3, 'UTC')"
# Times set by conflictlens itself (now(), a user's --at) keep DuckDB's microseconds.
TS6 = "DateTime64(6, 'UTC')"
TEXT = "Nullable(String)"


@dataclass(frozen=True)
class Table:
    """One data table: columns, engine (without its replication arguments) and keys."""

    name: str
    columns: tuple[tuple[str, str], ...]
    engine: str = "MergeTree"
    engine_args: str = ""  # the engine's own arguments: a version column, columns to sum
    order_by: str = "tuple()"
    partition_by: str | None = None
    ttl_column: str | None = None
    dedup: bool = False
    projections: tuple[tuple[str, str], ...] = ()  # (name, SELECT ... of the projection)

    def settings(self) -> str:
        # Nullable keys: service, method and route are NULL when a log does not say.
        pairs = ["allow_nullable_key = 1"]
        if self.dedup:
            pairs.append(f"non_replicated_deduplication_window = {DEDUP_WINDOW}")
            pairs.append(f"replicated_deduplication_window = {DEDUP_WINDOW}")
        if self.projections:
            # a merge that sums rows rebuilds the projection from the merged rows
            pairs.append(f"deduplicate_merge_projection_mode = '{PROJECTION_MODE}'")
        return ", ".join(pairs)


_AGENT = ("agent", "LowCardinality(String) DEFAULT ''")
PROJECTION_MODE = "rebuild"

# The rollups summed per minute alone, for the questions asked of all traffic: totals,
# trends, gaps, the store's status (a week is ten thousand rows instead of a million; a
# query filtered on a service or route reads the table itself).
_PER_MINUTE = (
    "per_minute",
    "SELECT minute, sum(requests), sum(bytes), sum(latency_ms_sum), sum(latency_count) "
    "GROUP BY minute",
)

EVENTS = Table(
    "conflict_events",
    (
        ("ts", TS6),  # a request's time as logged: Envoy and Caddy log microseconds
        ("method", TEXT),
        ("path", TEXT),
        ("query", TEXT),
        ("route", TEXT),
        ("resource_ids", "Array(String)"),
        ("status", "Int16"),
        ("error_code", TEXT),
        ("kind", TEXT),
        ("kind_rule", TEXT),
        ("client", TEXT),
        ("user_agent", TEXT),
        ("bytes", "Nullable(Int64)"),
        ("latency_ms", "Nullable(Float64)"),
        ("service", TEXT),
        ("upstream", TEXT),
        ("request_id", TEXT),
        ("source_id", "Int64"),
        ("`offset`", "Int64"),
        ("raw_line", f"{TEXT} CODEC(ZSTD(3))"),
        _AGENT,
    ),
    order_by="(service, route, method, ts)",
    partition_by="toDate(ts)",
    ttl_column="ts",
    dedup=True,
)

ROLLUPS = Table(
    "request_rollups",
    (
        ("minute", TS),
        ("service", TEXT),
        ("method", TEXT),
        ("route", TEXT),
        ("status", "Int16"),
        ("requests", "Int64"),
        ("bytes", "Int64"),
        ("latency_ms_sum", "Float64"),
        ("latency_count", "Int64"),
        _AGENT,
    ),
    engine="SummingMergeTree",
    engine_args="(requests, bytes, latency_ms_sum, latency_count)",
    order_by="(service, route, method, minute, status, agent)",
    partition_by="toDate(minute)",
    ttl_column="minute",
    dedup=True,
    projections=(_PER_MINUTE,),
)

REJECTS = Table(
    "rejects",
    (
        ("source_id", "Int64"),
        ("`offset`", "Int64"),
        ("reason", "LowCardinality(String)"),
        ("sample", "String"),
        ("seen_at", TS6),
        _AGENT,
    ),
    order_by="(source_id, `offset`)",
    partition_by="toDate(seen_at)",
    ttl_column="seen_at",
    dedup=True,
)

SOURCES = Table(
    "sources",
    (
        ("source_id", "Int64"),
        ("device", "UInt64"),
        ("inode", "UInt64"),
        ("fingerprint", "String"),
        ("fingerprint_len", "Int32"),
        ("path", "String"),
        ("format", TEXT),
        ("log_format", TEXT),
        ("`offset`", "Int64"),
        ("lines", "Int64"),
        ("rejects", "Int64"),
        ("conflicts", "Int64"),
        ("first_seen", TS6),
        ("updated_at", TS6),
        _AGENT,
    ),
    engine="ReplacingMergeTree",
    engine_args="updated_at",
    order_by="(agent, source_id)",
    dedup=True,
)

_CLUSTER = (("service", TEXT), ("method", TEXT), ("route", TEXT))
_SLOT_KEY = "(service, route, method, slot)"

CONFLICT_SUMMARIES = tuple(
    Table(
        name,
        (("slot", TS), *_CLUSTER, ("error_code", TEXT), ("kind", TEXT), ("conflicts", "Int64")),
        engine="SummingMergeTree",
        engine_args="conflicts",
        order_by="(service, route, method, slot, error_code, kind)",
        partition_by="toYYYYMM(slot)",
        ttl_column="slot",
        dedup=True,  # a repeated insert into the source repeats none into the view
    )
    for name in ("conflict_hours", "conflict_slots")
)
REQUEST_SUMMARIES = tuple(
    Table(
        name,
        (("slot", TS), *_CLUSTER, ("requests", "Int64")),
        engine="SummingMergeTree",
        engine_args="requests",
        order_by=_SLOT_KEY,
        partition_by="toYYYYMM(slot)",
        ttl_column="slot",
        dedup=True,  # a repeated insert into the source repeats none into the view
    )
    for name in ("request_hours", "request_slots")
)

ROUTE_MAP = Table(
    "route_map",
    (("route", "String"), ("mapped", "String"), ("origin", "String"), ("updated_at", TS6)),
    engine="ReplacingMergeTree",
    engine_args="updated_at",
    order_by="route",
)

ALERT_OUTBOX = Table(
    "alert_outbox",
    (
        ("id", "Int64"),
        ("created_at", TS6),
        ("channel", "String"),
        ("rule", "String"),
        ("fingerprint", "String"),
        ("status", "LowCardinality(String)"),
        ("payload", "String"),
        ("attempts", "Int32"),
        ("next_attempt_at", TS6),
        ("delivered_at", f"Nullable({TS6})"),
        ("last_error", TEXT),
    ),
    engine="ReplacingMergeTree",
    order_by="id",
)

ALERT_STATE = Table(
    "alert_state",
    (
        ("rule", "String"),
        ("fingerprint", "String"),
        ("labels", "String"),
        ("state", "LowCardinality(String)"),
        ("active_since", f"Nullable({TS6})"),
        ("firing_since", f"Nullable({TS6})"),
        ("last_condition_at", f"Nullable({TS6})"),
        ("resolved_at", f"Nullable({TS6})"),
        ("last_value", "Nullable(Float64)"),
        ("last_notified_at", f"Nullable({TS6})"),
        ("updated_at", TS6),
    ),
    engine="ReplacingMergeTree",
    engine_args="updated_at",
    order_by="(rule, fingerprint)",
)

ALERT_SILENCES = Table(
    "alert_silences",
    (
        ("id", "Int64"),
        ("matchers", "String"),
        ("starts_at", TS6),
        ("ends_at", TS6),
        ("comment", "String DEFAULT ''"),
        ("created_at", TS6),
    ),
    engine="ReplacingMergeTree",
    order_by="id",
)

ANNOTATIONS = Table(
    "annotations",
    (
        ("id", "Int64"),
        ("`at`", TS6),
        ("text", "String"),
        ("service", TEXT),
        ("created_at", TS6),
    ),
    engine="ReplacingMergeTree",
    order_by="id",
)

HOUR_INVALIDATIONS = Table("hour_invalidations", (("hour", TS),), order_by="hour")

TABLES: tuple[Table, ...] = (
    EVENTS,
    ROLLUPS,
    REJECTS,
    SOURCES,
    *CONFLICT_SUMMARIES,
    *REQUEST_SUMMARIES,
    ROUTE_MAP,
    ALERT_OUTBOX,
    ALERT_STATE,
    ALERT_SILENCES,
    ANNOTATIONS,
    HOUR_INVALIDATIONS,
)

# Summary target -> (source table, time column, bucket expression, kept columns, count).
_MV_SOURCES: dict[str, tuple[str, str, str]] = {
    "conflict_hours": (
        "conflict_events",
        "toStartOfHour(ts)",
        "error_code, kind, toInt64(count()) AS conflicts",
    ),
    "conflict_slots": (
        "conflict_events",
        "toStartOfFiveMinutes(ts)",
        "error_code, kind, toInt64(count()) AS conflicts",
    ),
    "request_hours": ("request_rollups", "toStartOfHour(minute)", "sum(requests) AS requests"),
    "request_slots": (
        "request_rollups",
        "toStartOfFiveMinutes(minute)",
        "sum(requests) AS requests",
    ),
}

# The newest hour of rollups is still filling; everything before it is summarised (the views
# keep the summaries complete): the same watermark DuckDB's refresh keeps. A DateTime64 like
# DuckDB's TIMESTAMP: toStartOfHour alone gives a DateTime, which reaches Arrow as a bare
# UInt32, and readers that want a time would take the store for one never summarised.
_WATERMARK_VIEW = (
    "SELECT toDateTime64(toStartOfHour(max(minute)), 3, 'UTC') AS complete_before "
    "FROM {database}.request_rollups"
)

SUMMARY_TABLES = tuple(_MV_SOURCES)
VIEWS = ("hours_watermark",)


def _engine(table: Table, database: str, cluster: str | None) -> str:
    if cluster is None:
        return f"{table.engine}({table.engine_args})"
    path = f"'/clickhouse/tables/{{shard}}/{database}/{table.name}', '{{replica}}'"
    args = f"{path}, {table.engine_args}" if table.engine_args else path
    return f"Replicated{table.engine}({args})"


def _local(name: str, cluster: str | None) -> str:
    """Data lives in ``<name>_local`` on a cluster; ``<name>`` is the Distributed table."""
    return f"{name}_local" if cluster else name


def _on(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""


def create_table(table: Table, database: str, cluster: str | None, retention_days: int) -> str:
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in table.columns)
    lines = [
        f"CREATE TABLE IF NOT EXISTS {database}.{_local(table.name, cluster)}{_on(cluster)} (",
        f"    {columns}",
        f") ENGINE = {_engine(table, database, cluster)}",
    ]
    if table.partition_by:
        lines.append(f"PARTITION BY {table.partition_by}")
    lines.append(f"ORDER BY {table.order_by}")
    if table.ttl_column:
        lines.append(f"TTL toDateTime({table.ttl_column}) + INTERVAL {retention_days} DAY")
    lines.append(f"SETTINGS {table.settings()}")
    return "\n".join(lines)


def add_projections(table: Table, database: str, cluster: str | None) -> list[str]:
    """The table's projections, added after it is created (and after its Distributed table,
    which copies the columns only): a store created before them gets them too, and the parts
    it wrote before are read without them until merged or MATERIALIZE PROJECTION."""
    if not table.projections:
        return []
    target = f"{database}.{_local(table.name, cluster)}{_on(cluster)}"
    return [
        f"ALTER TABLE {target} MODIFY SETTING deduplicate_merge_projection_mode = "
        f"'{PROJECTION_MODE}'",
        *(
            f"ALTER TABLE {target} ADD PROJECTION IF NOT EXISTS {name} ({select})"
            for name, select in table.projections
        ),
    ]


def create_distributed(table: Table, database: str, cluster: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name}{_on(cluster)} "
        f"AS {database}.{table.name}_local "
        f"ENGINE = Distributed({cluster}, {database}, {table.name}_local, rand())"
    )


def create_summary_view(target: str, database: str, cluster: str | None) -> str:
    # names from this module and identifiers checked by ddl()
    source, bucket, rest = _MV_SOURCES[target]
    keys = "slot, service, method, route" + (", error_code, kind" if "kind" in rest else "")
    select = f"SELECT {bucket} AS slot, service, method, route, {rest} "
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{target}_mv{_on(cluster)} "
        f"TO {database}.{_local(target, cluster)} AS {select}"
        f"FROM {database}.{_local(source, cluster)} GROUP BY {keys}"
    )


def ddl(
    database: str = DEFAULT_DATABASE,
    cluster: str | None = None,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> list[str]:
    """Every statement that creates the store, in order; each one idempotent."""
    for what, name in (("database", database), ("cluster", cluster)):
        if name is not None and not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"{what} must be letters, digits and _ only, not {name!r}")
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(
            f"retention_days must be from 1 to {MAX_RETENTION_DAYS}, not {retention_days}"
        )
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}{_on(cluster)}"]
    for table in TABLES:
        statements.append(create_table(table, database, cluster, retention_days))
        if cluster:
            statements.append(create_distributed(table, database, cluster))
        statements.extend(add_projections(table, database, cluster))
    statements.extend(create_summary_view(name, database, cluster) for name in SUMMARY_TABLES)
    # OR REPLACE: a view holds no data, and `clickhouse init` run again brings an older
    # store's view up to date.
    statements.append(
        f"CREATE OR REPLACE VIEW {database}.hours_watermark{_on(cluster)} AS "
        + _WATERMARK_VIEW.format(database=database)
    )
    return statements


def apply(
    client: Any,
    database: str = DEFAULT_DATABASE,
    cluster: str | None = None,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> list[str]:
    """Create whatever is missing (safe to run again); return the statements run.

    ``client`` is a clickhouse_connect Client (``command`` runs one statement)."""
    statements = ddl(database, cluster, retention_days)
    for statement in statements:
        client.command(statement)
    return statements


def table_names() -> Sequence[str]:
    """The tables the catalog reads, as named in both stores."""
    return (*(t.name for t in TABLES), *VIEWS)
