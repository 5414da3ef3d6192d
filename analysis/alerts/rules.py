"""Alert rules and silences as the engine uses them (parsed from the config's [alerts] table by
``analysis.alerts.config``). Times are naive UTC like every timestamp in the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MATCH_KEYS: tuple[str, ...] = ("service", "method", "route", "error_code", "kind")
# Request rollups know only these: a group's requests are counted on these of its keys.
REQUEST_KEYS: tuple[str, ...] = ("service", "method", "route")
METRICS: tuple[str, ...] = ("count", "ratio", "rate")
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")

Group = tuple[str | None, ...]  # the rule's group_by values, in group_by order


@dataclass(frozen=True)
class AlertRule:
    """One [[alerts.rules]] entry. Exactly one of ``above`` and ``anomaly`` is set."""

    name: str
    window: dt.timedelta
    metric: str = "ratio"
    match: Mapping[str, str] = field(default_factory=dict)  # key -> glob (* and ?)
    group_by: tuple[str, ...] = ()
    above: float | None = None
    anomaly: float | None = None  # k: value > baseline median + k x spread
    min_requests: int = 0
    pending_for: dt.timedelta = dt.timedelta(0)  # `for` in the config
    keep_firing_for: dt.timedelta = dt.timedelta(0)
    repeat_interval: dt.timedelta = dt.timedelta(hours=4)
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()

    def group_labels(self, group: Group) -> dict[str, str]:
        """The group's values as labels; a missing value (no error code) is no label, as in
        Prometheus."""
        return {k: v for k, v in zip(self.group_by, group, strict=True) if v is not None}

    def labels_for(self, group: Group) -> dict[str, str]:
        return {
            **self.group_labels(group),
            **self.labels,
            "alertname": self.name,
            "severity": self.severity,
        }

    def group_from_labels(self, labels: Mapping[str, str]) -> Group:
        return tuple(labels.get(k) for k in self.group_by)

    def fingerprint(self, group: Group) -> str:
        return fingerprint(self.name, self.group_by, group)

    def condition_text(self) -> str:
        if self.anomaly is not None:
            return f"{self.metric} > baseline median + {self.anomaly:g} x spread"
        return f"{self.metric} > {self.above:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "match": dict(self.match),
            "group_by": list(self.group_by),
            "metric": self.metric,
            "window": duration_text(self.window),
            "above": self.above,
            "anomaly": self.anomaly,
            "condition": self.condition_text(),
            "min_requests": self.min_requests,
            "for": duration_text(self.pending_for),
            "keep_firing_for": duration_text(self.keep_firing_for),
            "repeat_interval": duration_text(self.repeat_interval),
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "channels": list(self.channels),
        }

    def to_table(self) -> dict[str, Any]:
        """The rule as its [[alerts.rules]] table, defaults left out: what an editor starts
        from and writes back."""
        table: dict[str, Any] = {"name": self.name}
        if self.match:
            table["match"] = dict(self.match)
        if self.group_by:
            table["group_by"] = list(self.group_by)
        table["metric"] = self.metric
        table["window"] = duration_text(self.window)
        if self.above is not None:
            table["above"] = self.above
        if self.anomaly is not None:
            table["anomaly"] = self.anomaly
        optional = {
            "min_requests": (self.min_requests, 0),
            "for": (duration_text(self.pending_for), "0s"),
            "keep_firing_for": (duration_text(self.keep_firing_for), "0s"),
            "repeat_interval": (duration_text(self.repeat_interval), "4h"),
            "severity": (self.severity, "warning"),
            "labels": (dict(self.labels), {}),
            "annotations": (dict(self.annotations), {}),
            "channels": (list(self.channels), []),
        }
        table.update({key: value for key, (value, default) in optional.items() if value != default})
        return table

    def group_key(self, group: Group) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.group_labels(group).items())
        return f"{self.name}{{{inner}}}"


def fingerprint(rule: str, keys: Sequence[str], group: Group) -> str:
    """Stable across restarts and versions: a hash of the rule name and its group's labels."""
    text = json.dumps([rule, [[k, v] for k, v in zip(keys, group, strict=True)]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Silence:
    """Notifications of alerts whose labels match every matcher are held back in
    [starts_at, ends_at). The matcher ``rule`` (or ``alertname``) names the rule."""

    matchers: Mapping[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    comment: str = ""
    id: int | None = None  # None: declared in the config file

    def covers(self, labels: Mapping[str, str], now: dt.datetime) -> bool:
        if not self.starts_at <= now < self.ends_at:
            return False
        for key, value in self.matchers.items():
            name = "alertname" if key == "rule" else key
            if labels.get(name) != value:
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "comment": self.comment,
            "source": "config" if self.id is None else "store",
        }


@dataclass(frozen=True)
class AlertsConfig:
    """The [alerts] table: rules, silences declared in the file, and the channels."""

    evaluation_interval: dt.timedelta = dt.timedelta(seconds=30)
    dashboard_url: str | None = None
    rules: tuple[AlertRule, ...] = ()
    silences: tuple[Silence, ...] = ()
    channels: Mapping[str, Any] = field(default_factory=dict)  # name -> channel config

    def rule(self, name: str) -> AlertRule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        known = ", ".join(r.name for r in self.rules) or "none configured"
        raise KeyError(f"no alert rule named {name!r} (known: {known})")


def iso(value: dt.datetime | None) -> str | None:
    """ISO-8601 with offset for a naive-UTC or aware value."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat()


def duration_text(value: dt.timedelta) -> str:
    """30s, 5m, 2h, 1d, or combinations (1h30m): the form the config is written in."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
