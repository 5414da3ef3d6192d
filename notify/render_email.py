"""The alert e-mail: a one-line subject, a plain-text body and an HTML body.

The HTML body is a Jinja2 template with autoescape on (notify/templates/alert_email.html.j2):
log text (routes, error codes, summaries) reaches it as text only. The plain-text body stays
code: it aligns its labels in columns, which a template would only make harder to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jinja2

from conflictlens._templates import package_template
from conflictlens.notify.alert import (
    Alert,
    code_text,
    facts,
    measure_text,
    route_text,
    shorten,
    title,
    top_lines,
)


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def _one_line(text: str) -> str:
    # A line break in a header would end it: a payload must never add headers to a mail.
    return re.sub(r"[\r\n\t\0]+", " ", text).strip()


def render_email(alert: Alert) -> EmailContent:
    subject = _one_line(
        f"[conflictlens] {title(alert)}: {route_text(alert)}, {code_text(alert)}: "
        f"{measure_text(alert)}"
    )
    return EmailContent(shorten(subject, 250), plain_text(alert), _html(alert))


def plain_text(alert: Alert) -> str:
    lines = [title(alert), alert.summary, ""]
    if alert.status == "test":
        lines[1:1] = ["This is a test notification from conflictlens."]
    width = max(len(label) for label, _ in facts(alert)) + 2
    lines += [f"{label + ':':<{width}}{value}" for label, value in facts(alert)]
    for heading, key, name in (
        ("Top resources", "top_resources", "resource"),
        ("Top clients", "top_clients", "client"),
    ):
        lines += ["", f"{heading}:"] + [f"  {line}" for line in top_lines(alert.top(key, name))]
    extra = {k: v for k, v in alert.annotations.items() if k not in ("summary", "description")}
    if alert.annotations.get("description"):
        lines += ["", alert.annotations["description"]]
    if extra:
        lines += ["", "Annotations:"] + [f"  {k}: {v}" for k, v in sorted(extra.items())]
    lines += ["", f"Labels: {', '.join(f'{k}={v}' for k, v in sorted(alert.labels.items()))}"]
    if alert.fingerprint:
        lines.append(f"Fingerprint: {alert.fingerprint}")
    return "\n".join(lines) + "\n"


def _html_template() -> jinja2.Template:
    return package_template("conflictlens.notify", "alert_email.html.j2")


def _html(alert: Alert) -> str:
    return _html_template().render(
        title=title(alert),
        test=alert.status == "test",
        summary=alert.summary,
        facts=facts(alert),
        dashboard_url=alert.dashboard_url,
        tops=[
            (heading, top_lines(alert.top(key, name)))
            for heading, key, name in (
                ("Top resources", "top_resources", "resource"),
                ("Top clients", "top_clients", "client"),
            )
        ],
        fingerprint=alert.fingerprint,
    )
