"""The message each channel type sends, made from an outbox row's payload JSON.

Every message says what a person on call needs: the rule, the route, the error code and its
kind, the value against the threshold or the baseline, the top resources and clients, since
when, and a link to the dashboard. Rendering is pure: no clock, no network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Labels Alertmanager would have grouped by: the alert engine groups by a subset of these.
GROUP_LABELS = ("alertname", "service", "method", "route", "error_code", "kind")
ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt while an alert fires
TOP = 5  # resources and clients shown in a message
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


class RenderError(ValueError):
    """The payload cannot become a message (not JSON, not an object, no rule)."""


@dataclass(frozen=True)
class Alert:
    """Typed, forgiving access to the payload: a missing optional key reads as "none"."""

    data: dict[str, Any]

    @classmethod
    def parse(cls, payload: str) -> Alert:
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise RenderError(f"payload is not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise RenderError("payload is nested too deeply") from None
        if not isinstance(data, dict):
            raise RenderError("payload is not a JSON object")
        for key in ("rule", "status"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise RenderError(f"payload has no {key}")
        return cls(data)

    def _text(self, key: str) -> str | None:
        value = self.data.get(key)
        return None if value is None or value == "" else str(value)

    @property
    def rule(self) -> str:
        return str(self.data["rule"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def fingerprint(self) -> str:
        return self._text("fingerprint") or ""

    @property
    def labels(self) -> dict[str, str]:
        return _string_dict(self.data.get("labels"))

    @property
    def annotations(self) -> dict[str, str]:
        return _string_dict(self.data.get("annotations"))

    def label(self, name: str) -> str | None:
        return self.labels.get(name)

    @property
    def severity(self) -> str | None:
        return self._text("severity") or self.label("severity")

    @property
    def starts_at(self) -> dt.datetime | None:
        return _parse_time(self.data.get("starts_at"))

    @property
    def ends_at(self) -> dt.datetime | None:
        return _parse_time(self.data.get("ends_at"))

    @property
    def dashboard_url(self) -> str | None:
        url = self._text("dashboard_url")
        # Only web links become clickable: a javascript: or data: URL is not a dashboard.
        return url if url and url.lower().startswith(("http://", "https://")) else None

    @property
    def summary(self) -> str:
        return self._text("summary") or f"{self.rule} is {self.status}"

    def top(self, key: str, name: str) -> list[tuple[str, str]]:
        """``top_resources``/``top_clients`` as (name, "N conflicts") pairs, at most TOP."""
        items = self.data.get(key)
        pairs = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get(name) is not None:
                pairs.append((str(item[name]), _conflicts(item.get("conflicts"))))
        return pairs[:TOP]


def _string_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None and v != ""}


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Naive times in the store mean UTC; so do naive times here.
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}"


def _conflicts(value: Any) -> str:
    if value is None:
        return "? conflicts"
    return f"{_number(value)} conflict{'' if value == 1 else 's'}"


def _metric_value(metric: str | None, value: Any) -> str:
    if value is None:
        return "n/a"
    if metric == "ratio" and isinstance(value, int | float):
        return f"{value * 100:.3g} %"
    if metric == "rate":  # the alert engine's rate is per minute
        return f"{_number(value)} conflicts/min"
    return _conflicts(value) if metric in (None, "count") else _number(value)


def when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown"


def rfc3339(moment: dt.datetime | None) -> str:
    """Go's RFC3339Nano in UTC, as Alertmanager writes times: ``2026-11-20T10:00:00.5Z``."""
    if moment is None:
        return ZERO_TIME
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def title(alert: Alert) -> str:
    state = {"firing": "FIRING", "resolved": "RESOLVED", "test": "TEST"}.get(
        alert.status, alert.status.upper()
    )
    return f"{state}: {alert.rule}"


def route_text(alert: Alert) -> str:
    method, route, service = alert.label("method"), alert.label("route"), alert.label("service")
    text = " ".join(part for part in (method, route) if part) or "all routes"
    return f"{text} (service {service})" if service else text


def code_text(alert: Alert) -> str:
    code, kind = alert.label("error_code"), alert.label("kind")
    text = code or "no error code"
    return f"{text}, kind {kind}" if kind else text


def measure_text(alert: Alert) -> str:
    """``42 conflicts in 5m against threshold 10 (baseline median 3, MAD 1.5, weekly)``."""
    data = alert.data
    metric = data.get("metric") if isinstance(data.get("metric"), str) else None
    text = _metric_value(metric, data.get("value"))
    if data.get("window"):
        text += f" in {data['window']}"
    against = []
    if data.get("threshold") is not None:
        against.append(f"threshold {_metric_value(metric, data['threshold'])}")
    baseline = data.get("baseline")
    if isinstance(baseline, dict) and baseline.get("median") is not None:
        part = f"baseline median {_metric_value(metric, baseline['median'])}"
        if baseline.get("mad") is not None:
            part += f", MAD {_metric_value(metric, baseline['mad'])}"
        if baseline.get("method"):
            part += f" ({baseline['method']})"
        against.append(part)
    return text + (" against " + "; ".join(against) if against else "")


def traffic_text(alert: Alert) -> str | None:
    requests, conflicts = alert.data.get("requests"), alert.data.get("conflicts")
    if requests is None and conflicts is None:
        return None
    return (
        f"{_conflicts(conflicts)} in {_number(requests) if requests is not None else '?'} requests"
    )


def since_text(alert: Alert) -> str:
    if alert.status == "resolved" and alert.ends_at:
        return f"{when(alert.starts_at)} until {when(alert.ends_at)}"
    return f"since {when(alert.starts_at)}"


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The lines every human-readable message shows, in order."""
    rows = [
        ("Rule", alert.rule + (f" (severity {alert.severity})" if alert.severity else "")),
        ("Route", route_text(alert)),
        ("Error code", code_text(alert)),
        ("Value", measure_text(alert)),
    ]
    traffic = traffic_text(alert)
    if traffic:
        rows.append(("Traffic", traffic))
    rows.append(("When", since_text(alert)))
    rows.append(("Dashboard", alert.dashboard_url or "no dashboard link configured"))
    return rows


def _top_lines(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name}: {count}" for name, count in pairs] or ["none recorded"]


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
        lines += ["", f"{heading}:"] + [f"  {line}" for line in _top_lines(alert.top(key, name))]
    extra = {k: v for k, v in alert.annotations.items() if k not in ("summary", "description")}
    if alert.annotations.get("description"):
        lines += ["", alert.annotations["description"]]
    if extra:
        lines += ["", "Annotations:"] + [f"  {k}: {v}" for k, v in sorted(extra.items())]
    lines += ["", f"Labels: {', '.join(f'{k}={v}' for k, v in sorted(alert.labels.items()))}"]
    if alert.fingerprint:
        lines.append(f"Fingerprint: {alert.fingerprint}")
    return "\n".join(lines) + "\n"


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


# --- Alertmanager's API (POST /api/v2/alerts) ------------------------------------------------


def render_postable_alerts(
    alert: Alert, now: dt.datetime, lifetime: dt.timedelta
) -> list[dict[str, Any]]:
    """What Alertmanager accepts from a client such as Prometheus (``PostableAlerts``): one
    alert with the rule's labels and the message as annotations. A firing alert ends by
    itself ``lifetime`` after ``now`` unless pushed again; a resolved one ends when it did."""
    labels = _am_labels(alert)
    annotations = dict(alert.annotations)
    annotations.setdefault("summary", alert.summary)
    annotations.setdefault("description", _description(alert))
    annotations.setdefault("value", measure_text(alert))
    for key, name in (("top_resources", "resource"), ("top_clients", "client")):
        annotations.setdefault(key, "; ".join(_top_lines(alert.top(key, name))))
    if alert.dashboard_url:
        annotations.setdefault("dashboard", alert.dashboard_url)
    starts = alert.starts_at or now
    ends = max(alert.ends_at or now, starts) if alert.status == "resolved" else now + lifetime
    item: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }
    if alert.dashboard_url:
        item["generatorURL"] = alert.dashboard_url
    return [item]


def _am_labels(alert: Alert) -> dict[str, str]:
    """The alert's labels as Prometheus names, with alertname and severity."""
    labels = {_label_name(k): v for k, v in alert.labels.items()}
    labels.setdefault("alertname", alert.rule)
    if alert.severity:
        labels.setdefault("severity", alert.severity)
    return labels


# --- Alertmanager webhook, version 4 ---------------------------------------------------------


def _label_name(name: str) -> str:
    cleaned = _LABEL_NAME.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _label_set(labels: dict[str, str]) -> str:
    """Prometheus' LabelSet.String(): ``{a="1", b="2"}``, sorted by name."""
    return "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def _am_fingerprint(fingerprint: str) -> str:
    """Alertmanager fingerprints are 16 hex digits; a longer stable hash keeps its prefix."""
    if re.fullmatch(r"[0-9a-f]{16,}", fingerprint):
        return fingerprint[:16]
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


def _origin(url: str | None) -> str:
    match = re.match(r"^(https?://[^/?#]+)", url or "")
    return match.group(1) if match else ""


def render_alertmanager(alert: Alert, receiver: str) -> dict[str, Any]:
    """The body Alertmanager's webhook_config POSTs (version "4"), for one alert: receivers
    built for Alertmanager (EDA, Alerta, karma, custom bridges) take it unchanged: a webhook
    channel with ``format = "alertmanager-v4"``."""
    labels = _am_labels(alert)
    annotations = dict(alert.annotations)
    annotations.setdefault("summary", alert.summary)
    annotations.setdefault("description", _description(alert))
    if alert.dashboard_url:
        annotations.setdefault("dashboard", alert.dashboard_url)
    # Alertmanager knows firing and resolved only; a test notification fires.
    status = "resolved" if alert.status == "resolved" else "firing"
    group = {k: labels[k] for k in GROUP_LABELS if k in labels}
    return {
        "receiver": receiver,
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at) if status == "resolved" else ZERO_TIME,
                "generatorURL": alert.dashboard_url or "",
                "fingerprint": _am_fingerprint(alert.fingerprint or alert.rule),
            }
        ],
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": _origin(alert.dashboard_url),
        "version": "4",
        "groupKey": "{}:" + _label_set(group),
        "truncatedAlerts": 0,
    }


def _description(alert: Alert) -> str:
    lines = [f"{label}: {value}" for label, value in facts(alert)[1:]]
    lines.append("Top resources: " + "; ".join(_top_lines(alert.top("top_resources", "resource"))))
    lines.append("Top clients: " + "; ".join(_top_lines(alert.top("top_clients", "client"))))
    return "\n".join(lines)


# --- Slack incoming webhook ------------------------------------------------------------------


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
            "text": {"type": "plain_text", "text": _plain(f"{title(alert)}", 150)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(summary, 3000)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    for heading, key, name in (
        ("Top resources", "top_resources", "resource"),
        ("Top clients", "top_clients", "client"),
    ):
        lines = "\n".join(f"• {_mrkdwn(line, 300)}" for line in _top_lines(alert.top(key, name)))
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


def _plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- e-mail ----------------------------------------------------------------------------------


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
    return EmailContent(_plain(subject, 250), plain_text(alert), _html(alert))


def _html(alert: Alert) -> str:
    esc = html.escape
    rows = []
    for label, value in facts(alert):
        if label == "Dashboard" and alert.dashboard_url:
            url = esc(alert.dashboard_url, quote=True)
            value_html = f'<a href="{url}">{esc(alert.dashboard_url)}</a>'
        else:
            value_html = esc(value)
        rows.append(
            f'<tr><th align="left" valign="top">{esc(label)}</th><td>{value_html}</td></tr>'
        )
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family: sans-serif">',
        f"<h2>{esc(title(alert))}</h2>",
    ]
    if alert.status == "test":
        parts.append("<p><em>This is a test notification from conflictlens.</em></p>")
    parts += [f"<p>{esc(alert.summary)}</p>", "<table>", *rows, "</table>"]
    for heading, key, name in (
        ("Top resources", "top_resources", "resource"),
        ("Top clients", "top_clients", "client"),
    ):
        items = "".join(f"<li>{esc(line)}</li>" for line in _top_lines(alert.top(key, name)))
        parts.append(f"<h3>{heading}</h3><ul>{items}</ul>")
    if alert.fingerprint:
        parts.append(f"<p><small>Fingerprint {esc(alert.fingerprint)}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
