"""The config file (``conflictlens.toml``): where the store is and how logs are imported.

Looked for at ``--config``, else ``$CONFLICTLENS_CONFIG``, else ``./conflictlens.toml`` when it
exists. Every invalid value is refused with the exact key and the reason.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from conflictlens._errors import ConfigError as ConfigError
from conflictlens._settings import first_error
from conflictlens.ingest import IngestOptions
from conflictlens.settings import (
    AgentSettings,
    ConfigFile,
    DashboardSettings,
    ServeSettings,
    SourceSettings,
    StoreSettings,
)
from conflictlens.store import default_db_path

if TYPE_CHECKING:
    # analysis/ is imported only for a config that has [alerts] or [reports], or when they
    # are asked for: `conflictlens ingest` starts 20 ms sooner without it.
    from conflictlens.analysis.alerts.config import ChannelParser
    from conflictlens.analysis.alerts.rules import AlertsConfig
    from conflictlens.analysis.reports.config import ReportsConfig

DEFAULT_CONFIG = "conflictlens.toml"


# The sections as loaded: the models that declare them (conflictlens.settings).
SourceConfig = SourceSettings
ServeConfig = ServeSettings
DashboardConfig = DashboardSettings


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    db: Path = field(default_factory=default_db_path)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    json_fields: dict[str, Any] | None = None  # the mapping for --format json
    sources: tuple[SourceConfig, ...] = ()
    serve: ServeConfig = field(default_factory=ServeConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    store: StoreSettings = field(default_factory=StoreSettings)  # [store]: DuckDB or ClickHouse
    agent: AgentSettings = field(default_factory=AgentSettings)  # [agent]: a gateway node's
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
    from conflictlens.analysis.alerts.rules import AlertsConfig

    return AlertsConfig()


@functools.cache
def _no_reports() -> ReportsConfig:
    from conflictlens.analysis.reports.config import ReportsConfig

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
    data = _with_environment(data)
    try:
        file = ConfigFile.model_validate(data)
        ingest = file.ingest_options()
    except ValidationError as exc:
        raise ConfigError(f"{where}: {first_error(exc, ConfigFile)}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    db_path = Path(os.environ.get("CONFLICTLENS_DB") or file.db or default_db_path())
    if (
        file.db
        and path
        and not Path(file.db).is_absolute()
        and not os.environ.get("CONFLICTLENS_DB")
    ):
        db_path = path.parent / file.db  # relative to the config file, like most tools
    alerts = _alerts(file.alerts, where, path) if file.alerts is not None else None
    reports = None
    if file.reports is not None:
        from conflictlens.analysis.reports.config import parse_reports

        try:
            reports = parse_reports(
                file.reports,
                where,
                base_dir=path.parent if path else None,
                channels=set(alerts.channels) if alerts is not None else set(),
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None  # its messages already start with where
    return Config(
        path=path,
        db=db_path,
        ingest=ingest,
        json_fields=file.ingest.json_fields,
        sources=tuple(_relative_to(source, path) for source in file.sources),
        serve=file.serve,
        dashboard=file.dashboard,
        store=_store_relative_to(file.store, path),
        agent=file.agent,
        alerts_section=alerts,
        reports_section=reports,
    )


def _store_relative_to(store: StoreSettings, path: Path | None) -> StoreSettings:
    """The store's password and CA files relative to the config file, like the other paths."""
    if path is None:
        return store
    return store.model_copy(
        update={
            name: path.parent / value
            for name in ("password_file", "ca_cert")
            if (value := getattr(store, name)) is not None and not value.is_absolute()
        }
    )


def _with_environment(data: dict[str, Any]) -> dict[str, Any]:
    """$CONFLICTLENS_TOKEN stands in for a serve.token the file does not set."""
    env = os.environ.get("CONFLICTLENS_TOKEN")
    serve = data.get("serve", {})
    if not env or not isinstance(serve, dict) or serve.get("token"):
        return data
    return {**data, "serve": {**serve, "token": env}}


def _relative_to(source: SourceSettings, path: Path | None) -> SourceSettings:
    """A source's relative path is relative to the config file's folder."""
    if path is None or Path(source.path).is_absolute():
        return source
    return source.model_copy(update={"path": str(path.parent / source.path)})


def _alerts(section: Any, where: str, path: Path | None) -> AlertsConfig:
    """[alerts]: rules, silences and channels (analysis.alerts.config says what is valid)."""
    from conflictlens.analysis.alerts.config import parse_alerts

    try:
        return parse_alerts(section, _channel_parser(path))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _channel_parser(path: Path | None) -> ChannelParser | None:
    """notify.config validates [alerts.channels.NAME] (secrets files relative to the config
    file); without notify/ the channels are kept as tables and only the names rules use are
    checked."""
    try:
        from conflictlens.notify.config import parse_channels
    except ImportError:
        return None
    base_dir = path.parent if path else None

    def parse(table: dict[str, Any], where: str) -> Mapping[str, Any]:
        return parse_channels(table, where, base_dir=base_dir)

    return parse
