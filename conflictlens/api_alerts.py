"""serve's alert endpoints (an APIRouter that serve includes) and the evaluation job its
scheduler runs. While serve owns the database, the ``alerts`` commands go through here.

GET /api/alerts                       rules, their groups' states, silences
GET /api/alerts/backtest              episodes over stored history (since, until, rule)
GET /api/alerts/silences              every silence
GET /api/alerts/delivery              the outbox's delivery thread: rounds, last run, channels
POST /api/alerts/silences             {"matchers": {...}, "duration": "2h" | "ends_at": ISO,
                                       "starts_at": ISO (default now), "comment": "..."}
POST /api/alerts/silences/{id}/expire end a silence now
POST /api/alerts/test/{rule}          enqueue a status="test" notification per channel
POST /api/alerts/preview              {"rule": {...}, "since", "until"}: a rule's backtest
                                       episodes and chart series, saved or not
PUT /api/alerts/rules/{name}          {"rule": {...}}: write it into the config file in
                                       place of rule {name} (or add it); serve reloads it
DELETE /api/alerts/rules/{name}       remove rule {name} from the config file
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, WithJsonSchema

from conflictlens._errors import InvalidValue, first_line
from conflictlens._settings import inline_schema
from conflictlens.analysis.alerts import (
    AlertsConfig,
    backtest,
    evaluate_all,
    parse_duration,
    parse_rule,
    preview,
)
from conflictlens.analysis.alerts.engine import test_notifications_for
from conflictlens.analysis.alerts.reads import overview, read_silences
from conflictlens.analysis.alerts.series import BaselineCache
from conflictlens.analysis.alerts.settings import RuleSettings
from conflictlens.analysis.params import naive_utc
from conflictlens.config import ConfigError
from conflictlens.config_edit import delete_rule, save_rule
from conflictlens.store import alerts as alert_store
from conflictlens.store.engine import Store
from conflictlens.timeparse import parse_time

log = logging.getLogger("conflictlens.alerts")
Cursor = Callable[[], duckdb.DuckDBPyConnection]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SilenceRequest(BaseModel):
    matchers: dict[str, str] = Field(description="rule (or alertname) and labels; all must equal")
    starts_at: str | None = Field(None, description="ISO-8601; default now")
    ends_at: str | None = Field(None, description="ISO-8601; or give duration")
    duration: str | None = Field(None, description="30m, 2h, 1d ...; or give ends_at")
    comment: str = ""


# Taken as the table it is (it is saved into the config file as written) and checked by
# parse_rule against the channels in force; its shape is RuleSettings'.
RuleTable = Annotated[dict[str, Any], WithJsonSchema(inline_schema(RuleSettings))]


class RuleRequest(BaseModel):
    rule: RuleTable = Field(description="a [[alerts.rules]] table, as in the config file")
    since: str | None = Field(None, description="preview range start, ISO-8601 or 7d")
    until: str | None = Field(None, description="preview range end")


def evaluation_job(
    cursor: Cursor,
    alerts: Callable[[], AlertsConfig],
    clock: Clock = utc_now,
    outbox_written: Callable[[], None] = lambda: None,
) -> Callable[[], None]:
    """The scheduler's job: evaluate every rule now, on a cursor of serve's connection. It
    keeps the baselines between runs (they change once per window). ``outbox_written`` is
    called after notifications were queued (serve wakes its delivery thread with it)."""
    cache: BaselineCache = {}

    def job() -> None:
        config = alerts()
        if not config.rules:
            return
        queued = False
        with cursor() as con:
            for change in evaluate_all(con, config, clock(), cache=cache):
                if change.notification:
                    queued = True
                    log.warning("alert %s %s: %s", change.rule, change.notification, change.labels)
        if queued:
            outbox_written()

    return job


def silence_window(request: SilenceRequest, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[starts_at, ends_at) of a silence request as naive UTC; InvalidValue names the field."""
    starts = parse_time(request.starts_at) if request.starts_at else now
    if (request.ends_at is None) == (request.duration is None):
        raise InvalidValue("give exactly one of ends_at and duration")
    if request.duration is not None:
        ends = starts + parse_duration(request.duration, "duration")
    else:
        assert request.ends_at is not None
        ends = parse_time(request.ends_at)
    first, last = naive_utc(starts), naive_utc(ends)
    assert first is not None and last is not None
    if last <= first:
        raise InvalidValue("ends_at: must be after starts_at")
    if not request.matchers:
        raise InvalidValue('matchers: at least one (e.g. {"rule": "NAME"})')
    return first, last


def alerts_router(
    cursor: Cursor,
    alerts: Callable[[], AlertsConfig],
    clock: Clock = utc_now,
    config_path: Callable[[], Path | None] = lambda: None,
    outbox_written: Callable[[], None] = lambda: None,
    delivery_status: Callable[[], dict[str, Any] | None] = lambda: None,
) -> APIRouter:
    """``alerts()`` gives the config in force (serve swaps it on reload), ``config_path()``
    the file it came from (rules are saved there); ``outbox_written()`` wakes the delivery
    thread, whose ``delivery_status()`` is None where there is none."""
    router = APIRouter(prefix="/api/alerts", tags=["alerts"])
    add_history_routes(router, cursor, alerts)

    @router.get("")
    def state() -> dict[str, Any]:
        """Every rule with the state of its groups, and the silences."""
        with cursor() as con:
            return overview(con, alerts(), _naive(clock()))

    @router.get("/silences")
    def silences() -> list[dict[str, Any]]:
        """Every silence: from the config file and added through the API."""
        now = _naive(clock())
        with cursor() as con:
            stored = read_silences(con)
        return [
            {**s.to_json(), "active": s.starts_at <= now < s.ends_at}
            for s in (*alerts().silences, *stored)
        ]

    @router.post("/silences", status_code=201)
    def add_silence(request: SilenceRequest) -> dict[str, Any]:
        """Add a silence: matchers, and ends_at or a duration (starts now unless starts_at)."""
        now = _naive(clock())
        starts, ends = silence_window(request, now)
        with cursor() as con:
            number = alert_store.add_silence(
                con, request.matchers, starts, ends, request.comment, now
            )
        return {"id": number}

    @router.post("/silences/{silence_id}/expire")
    def expire(silence_id: int) -> dict[str, Any]:
        """End silence SILENCE_ID now."""
        with cursor() as con:
            if not alert_store.expire_silence(con, silence_id, _naive(clock())):
                raise HTTPException(404, f"no active silence {silence_id}")
        return {"id": silence_id, "expired": True}

    @router.post("/test/{rule}")
    def test(rule: str) -> dict[str, Any]:
        """Queue a test notification of RULE to each of its channels."""
        config = alerts()
        now = clock()
        try:
            config.rule(rule)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        with cursor() as con:
            rows = test_notifications_for(con, config, rule, now)
            ids = alert_store.enqueue(con, rows, _naive(now))
        outbox_written()
        return {"rule": rule, "channels": [r.channel for r in rows], "outbox_ids": ids}

    @router.get("/delivery")
    def delivery() -> dict[str, Any]:
        """The delivery thread: rounds, its last run, and each channel's outcome."""
        status = delivery_status()
        if status is None:
            raise HTTPException(404, "no delivery thread runs here")
        return status

    @router.put("/rules/{name}")
    def put_rule(name: str, request: RuleRequest) -> dict[str, Any]:
        """Write the rule into the config file in place of rule NAME (or add it); serve reloads it."""
        path = _editable(config_path())
        parse_rule(request.rule, alerts().channels)
        exists = name in {r.name for r in alerts().rules}
        saved = save_rule(path, request.rule, replaces=name if exists else None)
        return {
            "saved": request.rule.get("name"),
            "path": str(path),
            "rules": len(saved.alerts.rules),
        }

    @router.delete("/rules/{name}")
    def remove_rule(name: str) -> dict[str, Any]:
        """Remove rule NAME from the config file."""
        path = _editable(config_path())
        try:
            saved = delete_rule(path, name)
        except ConfigError as exc:
            raise HTTPException(404, first_line(exc)) from None
        return {"deleted": name, "path": str(path), "rules": len(saved.alerts.rules)}

    return router


def add_history_routes(
    router: APIRouter,
    cursor: Callable[[], AbstractContextManager[Store]],
    alerts: Callable[[], AlertsConfig],
) -> None:
    """GET /backtest and POST /preview on ``router``: the rules replayed over stored history,
    on whatever store ``cursor`` opens (a DuckDB cursor, or a ClickHouse replica's engine)."""

    @router.get("/backtest")
    def replay(
        since: str | None = None, until: str | None = None, rule: str | None = None
    ) -> list[dict[str, Any]]:
        """Backtest: the episodes the rules (or RULE) would have raised over stored history between
        since and until."""
        config = alerts()
        if rule is not None and rule not in {r.name for r in config.rules}:
            raise HTTPException(404, f"no alert rule named {rule!r}")
        first = parse_time(since) if since else None
        last = parse_time(until) if until else None
        with cursor() as con:
            episodes = backtest(con, config, first, last, (rule,) if rule else ())
        return [e.to_json() for e in episodes]

    @router.post("/preview")
    def preview_rule(request: RuleRequest) -> dict[str, Any]:
        """A rule's backtest episodes and chart series over since..until, saved or not."""
        config = alerts()
        rule = parse_rule(request.rule, config.channels)
        first = parse_time(request.since) if request.since else None
        last = parse_time(request.until) if request.until else None
        with cursor() as con:
            return preview(con, rule, config.evaluation_interval, first, last)


def _editable(path: Path | None) -> Path:
    if path is None:
        raise HTTPException(
            409, "serve runs without a config file: start it with --config FILE to edit rules"
        )
    return path


def _naive(moment: dt.datetime) -> dt.datetime:
    value = naive_utc(moment)
    assert value is not None
    return value
