"""The message each channel type sends, made from an outbox row's payload JSON: one place to
import them from. Rendering is pure: no clock, no network.

* generic webhook and command: the payload itself (here);
* Alertmanager, its API and its webhook body: notify.render_alertmanager;
* Slack: notify.render_slack;
* e-mail, text and HTML: notify.render_email;
* the payload as an alert and the text every message shares: notify.alert.
"""

from __future__ import annotations

from typing import Any

from conflictlens.notify.alert import (
    TOP,
    Alert,
    RenderError,
    code_text,
    facts,
    measure_text,
    route_text,
    since_text,
    title,
    traffic_text,
    when,
)
from conflictlens.notify.render_alertmanager import (
    GROUP_LABELS,
    ZERO_TIME,
    render_alertmanager,
    render_postable_alerts,
    rfc3339,
)
from conflictlens.notify.render_email import EmailContent, plain_text, render_email
from conflictlens.notify.render_slack import render_slack

__all__ = [
    "GROUP_LABELS",
    "TOP",
    "ZERO_TIME",
    "Alert",
    "EmailContent",
    "RenderError",
    "code_text",
    "command_environment",
    "facts",
    "measure_text",
    "plain_text",
    "render_alertmanager",
    "render_email",
    "render_postable_alerts",
    "render_slack",
    "render_webhook",
    "rfc3339",
    "route_text",
    "since_text",
    "title",
    "traffic_text",
    "when",
]


# --- generic webhook and command: the payload itself -----------------------------------------


def render_webhook(payload: str) -> bytes:
    """The stored payload, byte for byte, once checked to be a usable alert."""
    Alert.parse(payload)
    return payload.encode("utf-8")


def command_environment(
    alert: Alert, *, outbox_id: int, channel: str, idempotency_key: str
) -> dict[str, str]:
    """``CONFLICTLENS_ALERT_*``: the fields a shell script wants without parsing JSON."""
    data = alert.data
    values: dict[str, Any] = {
        "ID": outbox_id,
        "CHANNEL": channel,
        "IDEMPOTENCY_KEY": idempotency_key,
        "RULE": alert.rule,
        "STATUS": alert.status,
        "FINGERPRINT": alert.fingerprint,
        "SEVERITY": alert.severity,
        "SERVICE": alert.label("service"),
        "METHOD": alert.label("method"),
        "ROUTE": alert.label("route"),
        "ERROR_CODE": alert.label("error_code"),
        "KIND": alert.label("kind"),
        "METRIC": data.get("metric"),
        "WINDOW": data.get("window"),
        "VALUE": data.get("value"),
        "THRESHOLD": data.get("threshold"),
        "STARTS_AT": data.get("starts_at"),
        "ENDS_AT": data.get("ends_at"),
        "SUMMARY": alert.summary,
        "DASHBOARD_URL": alert.dashboard_url,
    }
    # The environment cannot hold NUL bytes; a NUL in a payload string must not stop delivery.
    return {
        f"CONFLICTLENS_ALERT_{key}": ("" if value is None else str(value)).replace("\0", "")
        for key, value in values.items()
    }
