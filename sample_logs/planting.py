"""What the planted scenarios share: the plan a scenario returns, where and how much it plants,
the saves of a fought-over document, a deploy's multiplied conflicts, and the facts' helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from conflictlens.sample_logs.catalog import (
    BROWSER_AGENTS,
    CLIENTS,
    CONFLICT_STATUSES,
    declared_conflict,
    endpoint,
)
from conflictlens.sample_logs.columns import empty, requests

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


def planted_count(lines: int, share: float, low: int, high: int) -> int:
    return int(min(max(round(lines * share), low), high, lines // 4))


def window_near(
    rng: np.random.Generator, start_us: int, span_us: int, at: float, length_us: int
) -> tuple[int, int]:
    """A minute-aligned window starting near ``at`` (a share of the span)."""
    jitter = rng.uniform(-0.03, 0.03)
    begin = start_us + int(span_us * (at + jitter))
    begin -= begin % MINUTE_US
    begin = max(begin, start_us - start_us % MINUTE_US + MINUTE_US)
    return begin, begin + length_us


def draw_codes(
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


def within(begin: int, end: int) -> pl.Expr:
    us = pl.col("ts").dt.epoch("us")
    return (us >= begin) & (us < end)


def counts_by_code(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.filter(CONFLICT).group_by("error_code").len().sort("error_code")
    return {str(code): int(n) for code, n in counts.iter_rows()}


RETRY_CLIENT = "198.51.100.23"
RETRY_AGENT = "inventory-sync/2.3.1 python-requests/2.32.3"

SPIKE_FACTOR = 8


def multiply_conflicts(
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


def document_edits(
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
    status, codes = draw_codes(rng, method, route, n, mix)
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


DOCUMENT_ROUTE = "/api/v2/documents/{hex}"


def document_facts(saves: pl.DataFrame, path: str, window: tuple[int, int]) -> dict[str, Any]:
    """The facts of a fought-over document from its PATCHes (``saves``) in ``window``."""
    return {
        "method": "PATCH",
        "route": DOCUMENT_ROUTE,
        "resource": path.rsplit("/", 1)[1],
        "path": path,
        "start": iso(window[0]),
        "end": iso(window[1]),
        "requests": saves.height,
        "conflicts": int(saves.filter(CONFLICT).height),
        "conflicts_by_code": counts_by_code(saves),
        "clients": int(saves["client"].n_unique()),
    }
