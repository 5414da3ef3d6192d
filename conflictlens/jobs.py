"""What serve runs besides its followers, from the config: periodic jobs (summaries, learned
routes, alert evaluation, nightly reports), the alert delivery thread (woken whenever serve
writes to the outbox), and the alerts and reports APIs.

The config in force lives in a ``Live`` holder: a reload of the config file swaps it, and
every part reads it when it runs, so new rules and channels take effect without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from conflictlens.config import Config
from conflictlens.serve import Job

if TYPE_CHECKING:
    from conflictlens.ingest.otlp import OtlpIntake
    from conflictlens.notify import Deliverer

log = logging.getLogger("conflictlens.jobs")

SUMMARIES_EVERY = 60.0
LEARN_ROUTES_EVERY = 600.0
REPORTS_EVERY = 60.0
DELIVER_EVERY = 5.0

Cursor = Callable[[], duckdb.DuckDBPyConnection]


@dataclass
class Live:
    """The config in force; ``reload`` swaps it."""

    config: Config


def refresh_summaries(con: duckdb.DuckDBPyConnection) -> None:
    from conflictlens.store import refresh_summaries as refresh

    refresh(con)


def learn_routes(con: duckdb.DuckDBPyConnection) -> None:
    from conflictlens.analysis.route_learning import learn_and_apply

    summary = learn_and_apply(con)
    if summary["rows_changed"]:
        log.info("learned routes: %s", summary)


def serve_jobs(live: Live, cursor: Cursor, delivery: Deliverer) -> list[Job]:
    """Every periodic job serve runs; notifications queued by an evaluation wake
    ``delivery`` at once rather than at its next tick."""
    from conflictlens.api_alerts import evaluation_job
    from conflictlens.notify.resend import TICK_SECONDS, Resender

    evaluate = evaluation_job(cursor, lambda: live.config.alerts, outbox_written=delivery.wake)
    interval = live.config.alerts.evaluation_interval.total_seconds()
    resender = Resender(lambda: live.config.alerts.channels)
    return [
        Job("summaries", SUMMARIES_EVERY, refresh_summaries, first_after=1.0),
        Job("learn-routes", LEARN_ROUTES_EVERY, learn_routes, first_after=30.0),
        Job("alerts", interval, lambda _con: evaluate(), first_after=interval),
        Job("reports", REPORTS_EVERY, _reports_job(live), first_after=5.0),
        # Firing alerts pushed to Alertmanager again before they end there by themselves.
        Job("alertmanager-resend", TICK_SECONDS, resender.run, first_after=TICK_SECONDS),
    ]


def _reports_job(live: Live) -> Callable[[duckdb.DuckDBPyConnection], None]:
    from conflictlens.analysis.reports import ReportScheduler
    from conflictlens.notify.report_delivery import ReportDelivery

    schedulers: dict[int, Any] = {}

    def run(con: duckdb.DuckDBPyConnection) -> None:
        config = live.config
        if config.reports.nightly is None:
            return
        key = id(config)  # a reloaded config gets a scheduler of its own; the index is shared
        if key not in schedulers:
            schedulers.clear()
            schedulers[key] = ReportScheduler(
                config.reports, deliver=ReportDelivery(config.alerts.channels)
            )
        schedulers[key].run_due(con)

    return run


def serve_delivery(live: Live, cursor: Cursor) -> Deliverer:
    """The thread that delivers the alert outbox (serve starts and stops it): every
    DELIVER_EVERY seconds, and at once when woken after serve wrote to the outbox."""
    from conflictlens.notify import Deliverer

    return Deliverer(cursor, lambda: live.config.alerts.channels, interval=DELIVER_EVERY)


def serve_intake(live: Live, cursor: Cursor) -> OtlpIntake:
    """OTLP log intake (``POST /v1/logs``), with the [ingest] options in force."""
    from conflictlens.ingest.otlp import OtlpIntake

    return OtlpIntake(cursor, lambda: live.config.ingest)


def serve_routers(
    live: Live, cursor: Cursor, delivery: Deliverer, intake: OtlpIntake | None = None
) -> list[Any]:
    from conflictlens.api_alerts import alerts_router
    from conflictlens.api_annotations import annotations_router
    from conflictlens.api_otlp import otlp_router
    from conflictlens.api_reports import reports_router

    return [
        otlp_router(intake or serve_intake(live, cursor)),
        alerts_router(
            cursor,
            lambda: live.config.alerts,
            config_path=lambda: live.config.path,
            outbox_written=delivery.wake,
            delivery_status=delivery.status,
        ),
        reports_router(cursor, lambda: live.config.reports),
        annotations_router(cursor),
    ]
