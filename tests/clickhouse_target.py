"""The ClickHouse the ClickHouse tests run on: chDB, its engine in-process (every `make test`),
or a real server when ``CONFLICTLENS_TEST_CLICKHOUSE_URL`` names one (`make test-clickhouse`,
the contract test: the same schema, deduplication and catalog tests against a server; how to
start one is in docs/fleet.md). The user and password come from
``CONFLICTLENS_TEST_CLICKHOUSE_USER`` and ``CONFLICTLENS_TEST_CLICKHOUSE_PASSWORD``."""

from __future__ import annotations

import os
from typing import Any

URL_VARIABLE = "CONFLICTLENS_TEST_CLICKHOUSE_URL"
IN_PROCESS = "chdb://memory"


def clickhouse_url() -> str:
    return os.environ.get(URL_VARIABLE) or IN_PROCESS


def clickhouse_client(database: str | None = None) -> Any:
    """A client on ``database``, or on none (the tests create and drop their own)."""
    from conflictlens.settings import StoreSettings
    from conflictlens.store.clickhouse.connection import connect

    password = "CONFLICTLENS_TEST_CLICKHOUSE_PASSWORD"
    settings = StoreSettings(
        backend="clickhouse",
        url=clickhouse_url(),
        user=os.environ.get("CONFLICTLENS_TEST_CLICKHOUSE_USER"),
        password_env=password if password in os.environ else None,
        **({"database": database} if database else {}),
    )
    return connect(settings, with_database=database is not None)
