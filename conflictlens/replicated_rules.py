"""Alert rules on a fleet of serve replicas: the config file's rules with the edits made
through the API laid over them (store/clickhouse/rules.py keeps the edits, and says why they
are stored rather than written into a file).

PUT /api/alerts/rules/{name}     {"rule": {...}}: the rule's new version, in force on every
                                 replica at its next evaluation or answer
DELETE /api/alerts/rules/{name}  a deleted version: the rule (from the file or the API) is
                                 no longer in force

A stored rule that no longer parses against the config in force (its channel was removed
from the file) is left out, with one logged line, and the file's rule of that name stays.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException

from conflictlens._errors import first_line
from conflictlens.analysis.alerts import AlertsConfig, parse_rule
from conflictlens.analysis.alerts.rules import AlertRule
from conflictlens.api_alerts import RuleRequest
from conflictlens.store.clickhouse import rules as stored_rules

log = logging.getLogger("conflictlens.alerts")
_REPORTED: set[tuple[str, dt.datetime]] = set()  # stored versions already logged as left out


def in_force(base: AlertsConfig, stored: list[stored_rules.StoredRule]) -> AlertsConfig:
    """``base`` (the file's [alerts]) with the stored versions laid over its rules."""
    newest = {s.name: s for s in stored}
    rules: list[AlertRule] = []
    for rule in base.rules:
        edit = newest.pop(rule.name, None)
        if edit is None:
            rules.append(rule)
        elif edit.table is not None:
            rules.append(_parsed(edit, base) or rule)
    for edit in newest.values():
        if edit.table is not None and (parsed := _parsed(edit, base)) is not None:
            rules.append(parsed)
    return dataclasses.replace(base, rules=tuple(rules))


def _parsed(edit: stored_rules.StoredRule, base: AlertsConfig) -> AlertRule | None:
    try:
        return parse_rule(edit.table, base.channels, at=f"stored rule {edit.name}")
    except ValueError as exc:  # ConfigError included
        if (edit.name, edit.version) not in _REPORTED:  # once, not at every read
            _REPORTED.add((edit.name, edit.version))
            log.error("stored alert rule %s left out: %s", edit.name, first_line(exc))
        return None


def rules_in_force(client: Any, base: Callable[[], AlertsConfig]) -> Callable[[], AlertsConfig]:
    """What every part of a replica asks for the alerts config in force."""

    def alerts() -> AlertsConfig:
        return in_force(base(), stored_rules.read_rules(client))

    return alerts


def add_rule_routes(
    router: APIRouter,
    client: Any,
    alerts: Callable[[], AlertsConfig],
    clock: Callable[[], dt.datetime],
    replica: str,
    where: str,
) -> None:
    """PUT and DELETE /rules/{name} on ``router`` (prefix /api/alerts); ``alerts()`` is the
    config in force (rules_in_force), ``where`` names the store in answers."""

    @router.put("/rules/{name}")
    def put_rule(name: str, request: RuleRequest) -> dict[str, Any]:
        """Store the rule as the newest version of rule NAME (or a new rule); every replica
        has it in force from its next evaluation."""
        table = request.rule
        config = alerts()
        parse_rule(table, config.channels)
        exists = name in {r.name for r in config.rules}
        stored_rules.save_rule(client, table, name if exists else None, clock(), replica)
        count = len(alerts().rules)
        return {"saved": table.get("name"), "path": where, "rules": count}

    @router.delete("/rules/{name}")
    def remove_rule(name: str) -> dict[str, Any]:
        """Take rule NAME out of force on every replica (a deleted version)."""
        config = alerts()
        if name not in {r.name for r in config.rules}:
            raise HTTPException(404, f"no alert rule named {name!r}")
        stored_rules.delete_rule(client, name, clock(), replica)
        return {"deleted": name, "path": where, "rules": len(alerts().rules)}
