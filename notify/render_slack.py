"""The Slack incoming-webhook message (Block Kit), within Slack's limits and escaped for
mrkdwn: no log text becomes a link, a mention or formatting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from conflictlens.notify.alert import (
    Alert,
    code_text,
    measure_text,
    route_text,
    shorten,
    since_text,
    title,
    top_lines,
    traffic_text,
    when,
)


def _mrkdwn(text: str, limit: int = 2000) -> str:
    """Slack's three control characters escaped, and the text within the field's limit."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_time(moment: dt.datetime | None) -> str:
    if moment is None:
        return "unknown"
    # Shown in each reader's own time zone, with the UTC text as the fallback.
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{when(moment)}>"


def render_slack(alert: Alert) -> dict[str, Any]:
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(
        alert.status, ":information_source:"
    )
    since = (
        f"{_slack_time(alert.starts_at)} until {_slack_time(alert.ends_at)}"
        if alert.status == "resolved" and alert.ends_at
        else f"since {_slack_time(alert.starts_at)}"
    )
    fields = [
        f"*Route*\n{_mrkdwn(route_text(alert), 1900)}",
        f"*Error code*\n{_mrkdwn(code_text(alert), 1900)}",
        f"*Value*\n{_mrkdwn(measure_text(alert), 1900)}",
        f"*When*\n{since}",
    ]
    traffic = traffic_text(alert)
    if traffic:
        fields.append(f"*Traffic*\n{_mrkdwn(traffic)}")
    if alert.severity:
        fields.append(f"*Severity*\n{_mrkdwn(alert.severity)}")
    summary = alert.summary
    if alert.status == "test":
        summary = "This is a test notification from conflictlens. " + summary
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": shorten(f"{title(alert)}", 150)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(summary, 3000)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    for heading, key, name in (
        ("Top resources", "top_resources", "resource"),
        ("Top clients", "top_clients", "client"),
    ):
        lines = "\n".join(f"• {_mrkdwn(line, 300)}" for line in top_lines(alert.top(key, name)))
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n{lines}"}}
        )
    if alert.dashboard_url and len(alert.dashboard_url) <= 3000:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open dashboard"},
                        "url": alert.dashboard_url,
                    }
                ],
            }
        )
    else:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "No dashboard link configured."}],
            }
        )
    context = f"conflictlens · rule {alert.rule}"
    if alert.fingerprint:
        context += f" · fingerprint {alert.fingerprint}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(context)}]})
    # ``text`` is what notifications and screen readers show: the whole story in one line.
    text = (
        f"{icon} {title(alert)}: {route_text(alert)}, {code_text(alert)}: {measure_text(alert)}, "
        f"{since_text(alert)}"
    )
    if alert.dashboard_url:
        text += f" {alert.dashboard_url}"
    return {"text": _mrkdwn(text, 3000), "blocks": blocks}
