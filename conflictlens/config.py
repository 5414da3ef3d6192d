"""The config file (``conflictlens.toml``): where the store is and how logs are imported.

Looked for at ``--config``, else ``$CONFLICTLENS_CONFIG``, else ``./conflictlens.toml`` when it
exists. Every invalid value is refused with the exact key and the reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashboard.passwords import is_password_hash
from ingest import CONFLICT_STATUSES, IngestOptions, KindRule, RouteRule
from store import default_db_path

if TYPE_CHECKING:
    # analysis/ is imported only for a config that has [alerts] or [reports], or when they
    # are asked for: `conflictlens ingest` starts 20 ms sooner without it.
    from analysis.alerts.config import ChannelParser
    from analysis.alerts.rules import AlertsConfig
    from analysis.reports.config import ReportsConfig

DEFAULT_CONFIG = "conflictlens.toml"


class ConfigError(ValueError):
    """An invalid config file; the message names the file, the key and the reason."""


@dataclass(frozen=True)
class SourceConfig:
    """One [[sources]] entry: files to follow."""

    path: str  # a glob
    format: str = "auto"
    log_format: str | None = None
    start: str = "beginning"  # or "end", for files present at first start
    service: str | None = None


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8409
    token: str | None = None  # required to bind beyond loopback; or $CONFLICTLENS_TOKEN
    flush_ms: int = 500


@dataclass(frozen=True)
class DashboardConfig:
    # The login's password hash (`conflictlens dashboard --hash-password`); required to show
    # the dashboard beyond loopback. $CONFLICTLENS_DASHBOARD_PASSWORD_HASH overrides it.
    password_hash: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    db: Path = field(default_factory=default_db_path)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    json_fields: dict[str, Any] | None = None  # the mapping for --format json
    sources: tuple[SourceConfig, ...] = ()
    serve: ServeConfig = field(default_factory=ServeConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    alerts_section: AlertsConfig | None = None  # None: the file has no [alerts]
    reports_section: ReportsConfig | None = None  # None: the file has no [reports]

    @property
    def alerts(self) -> AlertsConfig:
        return self.alerts_section if self.alerts_section is not None else _no_alerts()

    @property
    def reports(self) -> ReportsConfig:
        return self.reports_section if self.reports_section is not None else _no_reports()


@functools.cache
def _no_alerts() -> AlertsConfig:
    from analysis.alerts.rules import AlertsConfig

    return AlertsConfig()


@functools.cache
def _no_reports() -> ReportsConfig:
    from analysis.reports.config import ReportsConfig

    return ReportsConfig()


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("CONFLICTLENS_CONFIG")
    if env:
        return Path(env)
    local = Path(DEFAULT_CONFIG)
    return local if local.exists() else None


def load_config(explicit: str | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        return parse_config({})  # no file: the environment ($CONFLICTLENS_TOKEN) still counts
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path) if path else "config"
    known = {
        "db",
        "ingest",
        "routes",
        "kinds",
        "sources",
        "alerts",
        "reports",
        "serve",
        "dashboard",
    }
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    db = data.get("db")
    if db is not None and not isinstance(db, str):
        raise ConfigError(f"{where}: db: expected a path string")
    db_path = Path(os.environ.get("CONFLICTLENS_DB") or db or default_db_path())
    if db and path and not Path(db).is_absolute() and not os.environ.get("CONFLICTLENS_DB"):
        db_path = path.parent / db  # relative to the config file, like most tools
    alerts = _alerts(data["alerts"], where, path) if "alerts" in data else None
    reports = None
    if "reports" in data:
        from analysis.reports.config import parse_reports

        try:
            reports = parse_reports(
                data["reports"],
                where,
                base_dir=path.parent if path else None,
                channels=set(alerts.channels) if alerts is not None else set(),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None  # its messages already start with where
    return Config(
        path=path,
        db=db_path,
        ingest=_ingest_options(data, where),
        json_fields=_json_fields(data, where),
        sources=_sources(data.get("sources", []), where),
        serve=_serve(data.get("serve", {}), where),
        dashboard=_dashboard(data.get("dashboard", {}), where),
        alerts_section=alerts,
        reports_section=reports,
    )


def _json_fields(data: dict[str, Any], where: str) -> dict[str, Any] | None:
    fields = (
        data.get("ingest", {}).get("json_fields") if isinstance(data.get("ingest"), dict) else None
    )
    if fields is not None and not isinstance(fields, dict):
        raise ConfigError(f'{where}: ingest.json_fields: expected a table of field = "$.json.path"')
    return fields


def _sources(entries: Any, where: str) -> tuple[SourceConfig, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: sources: expected [[sources]] entries")
    known = {"path", "format", "log_format", "start", "service"}
    parsed = []
    for number, entry in enumerate(entries, start=1):
        at = f"{where}: sources[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at}: expected a table")
        for key in entry:
            if key not in known:
                raise ConfigError(f"{at}.{key}: unknown key (known: {', '.join(sorted(known))})")
        if not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ConfigError(f"{at}.path: expected a file path or glob")
        for key in ("format", "log_format", "service"):
            if key in entry and not isinstance(entry[key], str):
                raise ConfigError(f"{at}.{key}: expected a string")
        start = entry.get("start", "beginning")
        if start not in ("beginning", "end"):
            raise ConfigError(f'{at}.start: expected "beginning" or "end"')
        path = entry["path"]
        if where != "config" and not Path(path).is_absolute():
            path = str(Path(where).parent / path)
        parsed.append(
            SourceConfig(
                path,
                entry.get("format", "auto"),
                entry.get("log_format"),
                start,
                entry.get("service"),
            )
        )
    return tuple(parsed)


def _serve(section: Any, where: str) -> ServeConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [serve] must be a table")
    known = {"host", "port", "token", "flush_ms"}
    for key in section:
        if key not in known:
            raise ConfigError(
                f"{where}: serve.{key}: unknown key (known: {', '.join(sorted(known))})"
            )
    host = section.get("host", "127.0.0.1")
    port = section.get("port", 8409)
    token = section.get("token") or os.environ.get("CONFLICTLENS_TOKEN") or None
    flush_ms = section.get("flush_ms", 500)
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}: serve.host: expected an address")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}: serve.port: expected a port number")
    if token is not None and (
        not isinstance(token, str) or len(token) < 16 or any(c.isspace() for c in token)
    ):
        raise ConfigError(
            f"{where}: serve.token: expected at least 16 characters without spaces "
            "(from the config or CONFLICTLENS_TOKEN)"
        )
    if not isinstance(flush_ms, int) or flush_ms < 10:
        raise ConfigError(f"{where}: serve.flush_ms: expected milliseconds (at least 10)")
    return ServeConfig(host, port, token, flush_ms)


def _dashboard(section: Any, where: str) -> DashboardConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [dashboard] must be a table")
    for key in section:
        if key != "password_hash":
            raise ConfigError(f"{where}: dashboard.{key}: unknown key (known: password_hash)")
    stored = section.get("password_hash")
    if stored is not None and not (isinstance(stored, str) and is_password_hash(stored)):
        raise ConfigError(
            f"{where}: dashboard.password_hash: expected a hash from "
            "`conflictlens dashboard --hash-password`, not a password"
        )
    return DashboardConfig(password_hash=stored)


def _ingest_options(data: dict[str, Any], where: str) -> IngestOptions:
    section = data.get("ingest", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [ingest] must be a table")
    known = {
        "capture_statuses",
        "keep_all",
        "keep_query",
        "anonymize_clients",
        "max_line_bytes",
        "service",
        "json_fields",
        "earliest",
        "latest",
    }
    for key in section:
        if key not in known:
            raise ConfigError(
                f"{where}: ingest.{key}: unknown key (known: {', '.join(sorted(known))})"
            )
    statuses = section.get("capture_statuses", sorted(CONFLICT_STATUSES))
    if not isinstance(statuses, list) or not all(
        isinstance(s, int) and 100 <= s <= 599 for s in statuses
    ):
        raise ConfigError(
            f"{where}: ingest.capture_statuses: expected a list of HTTP statuses (100-599)"
        )
    flags = {}
    for key in ("keep_all", "keep_query", "anonymize_clients"):
        value = section.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: ingest.{key}: expected true or false")
        flags[key] = value
    max_line = section.get("max_line_bytes", IngestOptions.max_line_bytes)
    if not isinstance(max_line, int) or max_line < 256:
        raise ConfigError(
            f"{where}: ingest.max_line_bytes: expected a whole number of at least 256"
        )
    service = section.get("service")
    if service is not None and not isinstance(service, str):
        raise ConfigError(f"{where}: ingest.service: expected a string")
    earliest = _day(section, "earliest", IngestOptions.earliest, where)
    latest = _day(section, "latest", IngestOptions.latest, where)
    if latest <= earliest:
        raise ConfigError(f"{where}: ingest.latest: must be after ingest.earliest")
    return IngestOptions(
        capture_statuses=frozenset(statuses),
        max_line_bytes=max_line,
        service=service,
        route_rules=_route_rules(data.get("routes", []), where),
        kind_rules=_kind_rules(data.get("kinds", []), where),
        keep_all=flags["keep_all"],
        keep_query=flags["keep_query"],
        anonymize_clients=flags["anonymize_clients"],
        earliest=earliest,
        latest=latest,
    )


def _day(section: dict[str, Any], key: str, default: dt.datetime, where: str) -> dt.datetime:
    """A TOML date (or date-time, UTC) bounding the timestamps an import accepts."""
    value = section.get(key, default)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise ConfigError(f"{where}: ingest.{key}: expected a date such as 2000-01-01")


def _route_rules(rules: Any, where: str) -> tuple[RouteRule, ...]:
    return tuple(
        RouteRule(p, r) for p, r in _pattern_rules(rules, where, "routes", "route", RouteRule)
    )


def _kind_rules(rules: Any, where: str) -> tuple[KindRule, ...]:
    return tuple(KindRule(p, k) for p, k in _pattern_rules(rules, where, "kinds", "kind", KindRule))


def _pattern_rules(
    rules: Any, where: str, table: str, target: str, rule_class: Callable[[str, str], object]
) -> list[tuple[str, str]]:
    """[[routes]] / [[kinds]] entries: exactly ``pattern`` and ``target``, both non-empty
    strings, and a pattern the rule class accepts."""
    if not isinstance(rules, list):
        raise ConfigError(f"{where}: {table}: expected [[{table}]] entries")
    parsed = []
    for number, rule in enumerate(rules, start=1):
        at = f"{where}: {table}[{number}]"
        if not isinstance(rule, dict) or set(rule) != {"pattern", target}:
            raise ConfigError(f"{at}: expected exactly the keys pattern and {target}")
        if not all(isinstance(rule[k], str) and rule[k] for k in ("pattern", target)):
            raise ConfigError(f"{at}: pattern and {target} must be non-empty strings")
        try:
            rule_class(rule["pattern"], rule[target])
        except ValueError as exc:
            field = "pattern" if "regex" in str(exc) else target
            raise ConfigError(f"{at}.{field}: {exc}") from None
        parsed.append((rule["pattern"], rule[target]))
    return parsed


def _alerts(section: Any, where: str, path: Path | None) -> AlertsConfig:
    """[alerts]: rules, silences and channels (analysis.alerts.config says what is valid)."""
    from analysis.alerts.config import parse_alerts

    try:
        return parse_alerts(section, _channel_parser(path))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _channel_parser(path: Path | None) -> ChannelParser | None:
    """notify.config validates [alerts.channels.NAME] (secrets files relative to the config
    file); without notify/ the channels are kept as tables and only the names rules use are
    checked."""
    try:
        from notify.config import parse_channels
    except ImportError:
        return None
    base_dir = path.parent if path else None

    def parse(table: dict[str, Any], where: str) -> Mapping[str, Any]:
        return parse_channels(table, where, base_dir=base_dir)

    return parse
