"""From the config file's ``[agent]`` and ``[[sources]]`` (and the command's options) to the
agent's options."""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path

from conflictlens._errors import ConfigError
from conflictlens.agent.runner import AgentOptions
from conflictlens.config import Config
from conflictlens.ingest.formats import FormatError
from conflictlens.ingest.tail import SourceSpec
from conflictlens.settings import AgentSettings, ConfigFile
from conflictlens.store.clickhouse.shipper import Shipper


def agent_settings(config: Config) -> AgentSettings:
    """The ``[agent]`` table of the loaded config (load_config validated the file already)."""
    if config.path is None:
        return AgentSettings()
    data = tomllib.loads(config.path.read_text(encoding="utf-8"))
    return ConfigFile.model_validate(data).agent


@dataclass(frozen=True)
class StoreTarget:
    """What store.clickhouse.connection.connect reads (its StoreConfig)."""

    url: str
    database: str
    user: str | None
    password_env: str | None
    password_file: Path | None
    verify: bool
    ca_cert: Path | None


def _relative(path: str | None, config: Config) -> Path | None:
    if path is None:
        return None
    if config.path is not None and not Path(path).is_absolute():
        return config.path.parent / path
    return Path(path)


def source_specs(config: Config, globs: tuple[str, ...], fmt: str) -> list[SourceSpec]:
    """The ``[[sources]]`` of the config, and the globs given on the command line."""
    specs = []
    for number, source in enumerate(config.sources, start=1):
        try:
            specs.append(
                SourceSpec(
                    source.path,
                    source.format,
                    source.log_format,
                    source.start,
                    source.service,
                    options=config.ingest,
                )
            )
        except (ValueError, FormatError) as exc:
            raise ConfigError(f"sources[{number}] ({source.path}): {exc}") from None
    for glob in globs:
        try:
            specs.append(SourceSpec(glob, fmt, options=config.ingest))
        except (ValueError, FormatError) as exc:
            raise ConfigError(f"--source {glob}: {exc}") from None
    if not specs:
        raise ConfigError("nothing to follow: give [[sources]] in the config or --source GLOB")
    return specs


def agent_options(
    config: Config,
    *,
    name: str | None,
    state: str | None,
    url: str | None,
    database: str | None,
    globs: tuple[str, ...] = (),
    fmt: str = "auto",
) -> AgentOptions:
    """The agent's options: the command's options over the config's ``[agent]``."""
    from conflictlens.store.clickhouse.connection import connect

    section = agent_settings(config)
    store_url = url or section.url
    if not store_url:
        raise ConfigError("no store: set [agent] url in the config or give --url")
    target = StoreTarget(
        store_url,
        database or section.database,
        section.user,
        section.password_env,
        _relative(section.password_file, config),
        section.verify,
        _relative(section.ca_cert, config),
    )
    state_path = Path(state) if state else _relative(section.state, config)
    assert state_path is not None
    return AgentOptions(
        name=name or section.name or socket.gethostname(),
        state=state_path,
        specs=source_specs(config, globs, fmt),
        connect=lambda: Shipper(connect(target), target.database),
        ship_interval_s=section.ship_interval_ms / 1000,
        max_buffer_bytes=section.max_buffer_mb << 20,
        flush_ms=section.flush_ms,
    )
