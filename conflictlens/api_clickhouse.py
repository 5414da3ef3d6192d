"""serve's alert and annotation endpoints on a ClickHouse store (a stateless replica): the
same paths and answers as conflictlens.api_alerts and api_annotations, read from and written
to the store's tables, so the dashboard's Alerts page, ``conflictlens annotate`` and
``alerts silence`` work through any replica.

GET /api/alerts                       rules, their groups' states (alert_state, written by
                                      replicated_alerts), silences, recent notifications
GET /api/alerts/backtest              as api_alerts, through the ClickHouse engine
POST /api/alerts/preview              as api_alerts (the Alerts page's rule editor)
GET /api/alerts/delivery              this replica's delivery rounds (ReplicatedAlerts)
GET /api/alerts/silences              every silence
POST /api/alerts/silences             as api_alerts; the id is a hash of the silence
POST /api/alerts/silences/{id}/expire a newer version of the silence, ending now
POST /api/alerts/test/{rule}          a status="test" notification per channel, queued in the
                                      shared outbox (a replica's delivery round sends it)
PUT, DELETE /api/alerts/rules/{name}  a rule's new version in the store (replicated_rules)
POST /api/annotations, GET /api/annotations   api_annotations with the ClickHouse writer

Every write is one insert with a deterministic id as its deduplication token
(store/clickhouse/annotations.py, silences.py): a retried request stores one row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from fastapi import APIRouter, HTTPException

from conflictlens.analysis.alerts import AlertsConfig
from conflictlens.analysis.alerts.engine import test_notifications_for
from conflictlens.analysis.alerts.reads import overview_of
from conflictlens.analysis.alerts.rules import Silence, iso
from conflictlens.analysis.params import naive_utc
from conflictlens.api_alerts import SilenceRequest, add_history_routes, silence_window
from conflictlens.api_annotations import annotations_router
from conflictlens.replicated_alerts import read_states
from conflictlens.replicated_rules import add_rule_routes
from conflictlens.store.clickhouse import silences
from conflictlens.store.clickhouse.annotations import add_annotation
from conflictlens.store.clickhouse.state import READ_SETTINGS, Notification, enqueue
from conflictlens.store.engine import Engine

Clock = Callable[[], dt.datetime]
RECENT = 20  # notifications in the overview

_RECENT = """
    SELECT created_at, rule, status, channel, delivered_at, attempts, last_error
    FROM alert_outbox FINAL
    ORDER BY created_at DESC, id DESC
    LIMIT {limit:UInt32}
"""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _naive(moment: dt.datetime) -> dt.datetime:
    value = naive_utc(moment)
    assert value is not None
    return value


def recent_notifications(client: Any, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest outbox rows (their latest version: delivered or not), newest first."""
    rows = client.query(_RECENT, parameters={"limit": limit}, settings=READ_SETTINGS)
    keys = ("created_at", "rule", "status", "channel", "delivered_at", "attempts", "last_error")
    found = []
    for row in rows.result_rows:
        item = dict(zip(keys, row, strict=True))
        for key in ("created_at", "delivered_at"):
            item[key] = iso(naive_utc(item[key]))
        found.append(item)
    return found


def stored_silences(client: Any) -> list[Silence]:
    """Every silence added through the API, its newest version."""
    return [
        Silence(matchers, starts, ends, comment, number)
        for number, matchers, starts, ends, comment in silences.read_silences(client)
    ]


def router(
    engine: Engine,
    client: Any,
    alerts: Callable[[], AlertsConfig],
    clock: Clock = utc_now,
    delivery_status: Callable[[], dict[str, Any]] | None = None,
    replica: str = "",
) -> list[APIRouter]:
    """The alert and annotation routers of a replica on ``client``'s store; ``alerts()`` is
    the config in force (replicated_rules.rules_in_force)."""
    api = alerts_router(engine, client, alerts, clock, delivery_status)
    where = f"the ClickHouse store ({getattr(engine, 'database', '')}.alert_rules)"
    add_rule_routes(api, client, alerts, clock, replica, where)
    return [api, _annotations(engine, client, clock)]


@contextmanager
def _on(engine: Engine) -> Iterator[Engine]:
    yield engine  # clickhouse_connect's HTTP client is shared by threads


def _annotations(engine: Engine, client: Any, clock: Clock) -> APIRouter:
    def cursor() -> Any:
        return _on(engine)

    def write(_: Any, at: dt.datetime, text: str, service: str | None, now: dt.datetime) -> int:
        return add_annotation(client, at, text, service, now)

    return annotations_router(cast(Any, cursor), clock, write)


def alerts_router(
    engine: Engine,
    client: Any,
    alerts: Callable[[], AlertsConfig],
    clock: Clock = utc_now,
    delivery_status: Callable[[], dict[str, Any]] | None = None,
) -> APIRouter:
    api = APIRouter(prefix="/api/alerts", tags=["alerts"])
    add_history_routes(api, lambda: _on(engine), alerts)

    @api.get("")
    def state() -> dict[str, Any]:
        """Every rule with the state of its groups, the silences and recent notifications."""
        answer = overview_of(
            alerts(), read_states(client), stored_silences(client), _naive(clock())
        )
        return {**answer, "notifications": recent_notifications(client)}

    @api.get("/silences")
    def listed() -> list[dict[str, Any]]:
        """Every silence: from the config file and added through the API."""
        now = _naive(clock())
        return [
            {**s.to_json(), "active": s.starts_at <= now < s.ends_at}
            for s in (*alerts().silences, *stored_silences(client))
        ]

    @api.post("/silences", status_code=201)
    def add(request: SilenceRequest) -> dict[str, Any]:
        """Add a silence: matchers, and ends_at or a duration (starts now unless starts_at)."""
        now = _naive(clock())
        starts, ends = silence_window(request, now)
        number = silences.add_silence(client, request.matchers, starts, ends, request.comment, now)
        return {"id": number}

    @api.post("/silences/{silence_id}/expire")
    def expire(silence_id: int) -> dict[str, Any]:
        """End silence SILENCE_ID now."""
        if not silences.expire_silence(client, silence_id, _naive(clock())):
            raise HTTPException(404, f"no active silence {silence_id}")
        return {"id": silence_id, "expired": True}

    @api.post("/test/{rule}")
    def test(rule: str) -> dict[str, Any]:
        """Queue a test notification of RULE to each of its channels."""
        config, now = alerts(), clock()
        try:
            config.rule(rule)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        rows = test_notifications_for(cast(Any, engine), config, rule, now)
        queued = [
            Notification(
                f"{r.rule}|{r.fingerprint}|{r.channel}|test|{now.isoformat()}",
                r.channel,
                r.rule,
                r.fingerprint,
                r.status,
                r.payload,
                now,
            )
            for r in rows
        ]
        for notification in queued:
            enqueue(client, notification)
        return {
            "rule": rule,
            "channels": [r.channel for r in rows],
            "outbox_ids": [n.id for n in queued],
        }

    @api.get("/delivery")
    def delivery() -> dict[str, Any]:
        """This replica's delivery rounds: their last run and each channel's outcome."""
        if delivery_status is None:
            raise HTTPException(404, "no delivery thread runs here")
        return delivery_status()

    return api
