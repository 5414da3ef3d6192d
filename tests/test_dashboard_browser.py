"""End to end in a real browser: `conflictlens serve` starts the dashboard on a store of
sample data; Debian's headless Chromium opens every page (no Streamlit exception, its title
and parts drawn, its server found at the first ask), a filter picked in the sidebar narrows
the events, and a screenshot of each page is kept in test-artifacts/dashboard/."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conflictlens.dashboard.passwords import hash_password
from conflictlens.sample_logs.generator import write_log
from tests.needs import chrome, needs_browser
from tests.test_serve import CLI, free_port, run

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboard"
PAGES = {
    "": "Overview",
    "hotspots": "Hot spots",
    "resources": "Resources",
    "explore": "Explore",
    "alerts": "Alerts",
    "reports": "Reports",
    "ingest": "Ingest",
}

# A drawn treemap trace. Plotly gives every figure an empty treemap layer (the heatmap too), so
# the layer alone says nothing.
TREEMAP = ".js-plotly-plot .treemaplayer .trace"

pytestmark = [
    pytest.mark.slow,
    needs_browser,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The dashboard's address, with serve running on the store in its folder."""
    folder = tmp_path_factory.mktemp("browser")
    log = folder / "access.log"
    write_log(log, 20_000, style="nginx-extended", seed=5, hours=6, scenario="hot-document")
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    config = folder / "conflictlens.toml"  # one rule for Alerts, one report for Reports
    config.write_text(
        '[reports]\ndirectory = "reports"\n\n[[alerts.rules]]\nname = "hot-route"\n'
        'group_by = ["route"]\nmetric = "count"\nwindow = "5m"\nabove = 10\n',
        encoding="utf-8",
    )
    day = ("--period", "2026-11-19", "--tz", "UTC")  # the Reports page opens this one
    assert (
        run("report", "--db", str(db), "--config", str(config), *day, "--archive").returncode == 0
    )
    port = free_port()
    where = ("--db", str(db), "--config", str(config))
    serve = subprocess.Popen(
        [*CLI, "serve", *where, "--port", str(free_port()), "--dashboard-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/_stcore/health")
        yield url, db
    finally:
        serve.terminate()
        serve.wait(timeout=20)


@pytest.fixture(scope="module")
def dashboard_url(served: tuple[str, Path]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def truth(served: tuple[str, Path]) -> dict[str, Any]:
    """The generator's ground truth of the served store's log (6 hours: inside the 24 h range)."""
    text = (served[1].parent / "access.log.truth.json").read_text(encoding="utf-8")
    found: dict[str, Any] = json.loads(text)
    return found


def _wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds:.0f} s")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    driver: Any = chrome("--window-size=1400,1000")
    try:
        yield driver
    finally:
        driver.quit()


def _settled(driver: object, title: str, timeout: float = 30) -> None:
    """Wait until the page's title is drawn and Streamlit has stopped running the script."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "h1"), title))
    # The title is drawn first; the run is over when Streamlit says its script is not running
    # and shows no status, no skeleton and no element left stale from the run before, twice
    # in a row.
    done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    busy = '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-stale="true"]'
    calm: list[bool] = []

    def settled(d: object) -> bool:
        calm.append(
            bool(d.find_elements(By.CSS_SELECTOR, done))
            and not d.find_elements(By.CSS_SELECTOR, busy)
        )
        return calm[-2:] == [True, True]

    WebDriverWait(driver, timeout, poll_frequency=0.25).until(settled)


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_page_opens_without_an_error(browser: object, dashboard_url: str, path: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{dashboard_url}/{path}")
    _settled(browser, PAGES[path])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{path or 'overview'}.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    drawn = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"], .js-plotly-plot')
    assert drawn, f"{path or 'overview'} drew no table or chart"
    # Told where its server is (dashboard/server.py), the page asks it once, at the root: not
    # first under its own address, then again after 100 ms.
    assert _health_checks(browser) == [f"{dashboard_url}/_stcore/health"]


def test_a_page_under_a_path_prefix_finds_its_server(
    browser: object, served: tuple[str, Path]
) -> None:
    """Served under a prefix (as behind a proxy), a page's address minus its name is the base."""
    from selenium.webdriver.common.by import By

    _, db = served
    env = {**os.environ, "STREAMLIT_SERVER_BASE_URL_PATH": "lens"}
    with running_dashboard(db, env=env, prefix="/lens") as base:
        browser.get(base + "/hotspots")
        _settled(browser, "Hot spots")
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
        assert _health_checks(browser) == [base + "/_stcore/health"]


@contextlib.contextmanager
def running_dashboard(
    db: Path, *args: str, env: dict[str, str] | None = None, prefix: str = ""
) -> Iterator[str]:
    """`conflictlens dashboard` on its own port, running until the block ends; yields its URL."""
    port = free_port()
    dashboard = subprocess.Popen(
        [*CLI, "dashboard", "--db", str(db), "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}{prefix}"
    try:
        _wait_for(url + "/_stcore/health")
        yield url
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=20)


def test_a_page_opened_at_its_own_address_asks_for_the_password_first(
    browser: object, served: tuple[str, Path]
) -> None:
    """The first visit after a start goes straight to /hotspots, as an alert's link does: the
    login comes first there too (it once guarded "/" alone, see dashboard/app.py), and after
    it the link's own view opens, with its tab and filters."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, db = served
    config = db.parent / "with-login.toml"  # the hash from the config, as a user keeps it
    config.write_text(
        f'[dashboard]\npassword_hash = "{hash_password("s3cret", iterations=1000)}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "CONFLICTLENS_DASHBOARD_PASSWORD_HASH"}
    with running_dashboard(db, "--config", str(config), env=env) as url:
        link = "hotspots?section=Treemap&method=PATCH"
        for path in (link, "", "resources"):
            browser.get(f"{url}/{path}")
            _settled(browser, "conflictlens")
            assert browser.find_elements(By.CSS_SELECTOR, 'input[type="password"]'), path
            assert not browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"), path
            assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'), path
            assert not browser.find_elements(By.CSS_SELECTOR, ".st-key-nav"), path  # no menu
        browser.get(f"{url}/{link}")
        _settled(browser, "conflictlens")
        browser.find_element(By.CSS_SELECTOR, 'input[type="password"]').send_keys("s3cret")
        browser.find_element(By.CSS_SELECTOR, '[data-testid="stFormSubmitButton"] button').click()
        _settled(browser, "Hot spots")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, TREEMAP))
        assert browser.current_url == f"{url}/{link}"
        assert "Filters (1 set)" in browser.find_element(By.CSS_SELECTOR, ".st-key-filters").text
        nav = browser.find_element(By.CSS_SELECTOR, ".st-key-nav").text
        assert "Hot spots" in nav and "app" not in nav.split()  # the app's own menu
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"]')


def _health_checks(driver: object) -> list[str]:
    """The health checks the page made since it was opened."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('_stcore/health'))"
    )


def test_overview_shows_the_planted_totals(
    browser: Any, dashboard_url: str, truth: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{dashboard_url}/?range=24h")
    _settled(browser, "Overview")
    shown = {
        metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip(): (
            metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
        )
        for metric in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]')
    }
    assert shown == {
        "Conflicts": f"{truth['conflicts']:,}",
        "Requests": f"{truth['lines']:,}",
        "Conflict ratio": f"{truth['conflicts'] / truth['lines']:.2%}",
    }


def test_a_filter_click_narrows_the_events(
    browser: object, dashboard_url: str, truth: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{dashboard_url}/explore")
    _settled(browser, "Explore")
    WebDriverWait(browser, 30).until(lambda d: _event_count(d) is not None)
    before = _event_count(browser)
    # The cluster filters are in the sidebar's Filters popover: drawn once it is opened.
    browser.find_element(By.CSS_SELECTOR, '.st-key-filters [data-testid="stPopoverButton"]').click()
    box = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '.st-key-method [role="combobox"]')
    )[0]
    box.click()
    options = WebDriverWait(browser, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '[role="option"]')
    )
    next(o for o in options if o.text.strip() == "PATCH").click()
    WebDriverWait(browser, 30).until(lambda d: _event_count(d) not in (None, before))
    after = _event_count(browser)
    patch = sum(c["conflicts"] for c in truth["conflicts_by_cluster"] if c["method"] == "PATCH")
    assert (before, after) == (truth["conflicts"], patch)  # the generator's counts
    assert 0 < patch < truth["conflicts"]
    assert "method=PATCH" in browser.current_url  # the view is a link
    assert "Filters (1 set)" in browser.find_element(By.CSS_SELECTOR, ".st-key-filters").text
    browser.save_screenshot(str(ARTIFACTS / "explore-filtered.png"))


def test_a_tab_click_draws_its_part_and_goes_in_the_url(
    browser: object, dashboard_url: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{dashboard_url}/hotspots")
    _settled(browser, "Hot spots")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == 1  # the heatmap
    assert not browser.find_elements(By.CSS_SELECTOR, TREEMAP)
    tab = next(
        t for t in browser.find_elements(By.CSS_SELECTOR, '[role="tab"]') if t.text == "Treemap"
    )
    tab.click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, TREEMAP))
    _settled(browser, "Hot spots")
    assert len(browser.find_elements(By.CSS_SELECTOR, TREEMAP)) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == 1  # no heatmap
    assert tab.get_attribute("aria-selected") == "true"
    assert "section=Treemap" in browser.current_url
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    browser.save_screenshot(str(ARTIFACTS / "hotspots-treemap.png"))


def _event_count(driver: object) -> int | None:
    from selenium.webdriver.common.by import By

    for label in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stWidgetLabel"]'):
        found = re.search(r"; ([\d,]+) events\)", label.text)
        if found:
            return int(found.group(1).replace(",", ""))
    return None


@pytest.mark.parametrize(("scheme", "dark"), [("dark", True), ("light", False)])
def test_the_dashboard_follows_the_systems_colour_scheme(
    browser: Any, dashboard_url: str, scheme: str, dark: bool
) -> None:
    """No theme is forced: a browser that prefers dark gets the dark theme, charts included."""
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    try:
        browser.get(f"{dashboard_url}/")
        _settled(browser, "Overview")
        browser.save_screenshot(str(ARTIFACTS / f"overview-{scheme}.png"))
        background = browser.execute_script(
            "return getComputedStyle(document.querySelector('[data-testid=\"stApp\"]'))"
            ".backgroundColor"
        )
        red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
        assert (red + green + blue < 200) is dark, background
        # The charts draw on the page's background, not on a white card of their own.
        paper = browser.execute_script(
            "const bg = document.querySelector('.js-plotly-plot .main-svg');"
            "return bg ? getComputedStyle(bg).backgroundColor : null"
        )
        if paper is not None and dark:
            values = [int(v) for v in re.findall(r"\d+", paper)[:3]]
            alpha = re.findall(r"[\d.]+", paper)[3:4]
            assert sum(values) < 200 or (alpha and float(alpha[0]) == 0), paper
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
