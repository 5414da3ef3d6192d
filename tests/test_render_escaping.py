"""Escaping is the templates' job: a route and an error code from a log that are markup reach the
HTML report, the report's e-mail body and the alert e-mail body only as text."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from conflictlens.analysis.reports.render_html import render_html
from conflictlens.notify.render import Alert, render_email
from tests.test_notify import make_payload
from tests.test_reports import hostile_report

IMG = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


class Elements(HTMLParser):
    """Every element and attribute name a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]


def elements(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def report_with_markup() -> dict[str, Any]:
    report = hostile_report()
    cluster = report["top_clusters"][0] | {"route": "/orders/" + IMG, "error_code": IMG}
    report["top_clusters"] = report["new_clusters"] = [cluster]
    return report


def alert_email_html() -> str:
    labels = make_payload()["labels"] | {"route": "/orders/" + IMG, "error_code": IMG}
    return render_email(Alert(make_payload(labels=labels))).html


@pytest.mark.parametrize(
    ("name", "page", "times"),
    [
        # route and error code, in the top clusters and in the new clusters
        ("report", lambda: render_html(report_with_markup()), 4),
        ("report e-mail", lambda: render_html(report_with_markup(), charts=False), 4),
        ("alert e-mail", alert_email_html, 2),
    ],
)
def test_markup_in_a_route_and_an_error_code_is_only_text(name, page, times):
    html = page()
    assert IMG not in html, f"{name}: the raw tag is in the page"
    assert html.count(ESCAPED) >= times, f"{name}: not shown escaped"
    found = elements(html)
    assert "img" not in found.tags, f"{name}: an <img> element would be built"
    assert not [a for a in found.attributes if a.startswith("on")], f"{name}: an event handler"
