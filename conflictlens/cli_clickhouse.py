"""``conflictlens clickhouse``: the ClickHouse store of a fleet: print its schema, or create it
on the server named by the config's ``[store]`` table."""

from __future__ import annotations

import tomllib
from typing import Any

import click

from conflictlens._errors import ConfigError
from conflictlens.cli_support import friendly_errors
from conflictlens.settings import StoreSettings

_DATABASE = click.option("--database", help="The database (default: [store] database).")
_RETENTION = click.option(
    "--retention-days",
    type=click.IntRange(1, 36_500),
    help="Days events and rollups are kept (default: [store] retention_days).",
)
_CLUSTER = click.option(
    "--cluster", help="Create it ON CLUSTER: replicated tables and Distributed ones over them."
)
_CONFIG = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="Config file."
)


def store_settings(config_file: str | None) -> StoreSettings:
    """The config's [store] table (defaults when there is no config file)."""
    from conflictlens.config import find_config, parse_config
    from conflictlens.settings import ConfigFile

    path = find_config(config_file)
    if path is None:
        return StoreSettings()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    parse_config(data, path)  # the whole file checked first: its errors name the key
    return ConfigFile.model_validate(data).store


@click.group()
def clickhouse() -> None:
    """The ClickHouse store shared by a fleet of gateways (the [store] table).

    Example:

        conflictlens clickhouse schema --cluster main > schema.sql
    """


@clickhouse.command()
@_CONFIG
@_DATABASE
@_CLUSTER
@_RETENTION
@friendly_errors
def schema(
    config_file: str | None, database: str | None, cluster: str | None, retention_days: int | None
) -> None:
    """Print the statements that create the ClickHouse store.

    Example:

        conflictlens clickhouse schema --cluster main --database conflictlens > schema.sql
    """
    from conflictlens.store.clickhouse.schema import ddl

    settings = store_settings(config_file)
    try:
        statements = ddl(
            database or settings.database, cluster, retention_days or settings.retention_days
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    click.echo(";\n\n".join(statements) + ";")


@clickhouse.command()
@_CONFIG
@_CLUSTER
@friendly_errors
def init(config_file: str | None, cluster: str | None) -> None:
    """Create the ClickHouse store named by [store] (safe to run again).

    Example:

        conflictlens clickhouse init --config conflictlens.toml
    """
    from conflictlens.store.clickhouse import state as serve_state
    from conflictlens.store.clickhouse.connection import connect
    from conflictlens.store.clickhouse.schema import apply

    settings = store_settings(config_file)
    if settings.backend != "clickhouse":
        raise ConfigError('[store] backend is not "clickhouse": nothing to create')
    client = connect(settings, with_database=False)  # it may not exist yet
    try:
        statements = apply(client, settings.database, cluster, settings.retention_days)
        # serve's own state (claims, outbox keys, report archive): several replicas share it
        statements += serve_state.apply(client, settings.database, settings.retention_days)
    except Exception as exc:
        from conflictlens._errors import StoreError, first_line

        raise StoreError(f"ClickHouse refused the schema: {first_line(exc)}") from None
    click.echo(f"{settings.database}: {len(statements)} statements applied at {settings.url}")
