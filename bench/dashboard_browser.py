"""Driving headless Chromium through the dashboard: a fresh browser, opening a view and waiting
inside the page until it is open (see MISSING), and the peer (Streamlit with a title only)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from typing import Any

from bench.common import OUT, BenchError, child_env
from bench.dashboard_views import View

VISIT_TIMEOUT_S = 60.0


def wait_for(url: str, seconds: float = 90) -> None:
    """Until ``url`` answers (a server just started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise BenchError(f"{url} did not answer within {seconds:.0f} s")


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        raise BenchError("needs Debian's chromium and chromium-driver (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


# Why a view is not open yet ('' once it is): settled, and every chart and table holds data.
MISSING = """
function hasPoints(trace) {
  // Plotly's own reading of the figure (typed arrays decoded), not the JSON it was given.
  return ['x', 'y', 'z', 'labels', 'values'].some(key => trace[key] && trace[key].length > 0);
}
function chartHoldsData(plot) {
  const traces = (plot._fullData || []).filter(trace => trace.visible !== false);
  if (!traces.some(hasPoints)) return false;
  // and drawn: marks in the SVG (a scatter or bar trace, a treemap slice, a heatmap image)
  return plot.querySelector('.main-svg .trace, .main-svg .slice, .main-svg .hm image') !== null;
}
function tableHoldsRows(table) {
  // The grid draws on a canvas; its accessible copy holds the cells' text. An empty frame
  // still shows one row, of empty cells.
  if (!table.querySelector('canvas')) return false;
  const rows = table.querySelectorAll('[role="grid"] tbody tr');
  return [...rows].some(row => [...row.querySelectorAll('td')].some(td => td.textContent.trim()));
}
function missing(title, charts, tables) {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return 'script running';
  const h1 = document.querySelector('h1');
  if (!h1 || !h1.textContent.includes(title)) return 'no title ' + title;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return 'status widget';
  if (document.querySelector('[data-testid="stSkeleton"]')) return 'skeleton';
  if (document.querySelector('[data-stale="true"]')) return 'stale elements';
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = plots.filter(chartHoldsData).length;
  if (drawn < plots.length || drawn < charts) {
    return `${drawn} of ${Math.max(plots.length, charts)} charts hold data`;
  }
  const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')];
  const filled = grids.filter(tableHoldsRows).length;
  if (filled < grids.length || filled < tables) {
    return `${filled} of ${Math.max(grids.length, tables)} tables hold rows`;
  }
  return '';
}
"""
# Waits inside the page: checked on every change to the page (and every 50 ms besides). Asking
# from the driver every 20 ms instead runs a task on the page's busy main thread each time:
# in a paired run that alone added 0.05-0.1 s to a Hot spots visit.
WAIT_OPEN = (
    MISSING
    + """
const [title, charts, tables] = arguments, done = arguments[arguments.length - 1];
let timer = null;
const observer = new MutationObserver(() => finish());
function finish() {
  if (missing(title, charts, tables) !== '') return;
  observer.disconnect();
  clearInterval(timer);
  done(true);
}
observer.observe(document, {subtree: true, childList: true, attributes: true});
timer = setInterval(finish, 50);
finish();
"""
)


def open_view(driver: Any, url: str, view: View, timeout: float = VISIT_TIMEOUT_S) -> float:
    """Seconds from asking for the view until it is open (see MISSING)."""
    from selenium.common.exceptions import TimeoutException

    driver.set_script_timeout(timeout)
    started = time.perf_counter()
    driver.get(url)
    try:
        driver.execute_async_script(WAIT_OPEN, view.title, view.charts, view.tables)
    except TimeoutException:
        why = driver.execute_script(
            MISSING + "return missing(...arguments);", view.title, view.charts, view.tables
        )
        raise BenchError(f"{url} was not open within {timeout:.0f} s: {why}") from None
    seconds = time.perf_counter() - started
    if driver.find_elements("css selector", '[data-testid="stException"]'):
        raise BenchError(f"{url}: the page shows an exception")
    return seconds


PEER_APP = """import streamlit as st

st.set_page_config(page_title="peer", layout="wide")
st.title("Peer")
"""


def start_peer(port: int) -> subprocess.Popen[bytes]:
    """Streamlit serving a page with only a title, with the dashboard's own flags."""
    from conflictlens.dashboard_process import streamlit_command

    app = OUT / "peer_app.py"
    app.write_text(PEER_APP, encoding="utf-8")
    command = streamlit_command("127.0.0.1", port, script=app)
    return subprocess.Popen(
        command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
