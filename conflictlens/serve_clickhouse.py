"""``conflictlens serve`` on a ClickHouse store (``[store] backend = "clickhouse"``): a
stateless replica. Several may run against one ClickHouse.

No DuckDB file is opened: the API answers every catalog query through the ClickHouse engine,
logs arrive from ``conflictlens agent`` on the gateway nodes (so ``[[sources]]`` is refused)
and through OTLP (``POST /v1/logs``: conflictlens.replicated_otlp),
and the jobs that need one owner run on a wall-clock grid with their state in the store:
alert evaluation (one replica per slot), alert delivery (a claim per attempt) and scheduled
reports (a claim per report, and one per delivery to a channel);
conflictlens.replicated_alerts says what is guaranteed. The
DuckDB jobs (summaries, learned routes) have no counterpart: ClickHouse keeps the summaries
in materialized views.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from conflictlens._errors import ConfigError
from conflictlens.config import Config
from conflictlens.store.engine import Engine

if TYPE_CHECKING:
    from conflictlens.jobs import Live

log = logging.getLogger("conflictlens.serve")

SOURCES_REFUSED = (
    "with a ClickHouse store, gateway nodes run `conflictlens agent`: remove [[sources]]"
)
REPORTS_EVERY = 60.0
Period = float | Callable[[], float]  # seconds, or what the config in force says
AFTER_SLOT = 1.0  # seconds after a slot starts before its job runs (replicas' clocks differ)


def replica_name() -> str:
    """This replica's name in claims: $CONFLICTLENS_REPLICA, else host and pid."""
    return os.environ.get("CONFLICTLENS_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"


def slot_of(now: float, period: float) -> float:
    """The start of the grid slot holding ``now`` (seconds since the epoch)."""
    return (now // period) * period


@dataclass
class GridScheduler:
    """Jobs run once per slot of a wall-clock grid (every replica computes the same slots),
    each given its slot's start as an aware UTC time. A failing job is logged."""

    jobs: list[tuple[str, Period, Callable[[dt.datetime], object]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def every(self, name: str, seconds: Period, job: Callable[[dt.datetime], object]) -> None:
        self.jobs.append((name, seconds, job))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="grid-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        done: dict[str, float] = {}
        while not self._stop.is_set():
            for name, period, job in self.jobs:
                seconds = period() if callable(period) else period
                slot = slot_of(time.time() - AFTER_SLOT, seconds)
                if done.get(name) == slot:
                    continue
                done[name] = slot
                try:
                    job(dt.datetime.fromtimestamp(slot, dt.UTC))
                except Exception:
                    log.exception("job %s failed", name)
            self._stop.wait(0.2)


def describe(config: Config) -> str:
    store = config.store
    return f"clickhouse {store.url.split('@')[-1]}/{store.database}"


def reloaded(running: Config, *, exposed: bool) -> Config:
    """The config file as it is now, if a running replica can take it: the same store, no
    [[sources]], and a token while bound beyond loopback; else ConfigError (one line)."""
    from conflictlens.config import load_config

    fresh = load_config(str(running.path) if running.path else None)
    new, old = fresh.store, running.store
    if (new.backend, new.url, new.database) != (old.backend, old.url, old.database):
        raise ConfigError("[store] changed: restart serve to use another store")
    if fresh.sources:
        raise ConfigError(SOURCES_REFUSED)
    if exposed and not fresh.serve.token:
        raise ConfigError("serve.token removed while serve is bound beyond loopback")
    return fresh


def run(
    live: Live,
    db: Path,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    token_changed: Callable[[str | None], None] = lambda _: None,
) -> None:
    """Serve the API of the ClickHouse store until SIGTERM. ``live.config`` is the config in
    force: a change of the config file replaces it (``reloaded``), and every part reads it
    when it runs; ``token_changed`` is called when a reload changed the token."""
    from conflictlens import api_clickhouse, api_reports_clickhouse
    from conflictlens.api_otlp import otlp_router
    from conflictlens.notify.report_delivery import ReportDelivery
    from conflictlens.notify.send import deliver
    from conflictlens.replicated_alerts import DELIVER_EVERY, ReplicatedAlerts
    from conflictlens.replicated_otlp import ClickHouseOtlpIntake
    from conflictlens.replicated_reports import ReplicatedReports
    from conflictlens.replicated_rules import rules_in_force
    from conflictlens.serve import is_loopback, serve
    from conflictlens.store.clickhouse.connection import clickhouse_connect, connect
    from conflictlens.store.clickhouse.glob_engine import GlobEngine
    from conflictlens.store.clickhouse.state import Claims

    config = live.config
    if config.sources:
        raise ConfigError(SOURCES_REFUSED)
    # One client for the API's threads and the jobs: no session, so queries may overlap.
    clickhouse_connect().common.set_setting("autogenerate_session_id", False)
    client = connect(config.store)
    engine = GlobEngine(client, config.store.database)
    claims = Claims(client, replica_name())

    def send(name: str, outgoing: Any) -> None:
        deliver(live.config.alerts.channels[name], outgoing)

    in_force = rules_in_force(client, lambda: live.config.alerts)
    alerts = ReplicatedAlerts(engine, client, claims, in_force, send)

    def send_report(name: str, archived: Any) -> None:
        ReportDelivery(live.config.alerts.channels)(name, archived)

    reports = ReplicatedReports(engine, client, claims, lambda: live.config.reports, send_report)
    intake = ClickHouseOtlpIntake(client, lambda: live.config.ingest)
    scheduler = GridScheduler()
    # Always: rules may be added through the API or a reload, and the interval changed.
    scheduler.every(
        "alerts",
        lambda: live.config.alerts.evaluation_interval.total_seconds(),
        alerts.evaluate_slot,
    )
    scheduler.every("deliver", DELIVER_EVERY, alerts.deliver)
    scheduler.every("reports", REPORTS_EVERY, reports.run_due)

    def reload() -> list[Any]:
        """The config file as it is now, in force from now on (serve's ConfigReloader calls
        this on a change; a refusal keeps the running config and is shown in /api/status)."""
        fresh = reloaded(live.config, exposed=not is_loopback(host))
        before, live.config = live.config.serve.token, fresh
        if fresh.serve.token != before:
            token_changed(fresh.serve.token)
        return []  # a replica follows no files

    @contextlib.contextmanager
    def cursor() -> Iterator[Engine]:
        yield engine  # clickhouse_connect's HTTP client is shared by threads

    serve(
        None,
        db,
        cursor=cursor,
        host=host,
        port=port,
        token=config.serve.token,
        current_token=lambda: live.config.serve.token,
        on_ready=on_ready,
        config_path=config.path,
        reload_followers=reload if config.path is not None else None,
        routers=[
            otlp_router(intake),
            replica_router(claims, alerts, reports),
            api_reports_clickhouse.reports_router(
                engine,
                client,
                lambda: live.config.reports,
                replica=claims.replica,
                database=config.store.database,
            ),
            *api_clickhouse.router(
                engine, client, in_force, delivery_status=alerts.status, replica=claims.replica
            ),
        ],
        services=[scheduler],
    )


def command(
    config: Any, db: Path, host: str | None, port: int | None, dashboard_port: int | None
) -> None:
    """serve as a stateless replica of a ClickHouse store (conflictlens.serve_clickhouse)."""
    import click

    from conflictlens.cli import _password_hash
    from conflictlens.cli_support import require_dashboard
    from conflictlens.dashboard_process import start_dashboard, stop_dashboard
    from conflictlens.jobs import Live

    bind = host or config.serve.host
    started: list[Any] = []
    if dashboard_port is not None:
        require_dashboard("or pass --no-dashboard")

    def ready(url: str) -> None:
        click.echo(f"conflictlens serve: {describe(config)} at {url}", err=True)
        if dashboard_port is not None:
            started.append(
                start_dashboard(
                    db,
                    bind,
                    dashboard_port,
                    token=config.serve.token,
                    password_hash=_password_hash(config),
                    config=config.path,
                )
            )
            click.echo(f"dashboard: http://{bind}:{dashboard_port}", err=True)

    def token_changed(token: str | None) -> None:
        """The dashboard asks serve with the token: started again with the new one."""
        if started:
            stop_dashboard(started.pop())
            started.append(
                start_dashboard(
                    db,
                    bind,
                    dashboard_port or 8501,
                    token=token,
                    password_hash=_password_hash(config),
                    config=config.path,
                )
            )

    try:
        run(
            Live(config),
            db,
            host=bind,
            port=port or config.serve.port,
            on_ready=ready,
            token_changed=token_changed,
        )
    finally:
        for process in started:
            stop_dashboard(process)


def replica_router(claims: Any, alerts: Any, reports: Any) -> APIRouter:
    """GET /api/replica: this replica's name and what it did (slots won, sent, built)."""
    router = APIRouter(prefix="/api", tags=["replica"])

    @router.get("/replica")
    def replica() -> dict[str, Any]:
        return {
            "replica": claims.replica,
            "alert_slots_evaluated": alerts.evaluated,
            "notifications_sent": alerts.delivered,
            "reports_archived": reports.built,
            "reports_sent": reports.sent,
        }

    return router
