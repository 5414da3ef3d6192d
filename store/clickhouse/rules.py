"""Alert rules edited through the API of a serve replica, kept in the ClickHouse store.

A fleet of replicas shares one config file (deployed to each host) and one store. A rule
saved through one replica's API must be in force on all of them, and stay so when any of
them restarts: so an edit is not written into the local config file (the next deploy would
undo it, and the other replicas would not see it) but stored, as a **version** of the rule
in ``alert_rules``: (name, version time, the rule's table as JSON, deleted). Every replica
reads the newest version of each name when it evaluates or answers, and lays the stored
rules over the file's: a stored version replaces the file's rule of that name, a deleted one
hides it, others are added.

An insert carries a token derived from the version (name, time, content): a retried request
stores one row. Two edits of one rule at once: the later version wins (ties: the greater
content), on every replica alike.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conflictlens.store.clickhouse.annotations import content_id, utc
from conflictlens.store.clickhouse.state import READ_SETTINGS

_COLUMNS = ["name", "version", "rule", "deleted", "replica"]
_NEWEST = """
    SELECT name, argMax(rule, (version, rule)), argMax(deleted, (version, rule)), max(version)
    FROM alert_rules
    GROUP BY name
    ORDER BY name
"""


@dataclass(frozen=True)
class StoredRule:
    name: str
    table: dict[str, Any] | None  # None: deleted
    version: dt.datetime


def read_rules(client: Any) -> list[StoredRule]:
    """The newest version of every rule edited through the API, by name."""
    rows = client.query(_NEWEST, settings=READ_SETTINGS).result_rows
    return [
        StoredRule(str(name), None if deleted else json.loads(rule), version)
        for name, rule, deleted, version in rows
    ]


def _store(
    client: Any, name: str, table: Mapping[str, Any] | None, now: dt.datetime, who: str
) -> None:
    text = "" if table is None else json.dumps(dict(table), sort_keys=True)
    at = utc(now)
    token = content_id("rule", name, at.isoformat(), text)
    client.insert(
        "alert_rules",
        [[name, at, text, int(table is None), who]],
        column_names=_COLUMNS,
        settings={"insert_deduplication_token": f"rule|{token}"},
    )


def save_rule(
    client: Any, table: Mapping[str, Any], replaces: str | None, now: dt.datetime, who: str
) -> None:
    """Store ``table`` as the newest version of its rule; a rename also deletes ``replaces``."""
    name = str(table["name"])
    if replaces is not None and replaces != name:
        _store(client, replaces, None, now, who)
    _store(client, name, table, now, who)


def delete_rule(client: Any, name: str, now: dt.datetime, who: str) -> None:
    _store(client, name, None, now, who)
