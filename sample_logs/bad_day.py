"""The bad-day scenario: on the log's last day, a bad deploy, a fought-over document and a
retry storm, hours apart."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from conflictlens.sample_logs import planting
from conflictlens.sample_logs.catalog import BROWSER_AGENTS, CLIENTS, declared_conflict, endpoint
from conflictlens.sample_logs.columns import decorate, random_hex, requests
from conflictlens.sample_logs.planting import Plan

BAD_DAY_SPIKE = (
    ("PUT", "/api/v2/carts/{id}/items/{id}", "CART_VERSION_CONFLICT"),
    ("POST", "/api/v1/payments/{id}/capture", "PAYMENT_ALREADY_CAPTURED"),
)
BAD_DAY_SPIKE_MINUTES = 45
BAD_DAY_EDITORS = 40
BAD_DAY_DOCUMENT_MINUTES = 30
BAD_DAY_STORM_RATE = 4  # tries a second
BAD_DAY_STORM_MINUTES = 3
DAY_US = 24 * 60 * planting.MINUTE_US


def bad_day(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    """Three unrelated events on the last day of the log (the whole log when it is shorter),
    hours apart: a 45-minute deploy spike (SPIKE_FACTOR times the usual conflict rate) on two
    routes at about 15:00, one document that 40 clients fight over for 30 minutes at about
    09:00, and one client retrying a conflicting PUT four times a second for 3 minutes at
    about 12:00. Many days of steady traffic before it give baselines their history."""
    day_us = min(DAY_US, span_us)
    day_start = start_us + span_us - day_us
    spike = planting.window_near(
        rng, day_start, day_us, 0.62, BAD_DAY_SPIKE_MINUTES * planting.MINUTE_US
    )
    document = planting.window_near(
        rng, day_start, day_us, 0.37, BAD_DAY_DOCUMENT_MINUTES * planting.MINUTE_US
    )
    storm_at = planting.window_near(
        rng, day_start, day_us, 0.50, BAD_DAY_STORM_MINUTES * planting.MINUTE_US
    )[0]
    doc_rows, doc_path = _fought_over_document(rng, *document)
    storm_rows, storm_path = _tight_retry_loop(rng, storm_at)
    rows = pl.concat([doc_rows, storm_rows]).sort("ts", maintain_order=True)
    in_spike = planting.within(*spike)
    spike_keys = pl.DataFrame(
        {"method": [m for m, _, _ in BAD_DAY_SPIKE], "route": [r for _, r, _ in BAD_DAY_SPIKE]}
    )

    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        spiked = frame.join(spike_keys, on=["method", "route"], how="semi").filter(in_spike)
        mine = frame.filter(pl.col("path").is_in([doc_path, storm_path]))
        columns = ["ts", "method", "route", "path", "status", "error_code", "client"]
        return pl.concat([spiked.select(columns), mine.select(columns)])

    def facts(found: pl.DataFrame) -> dict[str, Any]:
        return {
            "deploy_spike": _bad_day_spike_facts(found, spike),
            "hot_document": _bad_day_document_facts(found, doc_path, document),
            "retry_storm": _bad_day_storm_facts(found, storm_path),
        }

    return Plan(
        "bad-day",
        rows,
        spike=planting.multiply_conflicts(BAD_DAY_SPIKE, in_spike),
        collect=collect,
        facts=facts,
    )


def _fought_over_document(
    rng: np.random.Generator, begin: int, end: int
) -> tuple[pl.DataFrame, str]:
    """40 editors saving one document about every 2 minutes each; most saves lose the race."""
    method, route = "PATCH", planting.DOCUMENT_ROUTE
    n = BAD_DAY_EDITORS * BAD_DAY_DOCUMENT_MINUTES // 2
    ts = np.sort(rng.integers(begin, end, size=n))
    path = f"/api/v2/documents/{random_hex(rng, 1, 24)[0]}"
    editors = rng.choice(len(CLIENTS), size=BAD_DAY_EDITORS, replace=False)
    who = np.concatenate([np.arange(BAD_DAY_EDITORS), rng.integers(0, BAD_DAY_EDITORS, n)])[:n]
    rng.shuffle(who)
    agents = rng.integers(0, len(BROWSER_AGENTS), size=BAD_DAY_EDITORS)
    mix: list[tuple[int | str, float]] = [
        (200, 0.3),
        ("VERSION_MISMATCH", 0.5),
        ("ETAG_MISMATCH", 0.2),
    ]
    rows = planting.document_edits(rng, method, route, ts, mix, path, editors[who], agents[who])
    return decorate(rows, rng), path


def _tight_retry_loop(rng: np.random.Generator, first: int) -> tuple[pl.DataFrame, str]:
    """One client retrying the same stale PUT BAD_DAY_STORM_RATE times a second."""
    method, route, code = "PUT", "/api/v1/users/{id}", "VERSION_MISMATCH"
    count = BAD_DAY_STORM_RATE * 60 * BAD_DAY_STORM_MINUTES
    step = 1_000_000 // BAD_DAY_STORM_RATE
    ts = first + np.arange(count, dtype=np.int64) * step + rng.integers(-2_000, 2_001, count)
    path = f"/api/v1/users/{int(rng.integers(10_000, 999_999))}"
    status = np.full(count, declared_conflict(method, route, code)[0], dtype=np.int64)
    rows = requests(
        rng,
        endpoint(method, route),
        np.sort(ts),
        status,
        [code] * count,
        path=pl.Series([path] * count),
        client=pl.Series([planting.RETRY_CLIENT] * count),
        user_agent=pl.Series([planting.RETRY_AGENT] * count),
    )
    return decorate(rows, rng).with_columns(if_match=pl.lit('"7"'), referer=pl.lit("-")), path


def _bad_day_spike_facts(found: pl.DataFrame, window: tuple[int, int]) -> dict[str, Any]:
    routes = []
    for method, route, error_code in BAD_DAY_SPIKE:
        mine = found.filter(
            (pl.col("method") == method) & (pl.col("route") == route) & planting.within(*window)
        )
        routes.append(
            {
                "method": method,
                "route": route,
                "error_code": error_code,
                "window_requests": mine.height,
                "window_conflicts": mine.filter(planting.CONFLICT).height,
            }
        )
    return {
        "start": planting.iso(window[0]),
        "end": planting.iso(window[1]),
        "factor": planting.SPIKE_FACTOR,
        "routes": routes,
    }


def _bad_day_document_facts(
    found: pl.DataFrame, path: str, window: tuple[int, int]
) -> dict[str, Any]:
    mine = found.filter((pl.col("path") == path) & (pl.col("method") == "PATCH"))
    return planting.document_facts(mine, path, window)


def _bad_day_storm_facts(found: pl.DataFrame, path: str) -> dict[str, Any]:
    # everyday traffic may touch the same user now and then: only the looping client's tries
    mine = found.filter(
        (pl.col("path") == path)
        & (pl.col("method") == "PUT")
        & (pl.col("client") == planting.RETRY_CLIENT)
    ).sort("ts")
    stamps = mine["ts"].dt.epoch("us").to_numpy()
    return {
        "client": planting.RETRY_CLIENT,
        "user_agent": planting.RETRY_AGENT,
        "method": "PUT",
        "route": "/api/v1/users/{id}",
        "resource": path.rsplit("/", 1)[1],
        "path": path,
        "error_code": "VERSION_MISMATCH",
        "count": mine.height,
        "start": planting.iso(int(stamps[0])),
        "end": planting.iso(int(stamps[-1])),
        "median_interval_ms": round(float(np.median(np.diff(stamps))) / 1000.0, 3),
    }
