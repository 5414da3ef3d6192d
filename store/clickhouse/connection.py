"""Opening a ClickHouse store from the ``[store]`` settings: a server over HTTP(S), or chDB
(ClickHouse's engine in-process, ``chdb:///a/folder`` or ``chdb://memory``) for tests."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from conflictlens._errors import StoreError, first_line

INSTALL_HINT = "pip install 'conflictlens[clickhouse]'"
CHDB_HINT = "pip install 'conflictlens[chdb]'"


class StoreConfig(Protocol):
    """What connect() reads: the ``[store]`` table (conflictlens.settings.StoreSettings)."""

    @property
    def url(self) -> str: ...
    @property
    def database(self) -> str: ...
    @property
    def user(self) -> str | None: ...
    @property
    def password_env(self) -> str | None: ...
    @property
    def password_file(self) -> Path | None: ...
    @property
    def verify(self) -> bool: ...
    @property
    def ca_cert(self) -> Path | None: ...


def clickhouse_connect() -> Any:
    """The clickhouse_connect module, imported only when a ClickHouse store is used."""
    try:
        return importlib.import_module("clickhouse_connect")
    except ImportError:
        raise StoreError(f"the ClickHouse store needs clickhouse-connect: {INSTALL_HINT}") from None


def password(config: StoreConfig) -> str | None:
    """The password from the named environment variable or file (never from the config)."""
    if config.password_env:
        value = os.environ.get(config.password_env)
        if value is None:
            raise StoreError(
                f"[store] password_env: environment variable {config.password_env} is not set"
            )
        return value
    if config.password_file:
        try:
            return Path(config.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StoreError(f"[store] password_file: {first_line(exc)}") from None
    return None


def connect(config: StoreConfig, *, with_database: bool = True) -> Any:
    """A clickhouse_connect Client on the configured server (and database, which must exist
    unless ``with_database`` is false: `clickhouse init` creates it)."""
    module = clickhouse_connect()
    url = config.url
    database = config.database if with_database else None
    try:
        if url.startswith("chdb://"):
            if importlib.util.find_spec("chdb") is None:
                raise StoreError(f"a chdb:// store needs chDB: {CHDB_HINT}")
            return module.get_client(dsn=url, database=database)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(
                f"[store] url must be http(s)://host[:port] or chdb://folder, not {url!r}"
            )
        secure = parts.scheme == "https"
        return module.get_client(
            host=parts.hostname,
            port=parts.port or (8443 if secure else 8123),
            username=config.user or "default",
            password=password(config) or "",
            database=database or "",
            secure=secure,
            verify=config.verify,
            ca_cert=str(config.ca_cert) if config.ca_cert else None,
        )
    except StoreError:
        raise
    except Exception as exc:  # the driver's errors have no common base worth naming
        raise StoreError(f"cannot connect to ClickHouse at {url}: {first_line(exc)}") from None
