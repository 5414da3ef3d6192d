"""Alertmanager's two bodies: the alerts its API takes from a client such as Prometheus
(``POST /api/v2/alerts``), and the webhook body it POSTs to its own receivers (version 4)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from conflictlens.notify.alert import Alert, facts, measure_text, top_lines

# Labels Alertmanager would have grouped by: the alert engine groups by a subset of these.
GROUP_LABELS = ("alertname", "service", "method", "route", "error_code", "kind")
ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt while an alert fires
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def rfc3339(moment: dt.datetime | None) -> str:
    """Go's RFC3339Nano in UTC, as Alertmanager writes times: ``2026-11-20T10:00:00.5Z``."""
    if moment is None:
        return ZERO_TIME
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


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
        annotations.setdefault(key, "; ".join(top_lines(alert.top(key, name))))
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
    lines.append("Top resources: " + "; ".join(top_lines(alert.top("top_resources", "resource"))))
    lines.append("Top clients: " + "; ".join(top_lines(alert.top("top_clients", "client"))))
    return "\n".join(lines)
