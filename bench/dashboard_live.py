"""The dashboard benchmark's third phase: visits while serve follows a log that a thread appends
to, each visit started only once the store has changed since the one before."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import BenchError, percentile
from bench.dashboard_views import LIVE_P95_BAR_S, VIEWS, view_name
from bench.dashboard_visits import visits_with_peer
from bench.line_writer import LinePool, Writer, make_pool
from bench.tail_serve import SOURCES_PATH
from bench.tail_serve import stored_lines as lines_of

POOL_SECONDS = 120  # the appended lines are generated up front: this many seconds of them
STORE_CHANGE_TIMEOUT_S = 30.0  # a live store changes every flush (0.5 s)


def append_pool(end: str, rate: int) -> LinePool:
    """POOL_SECONDS of nginx lines at ``rate``, their timestamps continuing from ``end`` at
    the pace they are written."""
    start = dt.datetime.fromisoformat(end)
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    return make_pool(
        rate * POOL_SECONDS,
        seed=21,
        end=start + dt.timedelta(seconds=POOL_SECONDS),
        hours=POOL_SECONDS / 3600,
    )


def stored_lines(api: str, log: Path) -> int:
    """Lines serve has committed for ``log`` (0 before it has picked the file up)."""
    with urllib.request.urlopen(api + SOURCES_PATH, timeout=30) as answer:
        return lines_of(json.loads(answer.read()), str(log))


def wait_until(what: str, ready: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {seconds:.0f} s")
        time.sleep(0.05)


class StoreChanges:
    """Waits, before each timed visit, until the store's files have changed since the last
    visit started: the dashboard keys its cached answers on them (``store_version``), so the
    visit asks serve's store again."""

    def __init__(self, db: Path) -> None:
        # Imported outside a Streamlit server, its cached functions warn that there is no
        # runtime: true, and beside the point here.
        logging.getLogger("streamlit.runtime.caching.cache_data_api").disabled = True
        from conflictlens.dashboard.data import store_version

        self.version: Callable[[], tuple[int, ...]] = lambda: store_version(db)
        self.last = self.version()
        self.waits: list[float] = []

    def __call__(self) -> None:
        started = time.monotonic()
        wait_until(
            "the store did not change (is serve still following the appended file?)",
            lambda: self.version() != self.last,
            STORE_CHANGE_TIMEOUT_S,
        )
        self.last = self.version()
        self.waits.append(time.monotonic() - started)


def live_visits(
    driver: Any, dash: str, peer_url: str, api: str, db: Path, args: argparse.Namespace, end: str
) -> dict[str, Any]:
    print(
        f"phase 3: {args.visits} visits of each view while {args.append_rate:,} lines/s are "
        "appended to a followed log",
        flush=True,
    )
    pool = append_pool(end, args.append_rate)
    log = db.parent / "logs" / "live.log"
    writer = Writer(log, pool, args.append_rate, 24 * 3600, 0)
    writer.start()
    rows, peer_times = [], []
    try:
        wait_until(
            "serve stored none of the appended lines", lambda: stored_lines(api, log) > 0, 60
        )
        changes = StoreChanges(db)
        for path, view in VIEWS.items():
            url = f"{dash}/{path}"
            times, beside = visits_with_peer(driver, url, view, peer_url, args.visits, changes)
            peer_times += beside
            p95 = percentile(times, 95)
            rows.append(
                {
                    "view": view_name(path, view.title),
                    "p95_s": round(p95, 3),
                    "median_s": round(statistics.median(times), 3),
                    "visits_s": [round(t, 3) for t in times],
                    "peer_s": round(statistics.median(beside), 3),
                    "pass": p95 <= LIVE_P95_BAR_S,
                }
            )
    finally:
        writer.halt.set()
        writer.join(timeout=30)
    if writer.error is not None:
        raise BenchError(f"appending to {log} failed: {writer.error}")
    return {
        "bar_p95_s": LIVE_P95_BAR_S,
        "append_rate": args.append_rate,
        "lines_written": writer.written,
        "lines_stored": stored_lines(api, log),
        "store_change_waits_s": [round(t, 3) for t in changes.waits],
        "peer_visits_s": [round(t, 3) for t in peer_times],
        "views": rows,
    }
