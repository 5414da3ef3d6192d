"""The dashboard benchmark's first two phases: each view's first visit in a fresh browser, then
warm visits in one browser, each followed by a visit of the peer."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from bench.common import BenchError
from bench.dashboard_browser import browser, open_view
from bench.dashboard_views import FIRST_VISIT_BAR_S, PEER, VIEWS, WARM_BAR_S, View, view_name

WARMUP_LOADS = 3  # a view's first loads in phase 2, not timed (the browser's one-time costs)


def api_seconds(
    api: str, queries: list[tuple[str, dict[str, Any]]], ranged: set[str], end: str
) -> float:
    """Seconds for the page's queries over the same 24 h through serve's API."""
    since = (dt.datetime.fromisoformat(end) - dt.timedelta(days=1)).isoformat()
    started = time.perf_counter()
    for name, params in queries:
        window = {"since": since, "until": end} if name in ranged else {}
        query = urllib.parse.urlencode({**params, **window, "format": "arrow"})
        url = f"{api}/api/queries/{name}?{query}"
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            raise BenchError(f"{url}: {exc.code} {exc.read()[:200]!r}") from None
    return time.perf_counter() - started


# --- phase 1: first visits --------------------------------------------------------------


def cold_visit(url: str, view: View) -> float:
    """One visit in a browser of its own (a fresh profile: nothing cached)."""
    driver = browser()
    try:
        return open_view(driver, url, view)
    finally:
        driver.quit()


def first_visits(dash: str, peer_url: str) -> dict[str, Any]:
    print("phase 1: each view's first visit, in a fresh browser, no warm-up", flush=True)
    rows = []
    for path, view in VIEWS.items():
        seconds = cold_visit(f"{dash}/{path}", view)
        print(f"  {view_name(path, view.title):<26} {seconds:6.2f} s", flush=True)
        rows.append({"view": view_name(path, view.title), "seconds": round(seconds, 3)})
    peer = cold_visit(peer_url, PEER)
    print(f"  {'peer (a title only)':<26} {peer:6.2f} s", flush=True)
    return {"peer_s": round(peer, 3), "views": rows}


def visits_after_restart(driver: Any, dash: str) -> dict[str, Any]:
    """Each view's first visit since serve (and its dashboard) restarted, in a browser that
    had the dashboard open before: nothing any view asks is cached in serve or the
    dashboard, and the browser has Streamlit's and Plotly's code, as the browser of a user
    who keeps the dashboard open has."""
    print("phase 1b: each view's first visit after serve restarted, in the browser that had "
          "the dashboard open", flush=True)  # fmt: skip
    rows = []
    for path, view in VIEWS.items():
        seconds = open_view(driver, f"{dash}/{path}", view)
        print(f"  {view_name(path, view.title):<26} {seconds:6.2f} s", flush=True)
        rows.append(
            {
                "view": view_name(path, view.title),
                "seconds": round(seconds, 3),
                "pass": seconds <= FIRST_VISIT_BAR_S,
            }
        )
    return {"bar_s": FIRST_VISIT_BAR_S, "views": rows}


# --- phase 2: warm visits ---------------------------------------------------------------


def warm_visits(
    driver: Any, dash: str, peer_url: str, api: str, visits: int, end: str
) -> dict[str, Any]:
    print(f"phase 2: {WARMUP_LOADS} untimed loads of each view, then {visits} timed", flush=True)
    catalog = json.loads(urllib.request.urlopen(api + "/api/queries", timeout=30).read())
    ranged = {q["name"] for q in catalog if "since" in q["params"]}
    for _ in range(WARMUP_LOADS):
        open_view(driver, peer_url, PEER)
    rows, peer_times = [], []
    for path, view in VIEWS.items():
        url = f"{dash}/{path}"
        warmup = [open_view(driver, url, view) for _ in range(WARMUP_LOADS)]
        # Each timed visit is followed by one of the peer: the machine's speed moves from
        # minute to minute, and the peer shows it beside each view.
        times, beside = visits_with_peer(driver, url, view, peer_url, visits)
        peer_times += beside
        data = statistics.median(api_seconds(api, view.queries, ranged, end) for _ in range(3))
        rows.append(
            {
                "view": view_name(path, view.title),
                "warmup_s": [round(t, 3) for t in warmup],
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "visits_s": [round(t, 3) for t in times],
                "peer_s": round(statistics.median(beside), 3),
                "queries_s": round(data, 3),
                "pass": max(times) <= WARM_BAR_S,
            }
        )
    return {"bar_s": WARM_BAR_S, "peer_visits_s": [round(t, 3) for t in peer_times], "views": rows}


def visits_with_peer(
    driver: Any,
    url: str,
    view: View,
    peer_url: str,
    visits: int,
    before_each: Callable[[], None] = lambda: None,
) -> tuple[list[float], list[float]]:
    times, beside = [], []
    for _ in range(visits):
        before_each()
        times.append(open_view(driver, url, view))
        beside.append(open_view(driver, peer_url, PEER))
    return times, beside
