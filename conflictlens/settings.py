"""The config file's shape, declared once: each key with its type, default, check and the
sentence that documents it. Loading (conflictlens.config), the errors that name the exact key,
and the config reference (docs/config.md) are all derived from these models.

[alerts] and [reports] are validated by their own parsers (analysis.alerts.config,
analysis.reports.config, notify.config) and kept here as tables.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from conflictlens._settings import Section
from conflictlens.dashboard.passwords import is_password_hash
from conflictlens.ingest import CONFLICT_STATUSES, IngestOptions, KindRule, RouteRule


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("expected a non-empty string")
    return value


def _token(value: str) -> str:
    if len(value) < 16 or any(c.isspace() for c in value):
        raise ValueError(
            "expected at least 16 characters without spaces (from the config or CONFLICTLENS_TOKEN)"
        )
    return value


def _password_hash(value: str) -> str:
    if not is_password_hash(value):
        raise ValueError(
            "expected a hash from `conflictlens dashboard --hash-password`, not a password"
        )
    return value


def _day(value: Any) -> dt.datetime:
    """A TOML date (midnight UTC) or date-time (UTC; an offset is converted)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise ValueError("expected a date such as 2000-01-01")


NonEmpty = Annotated[str, AfterValidator(_non_empty)]
Day = Annotated[dt.datetime, BeforeValidator(_day)]
Status = Annotated[int, Field(ge=100, le=599)]


class SourceSettings(Section):
    """One ``[[sources]]`` entry: files that ``serve`` follows."""

    path: NonEmpty = Field(description="A file path or glob; relative to the config file's folder.")
    format: str = Field("auto", description="The log format (see formats.md), or `auto`.")
    log_format: str | None = Field(
        None, description="An nginx `log_format` / Apache `LogFormat` string the files follow."
    )
    start: Literal["beginning", "end"] = Field(
        "beginning",
        description="Where to start in files present at the first start: `beginning` or `end`.",
    )
    service: str | None = Field(
        None, description="The service name stored with these files' events."
    )


class ServeSettings(Section):
    """``[serve]``: the process that owns the store and answers over HTTP."""

    host: NonEmpty = Field("127.0.0.1", description="The address the API binds to.")
    port: int = Field(8409, gt=0, lt=65536, description="The API's port.")
    token: Annotated[str, AfterValidator(_token)] | None = Field(
        None,
        description="Bearer token every request must carry; required to bind beyond loopback. "
        "`CONFLICTLENS_TOKEN` is used when this is not set.",
    )
    flush_ms: int = Field(
        500, ge=10, description="Followed lines are committed at least this often (ms)."
    )


class DashboardSettings(Section):
    """``[dashboard]``: the Streamlit dashboard serve starts."""

    password_hash: Annotated[str, AfterValidator(_password_hash)] | None = Field(
        None,
        description="The login's password hash (`conflictlens dashboard --hash-password`); "
        "required to show the dashboard beyond loopback. "
        "`CONFLICTLENS_DASHBOARD_PASSWORD_HASH` overrides it.",
    )


class IngestSettings(Section):
    """``[ingest]``: what an import keeps, for `ingest`, `serve` and OTLP intake alike."""

    capture_statuses: list[Status] = Field(
        default_factory=lambda: sorted(CONFLICT_STATUSES),
        description="The statuses stored as events (the conflict family by default).",
    )
    keep_all: bool = Field(False, description="Store every request as an event.")
    keep_query: bool = Field(
        False, description="Keep query strings (dropped by default: they often carry tokens)."
    )
    anonymize_clients: bool = Field(
        False, description="Store clients cut to their network (IPv4 /24, IPv6 /48)."
    )
    max_line_bytes: int = Field(
        IngestOptions.max_line_bytes, ge=256, description="Longer lines are rejects."
    )
    service: str | None = Field(
        None, description="The service stored with every event, over what the format logs."
    )
    json_fields: dict[str, Any] | None = Field(
        None,
        description='For `--format json`: a table of field = "$.json.path" (or a list of paths).',
    )
    earliest: Day = Field(
        IngestOptions.earliest,
        description="Times before this date are rejects (a broken clock, not a request).",
    )
    latest: Day = Field(IngestOptions.latest, description="Times from this date on are rejects.")


class AgentSettings(Section):
    """``[agent]``: `conflictlens agent` on a gateway node, shipping to the ClickHouse store
    that ``[store]`` names (its url, database, user and password)."""

    name: NonEmpty | None = Field(
        None,
        description="This node's name in the store (its `agent` column); the host name when "
        "not set. Keep it stable: it is part of every batch's deduplication token.",
    )
    state: NonEmpty = Field(
        "conflictlens-agent.duckdb",
        description="The local state file (checkpoints and the disk buffer); relative to the "
        "config file.",
    )
    ship_interval_ms: int = Field(
        2000, ge=1000, le=5000, description="Batches are shipped this often (ms)."
    )
    flush_ms: int = Field(
        1000, ge=10, description="Followed lines are cut into a batch at least this often (ms)."
    )
    max_buffer_mb: int = Field(
        1024,
        ge=1,
        description="Batches kept on disk while the store is unreachable; past this the agent "
        "stops reading until the store catches up (the logs hold the rest).",
    )


class RouteRuleSettings(Section):
    """One ``[[routes]]`` entry: paths matching `pattern` get the template `route`."""

    pattern: NonEmpty = Field(description="A regex matched against the whole path.")
    route: NonEmpty = Field(description="The route template those paths get.")


class KindRuleSettings(Section):
    """One ``[[kinds]]`` entry: error codes matching `pattern` are of `kind`."""

    pattern: NonEmpty = Field(description="A regex searched in the error code.")
    kind: NonEmpty = Field(description="The kind those codes get.")


class StoreSettings(Section):
    """``[store]``: where events are kept: the embedded DuckDB file (the default) or a
    ClickHouse server shared by a fleet of gateways (`conflictlens clickhouse init`)."""

    backend: Literal["duckdb", "clickhouse"] = Field(
        "duckdb", description="`duckdb` (the file named by `db`) or `clickhouse`."
    )
    url: str = Field(
        "http://localhost:8123",
        description="ClickHouse's HTTP(S) address, or `chdb:///a/folder` for chDB in-process.",
    )
    database: str = Field(
        "conflictlens",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The ClickHouse database holding the tables.",
    )
    user: str | None = Field(None, description="The ClickHouse user (default: `default`).")
    password_env: str | None = Field(
        None, description="The environment variable holding the ClickHouse password."
    )
    password_file: Path | None = Field(
        None, description="A file holding the ClickHouse password (when `password_env` is unset)."
    )
    verify: bool = Field(True, description="Check the server's TLS certificate (https).")
    ca_cert: Path | None = Field(
        None, description="A CA bundle to check the server's certificate with."
    )
    retention_days: int = Field(
        90, ge=1, le=20_000, description="Days events and rollups are kept in ClickHouse (TTL)."
    )


class ConfigFile(Section):
    """``conflictlens.toml``: looked for at ``--config``, ``$CONFLICTLENS_CONFIG``, then
    ``./conflictlens.toml``."""

    db: str | None = Field(
        None,
        description="The store's file; relative to the config file. `CONFLICTLENS_DB` overrides it.",
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Import options.")
    routes: list[RouteRuleSettings] = Field(
        default_factory=list, description="Route templates beyond the built-in ones."
    )
    kinds: list[KindRuleSettings] = Field(
        default_factory=list, description="Conflict kinds for error codes."
    )
    sources: list[SourceSettings] = Field(
        default_factory=list, description="Log files `serve` follows."
    )
    serve: ServeSettings = Field(default_factory=ServeSettings, description="The API server.")
    agent: AgentSettings = Field(
        default_factory=AgentSettings, description="A gateway node's agent (`conflictlens agent`)."
    )
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings, description="The dashboard."
    )
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="The store: DuckDB or ClickHouse."
    )
    # [alerts] and [reports] are validated by their own loaders, after the channels they
    # name; "declared_by" points the config reference at the models that declare them.
    alerts: dict[str, Any] | None = Field(
        None,
        description="Spike alerts: rules, silences and channels.",
        json_schema_extra={"declared_by": "conflictlens.analysis.alerts.settings:AlertsSettings"},
    )
    reports: dict[str, Any] | None = Field(
        None,
        description="The report archive and scheduled reports.",
        json_schema_extra={"declared_by": "conflictlens.analysis.reports.settings:ReportsSettings"},
    )

    def ingest_options(self) -> IngestOptions:
        section = self.ingest
        if section.latest <= section.earliest:
            raise ValueError("ingest.latest: must be after ingest.earliest")
        return IngestOptions(
            capture_statuses=frozenset(section.capture_statuses),
            max_line_bytes=section.max_line_bytes,
            service=section.service,
            route_rules=tuple(
                _rule(RouteRule, "routes", n, r.pattern, r.route) for n, r in _numbered(self.routes)
            ),
            kind_rules=tuple(
                _rule(KindRule, "kinds", n, r.pattern, r.kind) for n, r in _numbered(self.kinds)
            ),
            keep_all=section.keep_all,
            keep_query=section.keep_query,
            anonymize_clients=section.anonymize_clients,
            earliest=section.earliest,
            latest=section.latest,
        )


def _numbered(entries: list[Any]) -> list[tuple[int, Any]]:
    return list(enumerate(entries, start=1))


def _rule(cls: Any, table: str, number: int, pattern: str, target: str) -> Any:
    try:
        return cls(pattern, target)
    except ValueError as exc:
        field = "pattern" if "regex" in str(exc) else next(iter(_target_field(cls)))
        raise ValueError(f"{table}[{number}].{field}: {exc}") from None


def _target_field(cls: Any) -> list[str]:
    return [name for name in cls.__dataclass_fields__ if name != "pattern"]
