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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from sample_logs.catalog import (
    BROWSER_AGENTS,
    CLIENTS,
    CONFLICT_STATUSES,
    MOBILE_AGENTS,
    declared_conflict,
    endpoint,
)
from sample_logs.columns import decorate, empty, random_hex, requests, uuid
from sample_logs.names import SCENARIO_NAMES, SampleError

SCENARIOS = SCENARIO_NAMES
MIN_LINES = 200  # planted scenarios need some background to stand out from
MIN_HOURS = 1.0

MINUTE_US = 60_000_000
CONFLICT = pl.col("status").is_in(CONFLICT_STATUSES)


@dataclass
class Plan:
    scenario: str
    rows: pl.DataFrame = field(default_factory=empty)  # planted rows (full schema, by ts)
    spike: Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame] | None = None
    collect: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    facts: Callable[[pl.DataFrame], dict[str, Any]] | None = None

    def planted(self, collected: list[pl.DataFrame]) -> dict[str, Any] | None:
        if self.facts is None:
            return None
        return self.facts(pl.concat(collected) if collected else pl.DataFrame())


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso(us: int) -> str:
    """An instant in microseconds since the epoch as ISO 8601 with offset (exact, no float)."""
    return (EPOCH + dt.timedelta(microseconds=us)).isoformat()


def _size(lines: int, share: float, low: int, high: int) -> int:
    return int(min(max(round(lines * share), low), high, lines // 4))


def _window(
    rng: np.random.Generator, start_us: int, span_us: int, at: float, length_us: int
) -> tuple[int, int]:
    """A minute-aligned window starting near ``at`` (a share of the span)."""
    jitter = rng.uniform(-0.03, 0.03)
    begin = start_us + int(span_us * (at + jitter))
    begin -= begin % MINUTE_US
    begin = max(begin, start_us - start_us % MINUTE_US + MINUTE_US)
    return begin, begin + length_us


def _codes(
    rng: np.random.Generator, method: str, route: str, n: int, mix: list[tuple[int | str, float]]
) -> tuple[np.ndarray, list[str | None]]:
    """Statuses and codes drawn from ``mix``: an int is a plain status, a str a declared code."""
    pick = rng.choice(len(mix), size=n, p=[w for _, w in mix])
    status = np.empty(n, dtype=np.int64)
    codes: list[str | None] = [None] * n
    for k, (what, _) in enumerate(mix):
        rows = np.flatnonzero(pick == k)
        if isinstance(what, str):
            status[rows] = declared_conflict(method, route, what)[0]
            for r in rows:
                codes[r] = what
        else:
            status[rows] = what
    return status, codes


def _in_window(begin: int, end: int) -> pl.Expr:
    us = pl.col("ts").dt.epoch("us")
    return (us >= begin) & (us < end)


def _code_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.filter(CONFLICT).group_by("error_code").len().sort("error_code")
    return {str(code): int(n) for code, n in counts.iter_rows()}


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
        "bad-day": _bad_day,
    }[scenario]
    return builder(rng, lines, start_us, span_us)


# --- hot-document: an optimistic-locking storm on one document -----------------------------------


def _hot_document(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route = "PATCH", "/api/v2/documents/{hex}"
    n = _size(lines, 0.004, 40, 4000)
    begin, end = _window(rng, start_us, span_us, 0.30, min(12 * MINUTE_US, span_us // 6))
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
    rows = _edits(rng, method, route, ts, mix, path, editors[who], agents[who])

    def collect(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("path") == path).select(
            "ts", "method", "status", "error_code", "client"
        )

    def facts(found: pl.DataFrame) -> dict[str, Any]:
        inside = found.filter(_in_window(begin, end) & (pl.col("method") == method))
        return {
            "method": method,
            "route": route,
            "resource": doc,
            "path": path,
            "start": iso(begin),
            "end": iso(end),
            "requests": inside.height,
            "conflicts": int(inside.filter(CONFLICT).height),
            "conflicts_by_code": _code_counts(inside),
            "clients": int(inside["client"].n_unique()),
        }

    return Plan("hot-document", decorate(rows, rng), collect=collect, facts=facts)


# --- signup-surge: a campaign's burst of sign-ups, many with an e-mail already registered ------


def _signup_surge(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route, code = "POST", "/api/v1/users", "EMAIL_TAKEN"
    n = _size(lines, 0.006, 40, 6000)
    begin, end = _window(rng, start_us, span_us, 0.55, min(30 * MINUTE_US, span_us // 4))
    ts = np.sort(rng.integers(begin, end, size=n))
    status, codes = _codes(rng, method, route, n, [(201, 0.55), (code, 0.40), (400, 0.05)])
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
        return frame.filter(on_route & _in_window(begin, end)).select("ts", "status", "error_code")

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
            "conflicts_by_code": _code_counts(found),
            "added_requests": added,
        }

    return facts


# --- order-states: a shipping wave, then customers try to cancel what already left -------------


def _order_states(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    method, route = "POST", "/api/v1/orders/{uuid}/cancel"
    n = _size(lines, 0.004, 30, 4000)
    begin, end = _window(rng, start_us, span_us, 0.70, min(45 * MINUTE_US, span_us // 4))
    ts = np.sort(rng.integers(begin, end, size=n))
    status, codes = _codes(
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


RETRY_CLIENT = "198.51.100.23"
RETRY_AGENT = "inventory-sync/2.3.1 python-requests/2.32.3"


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
SPIKE_FACTOR = 8
SPIKE_MINUTES = 20


def _deploy_spike(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    begin, end = _window(rng, start_us, span_us, 0.62, SPIKE_MINUTES * MINUTE_US)
    window = _in_window(begin, end)

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
        spike=_multiply_conflicts(SPIKE_ROUTES, window),
        collect=collect,
        facts=facts,
    )


# --- bad-day: on the log's last day, a bad deploy, a fought-over document and a retry storm ----

BAD_DAY_SPIKE = (
    ("PUT", "/api/v2/carts/{id}/items/{id}", "CART_VERSION_CONFLICT"),
    ("POST", "/api/v1/payments/{id}/capture", "PAYMENT_ALREADY_CAPTURED"),
)
BAD_DAY_SPIKE_MINUTES = 45
BAD_DAY_EDITORS = 40
BAD_DAY_DOCUMENT_MINUTES = 30
BAD_DAY_STORM_RATE = 4  # tries a second
BAD_DAY_STORM_MINUTES = 3
DAY_US = 24 * 60 * MINUTE_US


def _bad_day(rng: np.random.Generator, lines: int, start_us: int, span_us: int) -> Plan:
    """Three unrelated events on the last day of the log (the whole log when it is shorter),
    hours apart: a 45-minute deploy spike (SPIKE_FACTOR times the usual conflict rate) on two
    routes at about 15:00, one document that 40 clients fight over for 30 minutes at about
    09:00, and one client retrying a conflicting PUT four times a second for 3 minutes at
    about 12:00. Many days of steady traffic before it give baselines their history."""
    day_us = min(DAY_US, span_us)
    day_start = start_us + span_us - day_us
    spike = _window(rng, day_start, day_us, 0.62, BAD_DAY_SPIKE_MINUTES * MINUTE_US)
    document = _window(rng, day_start, day_us, 0.37, BAD_DAY_DOCUMENT_MINUTES * MINUTE_US)
    storm_at = _window(rng, day_start, day_us, 0.50, BAD_DAY_STORM_MINUTES * MINUTE_US)[0]
    doc_rows, doc_path = _fought_over_document(rng, *document)
    storm_rows, storm_path = _tight_retry_loop(rng, storm_at)
    rows = pl.concat([doc_rows, storm_rows]).sort("ts", maintain_order=True)
    in_spike = _in_window(*spike)
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
        spike=_multiply_conflicts(BAD_DAY_SPIKE, in_spike),
        collect=collect,
        facts=facts,
    )


def _multiply_conflicts(
    routes: tuple[tuple[str, str, str], ...], window: pl.Expr
) -> Callable[[pl.DataFrame, np.random.Generator], pl.DataFrame]:
    """Turn enough successful responses in the window into conflicts that each route's
    conflict rate there is SPIKE_FACTOR times its usual rate."""

    def spike(frame: pl.DataFrame, batch_rng: np.random.Generator) -> pl.DataFrame:
        draw = pl.Series(batch_rng.random(frame.height))
        status, code = pl.col("status"), pl.col("error_code")
        for method, route, error_code in routes:
            rate = endpoint(method, route).conflict_rate
            p = (SPIKE_FACTOR - 1) * rate / (1 - rate)
            on_route = (pl.col("method") == method) & (pl.col("route") == route)
            flip = on_route & window & ~CONFLICT & (draw < p)
            new_status = declared_conflict(method, route, error_code)[0]
            status = pl.when(flip).then(pl.lit(new_status, pl.Int64)).otherwise(status)
            code = pl.when(flip).then(pl.lit(error_code)).otherwise(code)
        return frame.with_columns(status=status, error_code=code)

    return spike


def _fought_over_document(
    rng: np.random.Generator, begin: int, end: int
) -> tuple[pl.DataFrame, str]:
    """40 editors saving one document about every 2 minutes each; most saves lose the race."""
    method, route = "PATCH", "/api/v2/documents/{hex}"
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
    rows = _edits(rng, method, route, ts, mix, path, editors[who], agents[who])
    return decorate(rows, rng), path


def _edits(
    rng: np.random.Generator,
    method: str,
    route: str,
    ts: np.ndarray,
    mix: list[tuple[int | str, float]],
    path: str,
    clients: np.ndarray,
    agents: np.ndarray,
) -> pl.DataFrame:
    """Saves of one document by the given clients (indexes into CLIENTS) with their browsers
    (indexes into BROWSER_AGENTS), answered as ``mix`` draws (see _codes)."""
    n = len(ts)
    status, codes = _codes(rng, method, route, n, mix)
    return requests(
        rng,
        endpoint(method, route),
        ts,
        status,
        codes,
        path=pl.Series([path] * n),
        client=pl.Series([CLIENTS[i] for i in clients]),
        user_agent=pl.Series([BROWSER_AGENTS[i] for i in agents]),
    )


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
        client=pl.Series([RETRY_CLIENT] * count),
        user_agent=pl.Series([RETRY_AGENT] * count),
    )
    return decorate(rows, rng).with_columns(if_match=pl.lit('"7"'), referer=pl.lit("-")), path


def _bad_day_spike_facts(found: pl.DataFrame, window: tuple[int, int]) -> dict[str, Any]:
    routes = []
    for method, route, error_code in BAD_DAY_SPIKE:
        mine = found.filter(
            (pl.col("method") == method) & (pl.col("route") == route) & _in_window(*window)
        )
        routes.append(
            {
                "method": method,
                "route": route,
                "error_code": error_code,
                "window_requests": mine.height,
                "window_conflicts": mine.filter(CONFLICT).height,
            }
        )
    return {
        "start": iso(window[0]),
        "end": iso(window[1]),
        "factor": SPIKE_FACTOR,
        "routes": routes,
    }


def _bad_day_document_facts(
    found: pl.DataFrame, path: str, window: tuple[int, int]
) -> dict[str, Any]:
    mine = found.filter((pl.col("path") == path) & (pl.col("method") == "PATCH"))
    return {
        "method": "PATCH",
        "route": "/api/v2/documents/{hex}",
        "resource": path.rsplit("/", 1)[1],
        "path": path,
        "start": iso(window[0]),
        "end": iso(window[1]),
        "requests": mine.height,
        "conflicts": mine.filter(CONFLICT).height,
        "conflicts_by_code": _code_counts(mine),
        "clients": int(mine["client"].n_unique()),
    }


def _bad_day_storm_facts(found: pl.DataFrame, path: str) -> dict[str, Any]:
    # everyday traffic may touch the same user now and then: only the looping client's tries
    mine = found.filter(
        (pl.col("path") == path) & (pl.col("method") == "PUT") & (pl.col("client") == RETRY_CLIENT)
    ).sort("ts")
    stamps = mine["ts"].dt.epoch("us").to_numpy()
    return {
        "client": RETRY_CLIENT,
        "user_agent": RETRY_AGENT,
        "method": "PUT",
        "route": "/api/v1/users/{id}",
        "resource": path.rsplit("/", 1)[1],
        "path": path,
        "error_code": "VERSION_MISMATCH",
        "count": mine.height,
        "start": iso(int(stamps[0])),
        "end": iso(int(stamps[-1])),
        "median_interval_ms": round(float(np.median(np.diff(stamps))) / 1000.0, 3),
    }
