"""Delivering a report to a channel of ``[alerts.channels]``: e-mail with the report as the
HTML body (tables, no script) and the full report attached, a webhook or Slack message with
the summary and a link, or a local command.

The transports are notify.send's (``post_json``, ``send_message``, ``run_command``); only the
messages are made here. Failures raise ``DeliveryError`` with one line and no secret; the report scheduler
records them in the reports index and retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from conflictlens.analysis.reports import ArchivedReport
from conflictlens.analysis.reports.render import MEDIA_TYPES
from conflictlens.analysis.reports.render_html import render_html
from conflictlens.analysis.reports.text import headline, summary_lines
from conflictlens.notify.channels import ChannelConfig, CommandChannel, EmailChannel, HttpChannel
from conflictlens.notify.render import EmailContent
from conflictlens.notify.send import (
    DeliveryError,
    build_email,
    post_json,
    run_command,
    scrub,
    send_message,
)

MAX_SUBJECT = 250
SLACK_TEXT = 2900  # Slack cuts a section's text at 3000 characters


class ReportDelivery:
    """``deliver(channel_name, report)`` for :class:`analysis.reports.ReportScheduler`."""

    def __init__(self, channels: Mapping[str, ChannelConfig]) -> None:
        self.channels = channels
        # A command must not inherit the variables other channels' secrets came from.
        self.hidden_env = {n for c in channels.values() for n in c.secret_env}

    def __call__(self, name: str, archived: ArchivedReport) -> None:
        channel = self.channels.get(name)
        if channel is None:
            raise DeliveryError(f"channel {name} is not configured in [alerts.channels]")
        key = idempotency_key(archived, name)
        try:
            if isinstance(channel, HttpChannel):
                if channel.type == "alertmanager":
                    raise DeliveryError(
                        f"channel {name} is an alertmanager channel: it takes alerts, not reports"
                    )
                message = (
                    slack_message(archived)
                    if channel.type == "slack"
                    else webhook_payload(archived)
                )
                post_json(channel, json.dumps(message, ensure_ascii=False).encode("utf-8"), key)
            elif isinstance(channel, EmailChannel):
                send_message(channel, report_email(channel, archived, key))
            else:
                run_report_command(channel, archived, key, self.hidden_env)
        except DeliveryError as exc:
            raise DeliveryError(scrub(str(exc), channel.secrets())) from None


def idempotency_key(archived: ArchivedReport, channel: str) -> str:
    """The same on every attempt: a receiver (or mail store, by Message-ID) drops repeats."""
    return re.sub(r"[^A-Za-z0-9._:-]", "_", f"report-{archived.entry['id']}-{channel}")


def one_line(text: str) -> str:
    # A line break in a header would end it: report text never adds headers to a mail.
    return re.sub(r"[\r\n\t\0]+", " ", text).strip()


# --- webhook and Slack -----------------------------------------------------------------------


def webhook_payload(archived: ArchivedReport) -> dict[str, Any]:
    report = archived.report
    return {
        "type": "conflictlens.report",
        "id": archived.entry["id"],
        "period": report["period"],
        "summary": headline(report),
        "lines": summary_lines(report),
        "link": archived.link,
        "conflicts": report["conflicts"],
        "requests": report["requests"],
        "ratio": report["ratio"],
        "changes": report["changes"],
        "top_clusters": report["top_clusters"][:5],
        "new_clusters": len(report["new_clusters"]),
        "incidents": len(report["incidents"]),
        "storms": len(report["storms"]),
        "files": [f["name"] for f in archived.entry["files"]],
    }


def slack_escape(text: str) -> str:
    """Slack's own escaping: with ``&``, ``<`` and ``>`` as entities, no log string can
    become a link, a mention or formatting."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(archived: ArchivedReport) -> dict[str, Any]:
    lines = [slack_escape(line) for line in summary_lines(archived.report, top=5)]
    link = archived.link
    body = "\n".join(lines)
    if len(body) > SLACK_TEXT:
        body = body[: SLACK_TEXT - 1] + "…"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
    ]
    if link.startswith(("https://", "http://")):
        safe = link.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{safe}|Open the report>"}}
        )
    else:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(link)}]}
        )
    return {"text": slack_escape(headline(archived.report)), "blocks": blocks}


# --- e-mail ----------------------------------------------------------------------------------


def report_email(channel: EmailChannel, archived: ArchivedReport, key: str) -> EmailMessage:
    """The message: subject with the headline, text and HTML bodies, the report attached
    (its HTML file, else its first file)."""
    report = archived.report
    subject = one_line(f"[conflictlens] report {headline(report)}")
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1] + "…"
    text = "\n".join([*summary_lines(report, top=5), "", f"The report: {archived.link}"])
    content = EmailContent(
        subject, text + "\n", render_html(report, charts=False, link=archived.link)
    )
    message = build_email(channel, content, key)
    files = archived.files
    fmt = "html" if "html" in files else next(iter(files))
    path = files[fmt]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DeliveryError(f"cannot read {path}: {exc.strerror or exc}") from None
    maintype, _, subtype = MEDIA_TYPES[fmt].split(";")[0].partition("/")
    params = {"charset": "utf-8"} if maintype == "text" else {}
    message.add_attachment(
        data, maintype=maintype, subtype=subtype, filename=path.name, params=params
    )
    return message


# --- command ---------------------------------------------------------------------------------


def run_report_command(
    channel: CommandChannel, archived: ArchivedReport, key: str, hidden_env: set[str]
) -> None:
    """The webhook payload on stdin; the report's files and link in the environment."""
    files = archived.files
    env = {
        "CONFLICTLENS_REPORT_ID": str(archived.entry["id"]),
        "CONFLICTLENS_REPORT_FROM": str(archived.report["period"]["from"]),
        "CONFLICTLENS_REPORT_TO": str(archived.report["period"]["to"]),
        "CONFLICTLENS_REPORT_LINK": archived.link,
        "CONFLICTLENS_REPORT_DIR": str(archived.directory),
        "CONFLICTLENS_REPORT_IDEMPOTENCY_KEY": key,
        **{f"CONFLICTLENS_REPORT_{fmt.upper()}": str(path) for fmt, path in files.items()},
    }
    payload = json.dumps(webhook_payload(archived), ensure_ascii=False).encode("utf-8")
    run_command(channel, payload, env, hidden_env=hidden_env)
