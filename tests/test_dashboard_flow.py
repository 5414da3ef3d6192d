"""An on-call engineer's path through the dashboard in headless Chromium, on demo-like data
(the bad-day sample: a deploy spike, a fought-over document and a retry storm on its last day),
checked against the generator's truth and against the log file itself, read line by line here:
the Overview names the planted incident with its routes, start and peak ratio; its requests in
Explore are exactly the log's conflicts of its clusters in its window; a heatmap cell opens
Resources with its method, route and time; range and filters survive the sidebar, Back and a
reload; a box dragged over the Overview chart sets the range; an annotation posted to serve is
drawn on the chart and named by the incident (with issue 19's backend)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conflictlens.sample_logs.generator import write_log
from tests.e2e_support import ServeProcess
from tests.needs import chrome, needs_browser
from tests.test_dashboard_browser import ARTIFACTS, _event_count, _settled

pytestmark = [pytest.mark.slow, needs_browser]

CONFLICT_STATUSES = {"409", "412", "423", "428"}
LINE = re.compile(
    r'\[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) .* "(?P<code>[^"]*)"$'
)
BUCKET = dt.timedelta(minutes=5)  # incidents are found in 5-minute buckets


@pytest.fixture(scope="module")
def bad_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    """serve with its dashboard on three days of the bad-day sample; the log's path."""
    from click.testing import CliRunner

    from conflictlens.cli import cli

    folder = tmp_path_factory.mktemp("flow")
    log = folder / "access.log"
    write_log(log, 300_000, style="nginx-extended", seed=7, hours=72, scenario="bad-day")
    db = folder / "t.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    config = folder / "conflictlens.toml"
    config.write_text('[reports]\ndirectory = "reports"\n', encoding="utf-8")
    serve = ServeProcess(db, config)
    try:
        yield serve, log
    finally:
        serve.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver: Any = chrome("--window-size=1440,900")
    try:
        yield driver
    finally:
        driver.quit()


# --- the truth, from the generator and from the log's own lines -------------------------------


def planted(log: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
    return truth["planted"]["deploy_spike"]


def route_matchers(log: Path) -> list[tuple[re.Pattern[str], str]]:
    """Each route template of the truth as a pattern over request paths."""
    truth = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
    routes = {r["route"] for r in truth["requests_by_route"]}
    return [
        (re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(r)) + "$"), r) for r in routes
    ]


def read_log(log: Path) -> list[tuple[dt.datetime, str, str | None, bool, str]]:
    """Every request of the log: time (UTC), method, route, conflict or not, error code."""
    matchers = route_matchers(log)
    found = []
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            parsed = LINE.search(line.rstrip("\n"))
            assert parsed, line
            path = parsed["path"].split("?", 1)[0]
            route = next((r for pattern, r in matchers if pattern.match(path)), None)
            moment = dt.datetime.strptime(parsed["ts"], "%d/%b/%Y:%H:%M:%S %z")
            found.append(
                (
                    moment.astimezone(dt.UTC).replace(tzinfo=None),
                    parsed["method"],
                    route,
                    parsed["status"] in CONFLICT_STATUSES,
                    parsed["code"],
                )
            )
    return found


def conflicts_in(
    requests: list[tuple[dt.datetime, str, str | None, bool, str]],
    start: dt.datetime,
    end: dt.datetime,
    clusters: set[tuple[str, str, str]],
) -> int:
    return sum(
        1
        for ts, method, route, conflict, code in requests
        if conflict and start <= ts < end and (method, route, code) in clusters
    )


def peak_bounds(
    requests: list[tuple[dt.datetime, str, str | None, bool, str]],
    start: dt.datetime,
    end: dt.datetime,
    clusters: set[tuple[str, str, str]],
) -> tuple[float, float]:
    """Where an incident's peak ratio must lie: at least the highest ratio any of its
    clusters has over the whole window (a cluster that joins an incident is measured over
    it), at most the highest ratio of any 5-minute bucket of them."""
    conflicts: Counter[tuple[str, str, str, dt.datetime | None]] = Counter()
    totals: Counter[tuple[str, str | None, dt.datetime | None]] = Counter()
    for ts, method, route, conflict, code in requests:
        if not start <= ts < end:
            continue
        bucket = ts - dt.timedelta(minutes=ts.minute % 5, seconds=ts.second)
        for key in (bucket, None):  # the bucket, and the whole window
            totals[(method, route, key)] += 1
            if conflict and (method, route, code) in clusters:
                conflicts[(method, str(route), code, key)] += 1
    ratios = {k: n / totals[(k[0], k[1], k[3])] for k, n in conflicts.items()}
    whole = max(r for k, r in ratios.items() if k[3] is None)
    return whole, max(r for k, r in ratios.items() if k[3] is not None)


# --- the page, read in the browser --------------------------------------------------------------

CARDS = """
return [...document.querySelectorAll('a')].filter(a => a.textContent.includes('Its requests'))
  .map(a => {
    let el = a;
    while (el && !(el.innerText.includes('Open the incident') && el.innerText.includes(' UTC')))
      el = el.parentElement;
    return {text: el ? el.innerText : '', requests: a};
  });
"""
TITLE = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d)\N{EN DASH}(?:(\d{4}-\d\d-\d\d) )?(\d\d:\d\d) UTC"
)


def spike_card(driver: Any, spike: dict[str, Any]) -> dict[str, Any]:
    """The incident card naming both spiked routes."""
    for card in driver.execute_script(CARDS):
        if all(r["route"] in card["text"] for r in spike["routes"]):
            return card  # type: ignore[no-any-return]
    raise AssertionError(f"no incident card names {spike['routes']}")


def card_window(text: str) -> tuple[dt.datetime, dt.datetime]:
    found = TITLE.search(text)
    assert found, text
    day, begin, end_day, end = found.groups()
    return (
        dt.datetime.fromisoformat(f"{day}T{begin}"),
        dt.datetime.fromisoformat(f"{end_day or day}T{end}"),
    )


def query(driver: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def wait_for_title(driver: Any, title: str) -> None:
    _settled(driver, title, 60)
    from selenium.webdriver.common.by import By

    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def event_count(driver: Any) -> int:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: _event_count(d) is not None)
    count = _event_count(driver)
    assert count is not None
    return count


def overview_of_the_week(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> tuple[ServeProcess, Path, dict[str, Any]]:
    """The Overview over 7 days opened; serve, the log and its planted deploy spike."""
    serve, log = bad_day
    browser.get(f"{serve.dashboard_url}/?range=7d")
    wait_for_title(browser, "Overview")
    return serve, log, planted(log)


# --- the tests -----------------------------------------------------------------------------------


def test_the_overview_names_the_planted_incident_and_leads_to_its_requests(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> None:
    _serve, log, spike = overview_of_the_week(bad_day, browser)
    card = spike_card(browser, spike)
    start, end = card_window(card["text"])
    # Found in 5-minute buckets: it starts within two of the planted start, inside the window.
    assert abs(start - dt.datetime.fromisoformat(spike["start"]).replace(tzinfo=None)) <= 2 * BUCKET
    assert end <= dt.datetime.fromisoformat(spike["end"]).replace(tzinfo=None) + BUCKET
    for route in spike["routes"]:
        assert route["route"] in card["text"] and route["error_code"] in card["text"]
    requests = read_log(log)
    clusters = {(r["method"], r["route"], r["error_code"]) for r in spike["routes"]}
    low, high = peak_bounds(requests, start, end, clusters)
    shown = re.search(r"peak ([\d.]+)% of requests", card["text"])
    assert shown, card["text"]
    assert round(low * 100, 1) <= float(shown.group(1)) <= round(high * 100, 1), (low, high)
    assert "vs usual" in card["text"]
    card["requests"].click()
    wait_for_title(browser, "Explore")
    expected = conflicts_in(requests, start, end, clusters)
    assert 0 < expected <= sum(r["window_conflicts"] for r in spike["routes"])
    assert event_count(browser) == expected
    browser.save_screenshot(str(ARTIFACTS / "flow-incident-requests.png"))


def test_an_incident_opens_its_own_view(bad_day: tuple[ServeProcess, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _serve, _log, spike = overview_of_the_week(bad_day, browser)
    start, _ = card_window(spike_card(browser, spike)["text"])
    opened = next(
        a
        for a in browser.find_elements(By.CSS_SELECTOR, "a")
        if "Open the incident" in a.text and start.strftime("%H%%3A%M") in a.get_attribute("href")
    )
    opened.click()
    wait_for_title(browser, "Incident")
    shown = browser.find_element(By.CSS_SELECTOR, '[data-testid="stMain"]').text
    for route in spike["routes"]:
        assert route["route"] in shown
    assert browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert query(browser)["from"] == [start.isoformat()]


HEATMAP_POINT = """
const gd = document.querySelector('.js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const box = gd.getBoundingClientRect();
return [xa._offset + xa.d2p(arguments[0]) - box.width / 2,
        ya._offset + ya.d2p(arguments[1]) - box.height / 2];
"""


def test_a_heatmap_cell_click_opens_resources_with_its_route_and_time(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    serve, log = bad_day
    spike = planted(log)
    route = spike["routes"][0]
    moment = dt.datetime.fromisoformat(spike["start"]).replace(tzinfo=None) + dt.timedelta(
        minutes=10
    )
    browser.get(f"{serve.dashboard_url}/hotspots?range=7d")
    wait_for_title(browser, "Hot spots")
    chart = browser.find_element(By.CSS_SELECTOR, ".js-plotly-plot")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    label = f"{route['method']} {route['route']}"
    dx, dy = browser.execute_script(HEATMAP_POINT, moment.isoformat(sep=" "), label)
    ActionChains(browser).move_to_element_with_offset(chart, int(dx), int(dy)).click().perform()
    wait_for_title(browser, "Resources")
    shown = query(browser)
    assert (shown["method"], shown["route"]) == ([route["method"]], [route["route"]])
    since = dt.datetime.fromisoformat(shown["since"][0])
    until = dt.datetime.fromisoformat(shown["until"][0])
    assert since <= moment < until and until - since <= dt.timedelta(hours=1)
    assert shown["range"] == ["custom"]


def _nav(driver: Any, title: str) -> None:
    from selenium.webdriver.common.by import By

    nav = driver.find_element(By.CSS_SELECTOR, ".st-key-nav")  # the pages' menu (page.menu)
    next(
        a for a in nav.find_elements(By.CSS_SELECTOR, "a") if a.text.strip().endswith(title)
    ).click()
    wait_for_title(driver, title)


def _filters_label(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, ".st-key-filters").text)


def test_range_and_filters_survive_the_sidebar_back_and_a_reload(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> None:
    serve, log = bad_day
    truth = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
    patch = sum(c["conflicts"] for c in truth["conflicts_by_cluster"] if c["method"] == "PATCH")
    browser.get(f"{serve.dashboard_url}/explore?range=7d&method=PATCH")
    wait_for_title(browser, "Explore")
    assert event_count(browser) == patch
    _nav(browser, "Hot spots")
    assert query(browser).get("method") == ["PATCH"] and query(browser).get("range") == ["7d"]
    assert "Filters (1 set)" in _filters_label(browser)
    _nav(browser, "Explore")
    assert event_count(browser) == patch and query(browser).get("method") == ["PATCH"]
    browser.back()
    wait_for_title(browser, "Hot spots")
    assert query(browser).get("method") == ["PATCH"] and query(browser).get("range") == ["7d"]
    assert "Filters (1 set)" in _filters_label(browser)
    browser.refresh()
    wait_for_title(browser, "Hot spots")
    assert query(browser).get("method") == ["PATCH"] and "Filters (1 set)" in _filters_label(
        browser
    )


def test_a_box_dragged_over_the_overview_chart_sets_the_range(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _serve, _log, spike = overview_of_the_week(bad_day, browser)
    chart = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    start = dt.datetime.fromisoformat(spike["start"]).replace(tzinfo=None)
    end = dt.datetime.fromisoformat(spike["end"]).replace(tzinfo=None)
    y = "0"
    left = browser.execute_script(HEATMAP_POINT, start.isoformat(sep=" "), y)
    right = browser.execute_script(HEATMAP_POINT, end.isoformat(sep=" "), y)
    (
        ActionChains(browser)
        .move_to_element_with_offset(chart, int(left[0]), -40)
        .click_and_hold()
        .move_by_offset(int((right[0] - left[0]) / 2), 5)
        .move_by_offset(int((right[0] - left[0]) / 2), 5)
        .release()
        .perform()
    )
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: "since" in query(d))
    wait_for_title(browser, "Overview")
    since = dt.datetime.fromisoformat(query(browser)["since"][0])
    until = dt.datetime.fromisoformat(query(browser)["until"][0])
    # The box is drawn by pixels: its edges land within a column of the planted window's.
    slack = dt.timedelta(minutes=30)
    assert abs(since - start) <= slack and abs(until - end) <= slack
    assert query(browser)["range"] == ["custom"]


def test_a_posted_annotation_is_drawn_and_named_by_the_incident(
    bad_day: tuple[ServeProcess, Path], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    serve, _log, spike = overview_of_the_week(bad_day, browser)
    start, _ = card_window(spike_card(browser, spike)["text"])
    at = start - dt.timedelta(minutes=3)
    status, body = serve.post(
        "/api/annotations", {"at": at.isoformat() + "Z", "text": "orders v1.42", "service": None}
    )
    assert status in (200, 201), body
    browser.get(f"{serve.dashboard_url}/?range=7d")
    wait_for_title(browser, "Overview")
    assert "began 3 min after orders v1.42" in spike_card(browser, spike)["text"]
    chart = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")[0]
    texts = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".annotation-text")]
    assert "orders v1.42" in texts


# --- every view at a laptop's and a phone's size ------------------------------------------------

VIEWS = {
    "overview": ("?range=7d", "Overview"),
    "hotspots": ("hotspots?range=7d", "Hot spots"),
    "hotspots-treemap": ("hotspots?range=7d&section=Treemap", "Hot spots"),
    "hotspots-incidents": ("hotspots?range=7d&section=Incidents", "Hot spots"),
    "resources": ("resources?range=7d", "Resources"),
    "resources-storms": ("resources?range=7d&section=Retry%20storms", "Resources"),
    "explore": ("explore?range=7d", "Explore"),
    "alerts": ("alerts?range=7d", "Alerts"),
    "reports": ("reports", "Reports"),
    "ingest": ("ingest", "Ingest"),
}
SIZES = ((1440, 900), (390, 844))
# Widths as laid out: the main column's content, each chart, each table (its right edge too,
# a table wider than the column would clip its last columns off the page), and the width of
# each chart's plotting area (a heatmap squeezed by its labels to a sliver).
MEASURE = """
const main = document.querySelector('[data-testid="stMainBlockContainer"]');
const style = getComputedStyle(main);
const content = main.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
const right = main.getBoundingClientRect().right - parseFloat(style.paddingRight);
return {
  content: content,
  charts: [...document.querySelectorAll('.js-plotly-plot')].map(p => ({
    width: p.getBoundingClientRect().width,
    plot: p._fullLayout ? p._fullLayout._size.w : null})),
  tables: [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(t => ({
    width: t.getBoundingClientRect().width, right: t.getBoundingClientRect().right})),
  right: right,
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
};
"""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_view_fits_the_screen(
    bad_day: tuple[ServeProcess, Path], size: tuple[int, int]
) -> None:
    serve, _ = bad_day
    driver: Any = chrome(f"--window-size={max(size[0], 500)},{size[1] + 200}")
    # Headless Chromium keeps a window at least 500 px wide: the viewport is set exactly.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, (path, title) in VIEWS.items():
            driver.get(f"{serve.dashboard_url}/{path}")
            wait_for_title(driver, title)
            driver.save_screenshot(str(ARTIFACTS / f"{name}-{size[0]}x{size[1]}.png"))
            found = driver.execute_script(MEASURE)
            assert driver.execute_script("return window.innerWidth") == size[0]
            content = found["content"]
            assert found["overflow"] <= 1, (name, found)  # the page never scrolls sideways
            for chart in found["charts"]:
                assert chart["width"] >= 0.8 * content, (name, found)
                if chart["plot"] is not None:  # the data keeps half the chart at least
                    assert chart["plot"] >= 0.45 * chart["width"], (name, found)
            for table in found["tables"]:
                assert table["right"] <= found["right"] + 1, (name, found)  # scrolls inside
    finally:
        driver.quit()
