"""An outbox row's payload as an alert, and the pieces of text every message is made of.

Every message says what a person on call needs: the rule, the route, the error code and its
kind, the value against the threshold or the baseline, the top resources and clients, since
when, and a link to the dashboard. Pure: no clock, no network.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conflictlens._errors import NotifyError

TOP = 5  # resources and clients shown in a message


class RenderError(NotifyError, ValueError):
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


def top_lines(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{name}: {count}" for name, count in pairs] or ["none recorded"]


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (a channel's field limit)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
