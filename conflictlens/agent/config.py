"""From the config file's ``[agent]`` and ``[[sources]]`` (and the command's options) to the
agent's options."""

from __future__ import annotations

import socket
from pathlib import Path

from conflictlens._errors import ConfigError
from conflictlens.agent.runner import AgentOptions
from conflictlens.config import Config
from conflictlens.ingest.formats import FormatError
from conflictlens.ingest.tail import SourceSpec
from conflictlens.serve_sources import configured_specs
from conflictlens.store.clickhouse.shipper import Shipper


def source_specs(config: Config, globs: tuple[str, ...], fmt: str) -> list[SourceSpec]:
    """The ``[[sources]]`` of the config, and the globs given on the command line."""
    try:
        specs = configured_specs(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
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
    from conflictlens.store.clickhouse.connection import clickhouse_connect, connect

    clickhouse_connect()  # a missing client is one line now, not an outage retried forever
    section = config.agent
    store = config.store
    if url is None and store.backend != "clickhouse":
        raise ConfigError(
            'no store: set [store] backend = "clickhouse" and its url in the config, or give --url'
        )
    overrides = {"url": url, "database": database}
    target = store.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    state_path = Path(state) if state else Path(section.state)
    if state is None and config.path is not None and not state_path.is_absolute():
        state_path = config.path.parent / state_path  # relative to the config file
    return AgentOptions(
        name=name or section.name or socket.gethostname(),
        state=state_path,
        specs=source_specs(config, globs, fmt),
        connect=lambda: Shipper(connect(target), target.database),
        ship_interval_s=section.ship_interval_ms / 1000,
        max_buffer_bytes=section.max_buffer_mb << 20,
        flush_ms=section.flush_ms,
    )
