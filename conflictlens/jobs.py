"""The periodic jobs serve runs, from the config: summaries, learned routes (and, as they
are configured, alert evaluation and reports)."""

from __future__ import annotations

import logging

import duckdb

from conflictlens.config import Config
from conflictlens.serve import Job

log = logging.getLogger("conflictlens.jobs")

SUMMARIES_EVERY = 60.0
LEARN_ROUTES_EVERY = 600.0


def refresh_summaries(con: duckdb.DuckDBPyConnection) -> None:
    from store import refresh_summaries as refresh

    refresh(con)


def learn_routes(con: duckdb.DuckDBPyConnection) -> None:
    from analysis.route_learning import learn_and_apply

    summary = learn_and_apply(con)
    if summary["rows_changed"]:
        log.info("learned routes: %s", summary)


def serve_jobs(config: Config) -> list[Job]:
    """Every job serve runs for this config."""
    del config  # alerts and reports add their jobs from their config sections
    return [
        Job("summaries", SUMMARIES_EVERY, refresh_summaries, first_after=1.0),
        Job("learn-routes", LEARN_ROUTES_EVERY, learn_routes, first_after=30.0),
    ]
