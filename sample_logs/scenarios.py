"""Planted conflict scenarios: extra requests (or changed responses) with known facts.

A scenario is planned once for the whole log: ``plan()`` returns the planted rows (which
replace as many steady requests, so a log always has the number of lines asked for), an
optional change of the steady responses (``spike``), and how to state the planted facts
(``collect`` per batch, then ``facts``). Facts are measured on the generated frame itself, so
they also count background requests that happen to fall on the planted route and window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from conflictlens.sample_logs.bad_day import bad_day
from conflictlens.sample_logs.catalog import (
    BROWSER_AGENTS,
    CLIENTS,
    MOBILE_AGENTS,
    declared_conflict,
    endpoint,
)
from conflictlens.sample_logs.columns import decorate, random_hex, requests, uuid
from conflictlens.sample_logs.names import SCENARIO_NAMES, SampleError
from conflictlens.sample_logs.planting import (
    CONFLICT,
    DOCUMENT_ROUTE,
    MINUTE_US,
    RETRY_AGENT,
    RETRY_CLIENT,
    SPIKE_FACTOR,
    Plan,
    counts_by_code,
    document_edits,
    document_facts,
    draw_codes,
    iso,
    multiply_conflicts,
    planted_count,
    window_near,
    within,
)

SCENARIOS = SCENARIO_NAMES
MIN_LINES = 200  # planted scenarios need some background to stand out from
MIN_HOURS = 1.0


def plan(scenario: str, lines: int, *, seed: int, end: dt.datetime, hours: float) -> Plan:
    if scenario not in SCENARIOS:
        raise SampleError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if scenario in ("steady", "none-planted"):
        return Plan(scenario)
    if lines < MIN_LINES:
        raise SampleError(f"scenario {scenario} needs at least {MIN_LINES} lines")
    if hours < MIN_HOURS:
        raise SampleError(f"scenario {scenario} needs at least {MIN_HOURS:g} hour of traffic")
    rng = np.random.default_rng([seed, 4, SCENARIOS.index(scenario)])
    end_us = int(end.timestamp() * 1e6)
    span_us = int(hours * 3600 * 1e6)
    start_us = end_us - span_us
    builder = {
        "hot-document": _hot_document,
        "signup-surge": _signup_surge,
        "order-states": _order_states,
        "retry-storm": _retry_storm,
        "deploy-spike": _deploy_spike,
        "bad-day": bad_day,
    }[scenario]
    return builder(rng, lines, start_us, span_us)


# --- hot-document: an optimistic-locking storm on one document -----------------------------------


def _hot_document(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route = "PATCH", DOCUMENT_ROUTE
    n = planted_count(lines, 0.004, 40, 4000)
    begin, end = window_near(rng, start_us, span_us, 0.30, min(12 * MINUTE_US, span_us // 6))
    ts = np.sort(rng.integers(begin, end, size=n))
    doc = str(random_hex(rng, 1, 24)[0])
    path = f"/api/v2/documents/{doc}"
    editors = rng.choice(len(CLIENTS), size=int(rng.integers(6, 11)), replace=False)
    agents = rng.integers(0, len(BROWSER_AGENTS), size=len(editors))
    who = rng.integers(0, len(editors), size=n)
    mix: list[tuple[int | str, float]] = [
        (200, 0.35),
        ("VERSION_MISMATCH", 0.5),
        ("ETAG_MISMATCH", 0.15),
    ]
    rows = document_edits(rng, method, route, ts, mix, path, editors[who], agents[who])

    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("path") == path).select(
            "ts", "method", "status", "error_code", "client"
        )

    def facts(found: pl.DataFrame) -> dict[str, Any]:
        inside = found.filter(within(begin, end) & (pl.col("method") == method))
        return document_facts(inside, path, (begin, end))

    return Plan("hot-document", decorate(rows, rng), collect=collect, facts=facts)


# --- signup-surge: a campaign's burst of sign-ups, many with an e-mail already registered ------


def _signup_surge(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route, code = "POST", "/api/v1/users", "EMAIL_TAKEN"
    n = planted_count(lines, 0.006, 40, 6000)
    begin, end = window_near(rng, start_us, span_us, 0.55, min(30 * MINUTE_US, span_us // 4))
    ts = np.sort(rng.integers(begin, end, size=n))
    status, codes = draw_codes(rng, method, route, n, [(201, 0.55), (code, 0.40), (400, 0.05)])
    agents = pl.Series(MOBILE_AGENTS).gather(pl.Series(rng.integers(0, len(MOBILE_AGENTS), size=n)))
    rows = requests(rng, endpoint(method, route), ts, status, codes, user_agent=agents)
    return Plan(
        "signup-surge",
        decorate(rows, rng),
        collect=_route_window_rows(method, route, begin, end),
        facts=_route_window_facts(method, route, begin, end, n, error_code=code),
    )


def _route_window_rows(
    method: str, route: str, begin: int, end: int
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        on_route = (pl.col("method") == method) & (pl.col("route") == route)
        return frame.filter(on_route & within(begin, end)).select("ts", "status", "error_code")

    return collect


def _route_window_facts(
    method: str, route: str, begin: int, end: int, added: int, **extra: Any
) -> Callable[[pl.DataFrame], dict[str, Any]]:
    def facts(found: pl.DataFrame) -> dict[str, Any]:
        return {
            "method": method,
            "route": route,
            **extra,
            "start": iso(begin),
            "end": iso(end),
            "requests": found.height,
            "conflicts": int(found.filter(CONFLICT).height),
            "conflicts_by_code": counts_by_code(found),
            "added_requests": added,
        }

    return facts


# --- order-states: a shipping wave, then customers try to cancel what already left -------------


def _order_states(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route = "POST", "/api/v1/orders/{uuid}/cancel"
    n = planted_count(lines, 0.004, 30, 4000)
    begin, end = window_near(rng, start_us, span_us, 0.70, min(45 * MINUTE_US, span_us // 4))
    ts = np.sort(rng.integers(begin, end, size=n))
    status, codes = draw_codes(
        rng,
        method,
        route,
        n,
        [(200, 0.2), ("ORDER_ALREADY_SHIPPED", 0.6), ("INVALID_STATE_TRANSITION", 0.2)],
    )
    orders = uuid(rng, max(1, n // 3))  # customers press "cancel" more than once
    path = (
        "/api/v1/orders/"
        + orders.gather(pl.Series(rng.integers(0, len(orders), size=n)))
        + "/cancel"
    )
    rows = requests(rng, endpoint(method, route), ts, status, codes, path=path)
    return Plan(
        "order-states",
        decorate(rows, rng),
        collect=_route_window_rows(method, route, begin, end),
        facts=_route_window_facts(
            method,
            route,
            begin,
            end,
            n,
            error_codes=["ORDER_ALREADY_SHIPPED", "INVALID_STATE_TRANSITION"],
        ),
    )


# --- retry-storm: one client retries the same conflicting PUT without backoff ------------------


def _retry_storm(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route, code = "PUT", "/api/v1/users/{id}", "VERSION_MISMATCH"
    count = int(min(max(lines // 400, 25), 150))
    first = start_us + int(span_us * (0.42 + rng.uniform(-0.03, 0.03)))
    # Intervals shrink from about 300 ms to 200 ms: a tight loop that gets faster, no backoff.
    intervals = np.linspace(300_000, 200_000, count - 1) + rng.integers(
        -3_000, 3_001, size=count - 1
    )
    ts = first + np.concatenate([[0], np.cumsum(intervals)]).astype(np.int64)
    resource = str(int(rng.integers(10_000, 999_999)))
    path = f"/api/v1/users/{resource}"
    status = np.full(count, declared_conflict(method, route, code)[0], dtype=np.int64)
    rows = requests(
        rng,
        endpoint(method, route),
        ts,
        status,
        [code] * count,
        path=pl.Series([path] * count),
        client=pl.Series([RETRY_CLIENT] * count),
        user_agent=pl.Series([RETRY_AGENT] * count),
    )
    port = int(rng.integers(30_000, 60_000))
    rows = decorate(rows, rng).with_columns(
        client_port=pl.lit(port, pl.Int64),  # one keep-alive connection
        if_match=pl.lit('"7"'),  # the same stale version every time
        http2=pl.lit(False),
        referer=pl.lit("-"),
    )

    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("client") == RETRY_CLIENT).select(
            "ts", "method", "path", "status"
        )

    def facts(found: pl.DataFrame) -> dict[str, Any]:
        mine = found.filter((pl.col("path") == path) & (pl.col("method") == method)).sort("ts")
        stamps = mine["ts"].dt.epoch("us").to_numpy()
        gaps = np.diff(stamps) / 1000.0
        return {
            "client": RETRY_CLIENT,
            "user_agent": RETRY_AGENT,
            "method": method,
            "route": route,
            "resource": resource,
            "path": path,
            "status": int(status[0]),
            "error_code": code,
            "count": mine.height,
            "start": iso(int(stamps[0])),
            "end": iso(int(stamps[-1])),
            "median_interval_ms": round(float(np.median(gaps)), 3),
            "max_interval_ms": round(float(gaps.max()), 3),
        }

    return Plan("retry-storm", rows, collect=collect, facts=facts)


# --- deploy-spike: a bad deploy multiplies conflicts on three routes for 20 minutes ------------

SPIKE_ROUTES = (
    ("PUT", "/api/v1/users/{id}", "VERSION_MISMATCH"),
    ("PUT", "/api/v2/carts/{id}/items/{id}", "CART_VERSION_CONFLICT"),
    ("POST", "/api/v1/payments/{id}/capture", "PAYMENT_ALREADY_CAPTURED"),
)
SPIKE_MINUTES = 20


def _deploy_spike(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    begin, end = window_near(rng, start_us, span_us, 0.62, SPIKE_MINUTES * MINUTE_US)
    window = within(begin, end)

    keys = pl.DataFrame(
        {"method": [m for m, _, _ in SPIKE_ROUTES], "route": [r for _, r, _ in SPIKE_ROUTES]}
    )

    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.join(keys, on=["method", "route"], how="semi")
            .with_columns(in_window=window, conflict=CONFLICT)
            .group_by("method", "route", "in_window", "conflict", "error_code")
            .agg(pl.len().alias("n"))
        )

    def facts(found: pl.DataFrame) -> dict[str, Any]:
        routes = []
        for method, route, error_code in SPIKE_ROUTES:
            mine = found.filter((pl.col("method") == method) & (pl.col("route") == route))

            def total(*conditions: pl.Expr, frame: pl.DataFrame = mine) -> int:
                return (
                    int(frame.filter(*conditions)["n"].sum())
                    if conditions
                    else int(frame["n"].sum())
                )

            inside = pl.col("in_window")
            win_requests, win_conflicts = total(inside), total(inside, pl.col("conflict"))
            out_requests, out_conflicts = total(~inside), total(~inside, pl.col("conflict"))
            routes.append(
                {
                    "method": method,
                    "route": route,
                    "error_code": error_code,
                    "status": declared_conflict(method, route, error_code)[0],
                    "window_requests": win_requests,
                    "window_conflicts": win_conflicts,
                    "window_rate": win_conflicts / win_requests if win_requests else None,
                    "baseline_rate": out_conflicts / out_requests if out_requests else None,
                }
            )
        return {
            "start": iso(begin),
            "end": iso(end),
            "factor": SPIKE_FACTOR,
            "routes": routes,
        }

    return Plan(
        "deploy-spike",
        spike=multiply_conflicts(SPIKE_ROUTES, window),
        collect=collect,
        facts=facts,
    )
