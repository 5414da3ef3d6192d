"""The HTML report in a real browser (Debian's headless Chromium, opened from a file:// URL):
built from a log whose paths, user agents and error codes carry script payloads, no payload
runs (not on load, not on hover, not on any event), the payloads show as text, Plotly itself
draws its charts, the page fetches nothing, and it prints. A screenshot and the printed PDF
are kept in test-artifacts/reports/."""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conflictlens.analysis.reports import day_period, local_queries
from conflictlens.analysis.reports.build import build_report
from conflictlens.analysis.reports.render_html import render_html
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from tests.helpers import clf_ts
from tests.needs import chrome, needs_browser
from tests.test_reports import ingest, run_report

pytestmark = [
    pytest.mark.slow,
    needs_browser,
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "reports"
TITLE = "conflictlens report · 2026-11-19 (UTC)"

# Each would set window.__xss (or the title, or a DOM marker) if it ever ran.
PAYLOADS = (
    "<script>document.title='pwned';window.__xss=1</script>",
    '"onmouseover="window.__xss=2" x="',
    "<img src=x onerror=\"window.__xss=3;document.body.dataset.xss='3'\">",
    '<svg onload="window.__xss=4"><circle r=9 /></svg>',
    "</script><script>window.__xss=5</script><!--",
    "<a href=\"javascript:window.__xss=6\">link</a><b onmouseover='window.__xss=7'>b</b>",
    "' onfocus='window.__xss=8' autofocus='",
)


def nginx_quoted(text: str) -> str:
    """A value inside one of nginx's quoted fields: nginx writes " as \\x22."""
    return text.replace("\\", "\\x5C").replace('"', "\\x22")


def hostile_lines(day: dt.datetime) -> list[str]:
    lines = []
    at = day + dt.timedelta(hours=10)

    def line(n: int, path: str, agent: str, code: str, client: str = "10.0.0.1") -> str:
        moment = clf_ts(at + dt.timedelta(seconds=n))
        return (
            f'{client} - - [{moment}] "PUT {path} HTTP/1.1" 409 12 "-" '
            f'"{nginx_quoted(agent)}" 0.012 "{nginx_quoted(code)}"'
        )

    n = 0
    for number, payload in enumerate(PAYLOADS):
        segment = urllib.parse.quote(payload, safe="")
        for _ in range(12):  # error codes, and paths whose route keeps the payload
            lines.append(line(n, f"/api/v1/users/{number}", "curl/8.5.0", payload))
            lines.append(
                line(n + 1, f"/api/hostile/{segment}/items/7", "curl/8.5.0", "VERSION_MISMATCH")
            )
            n += 2
        for _ in range(6):  # a retry storm whose user agent is the payload
            lines.append(
                line(
                    n,
                    "/api/v2/documents/abcdef1234",
                    payload,
                    "VERSION_MISMATCH",
                    f"10.9.9.{number}",
                )
            )
            n += 1
    lines.append(PAYLOADS[0])  # not a log line: a reject
    return lines


def add_hostile_alert(db: Path) -> None:
    """An alert whose rule, severity and summary are payloads."""
    with closing(connect(db)) as con:
        payload = {
            "rule": PAYLOADS[0],
            "status": "firing",
            "severity": PAYLOADS[2],
            "summary": PAYLOADS[5],
            "labels": {"route": PAYLOADS[1]},
        }
        at = dt.datetime(2026, 11, 19, 12)
        con.execute(
            "INSERT INTO alert_outbox (created_at, channel, rule, fingerprint, status, payload, next_attempt_at) "
            "VALUES (?, ?, ?, ?, 'firing', ?, ?)",
            [at, PAYLOADS[3], PAYLOADS[0], "f1", json.dumps(payload), at],
        )  # fmt: skip


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The HTML report and the e-mail body for 2026-11-19 of a store with hostile lines."""
    folder = tmp_path_factory.mktemp("hostile")
    day = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)
    background = folder / "access.log"
    write_log(
        background, 3_000, style="nginx-extended", seed=9, hours=24, end=day + dt.timedelta(days=1)
    )
    hostile = folder / "hostile.log"
    hostile.write_text("\n".join(hostile_lines(day)) + "\n", encoding="utf-8")
    db = folder / "t.duckdb"
    ingest(db, background, hostile)
    add_hostile_alert(db)
    page = folder / "report.html"
    result = run_report(
        "--db", db, "--period", "2026-11-19", "--tz", "UTC", "--top", 200, "--out", page
    )
    assert result.exit_code == 0, result.output
    with closing(connect(db, read_only=True)) as con:
        report = build_report(local_queries(con), day_period(day.date(), "UTC"), generated=day)
    mail = folder / "mail.html"
    mail.write_text(render_html(report, charts=False, link=page.as_uri()), encoding="utf-8")
    # Every kind of payload made it into the report's data, where the page must show it.
    data = json.dumps(report)
    for payload in PAYLOADS[:3]:
        assert json.dumps(payload)[1:-1] in data
    assert any(PAYLOADS[0] in (s.get("user_agent") or "") for s in report["storms"])
    assert any("/api/hostile/" in r["route"] for r in report["hot_resources"])
    assert [a["rule"] for a in report["alerts"]] == [PAYLOADS[0]]
    return page, mail


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver: Any = chrome("--window-size=1280,1800", logging=True)
    try:
        yield driver
    finally:
        driver.quit()


RAN = """
return {
  xss: window.__xss === undefined ? null : String(window.__xss),
  marker: document.body.dataset.xss || null,
  title: document.title,
  handlers: Array.from(document.querySelectorAll('*')).filter(function (el) {
    return Array.from(el.attributes).some(function (a) { return /^on/i.test(a.name); });
  }).map(function (el) { return el.outerHTML.slice(0, 120); }),
  scripts: document.scripts.length,
  injected: document.querySelectorAll('img, iframe, object, embed, svg circle, a[href^="javascript"]').length,
  fetched: performance.getEntriesByType('resource').map(function (r) { return r.name; })
};
"""

EVERY_EVENT = """
var kinds = ['mouseover', 'mouseenter', 'mousemove', 'click', 'focus', 'load', 'error', 'animationstart'];
document.querySelectorAll('*').forEach(function (el) {
  kinds.forEach(function (kind) { el.dispatchEvent(new Event(kind, {bubbles: true})); });
});
"""


def open_page(driver: Any, page: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def test_no_payload_runs_and_plotly_draws(browser: Any, hostile_report: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page, _ = hostile_report
    open_page(browser, page)
    WebDriverWait(browser, 20).until(
        lambda d: (
            d.execute_script(
                "return document.querySelectorAll('.js-plotly-plot svg.main-svg').length"
            )
            >= 2
        )
    )
    state = browser.execute_script(RAN)
    assert state == {
        "xss": None,
        "marker": None,
        "title": TITLE,
        "handlers": [],
        "scripts": 3,
        "injected": 0,
        "fetched": [],
    }
    # Plotly's "share to Plotly Cloud" (an upload) is not offered; saving a PNG works offline.
    assert browser.execute_script(
        "return document.querySelectorAll('.modebar-btn[data-title*=Cloud], .modebar-btn[data-title*=Share], .modebar-btn[data-title*=Edit]').length"
    ) == 0  # fmt: skip
    image = browser.execute_async_script(
        "var done = arguments[0];"
        "Plotly.toImage(document.getElementById('chart-trend'), {format: 'png'}).then(done, function (e) { done(String(e)); });"
    )  # fmt: skip
    assert image.startswith("data:image/png;base64,")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report.png"))
    # Hover every bar of the clusters chart: Plotly draws the (escaped) names as hover text.
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-clusters .barlayer .point path")
    assert len(bars) == 10
    shown = []
    for bar in bars:
        ActionChains(browser).move_to_element(bar).perform()
        WebDriverWait(browser, 5).until(
            lambda d: (
                d.execute_script(
                    "return document.querySelectorAll('#chart-clusters .hoverlayer .hovertext').length"
                )
                > 0
            )
        )
        shown.append(browser.execute_script(
            "return document.querySelector('#chart-clusters .hoverlayer .hovertext').textContent"
        ))  # fmt: skip
    assert any(PAYLOADS[0] in text for text in shown), shown  # a payload shown as text
    # No error and no CSP violation so far: escaping alone kept every payload inert, and
    # the page's own scripts ran under its policy. (The synthetic events below make Plotly's
    # own handlers complain, so the log is read first.)
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []
    browser.execute_script(EVERY_EVENT)
    after = browser.execute_script(RAN)
    assert (after["xss"], after["marker"], after["title"], after["handlers"]) == (
        None,
        None,
        TITLE,
        [],
    )
    # The payloads are on the page as text: escaped, not dropped.
    text = browser.find_element(By.TAG_NAME, "body").text
    for payload in PAYLOADS[:4]:
        assert payload in text


def test_the_email_body_runs_nothing(browser: Any, hostile_report: tuple[Path, Path]) -> None:
    _, mail = hostile_report
    open_page(browser, mail)
    browser.execute_script(EVERY_EVENT)
    state = browser.execute_script(RAN)
    assert state["scripts"] == 0 and state["injected"] == 0 and state["handlers"] == []
    assert (state["xss"], state["marker"], state["fetched"]) == (None, None, [])
    assert PAYLOADS[0] in browser.execute_script("return document.body.innerText")


def test_it_prints(browser: Any, hostile_report: tuple[Path, Path]) -> None:
    page, _ = hostile_report
    open_page(browser, page)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    hidden = browser.execute_script(
        "var bar = document.querySelector('.modebar-container');"
        "return bar === null || getComputedStyle(bar).display === 'none';"
    )
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert hidden
    pdf = browser.execute_cdp_cmd(
        "Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True}
    )
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF")
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    assert 1 < pages < 40
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(data)
