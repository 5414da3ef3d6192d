"""The config's [alerts] table -> AlertsConfig. Every refusal names the exact key and the reason
(``alerts.rules[0].window: "5x" is not a duration (e.g. 30s, 5m, 2h)``) as a ValueError; the
config loader adds the file name."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from analysis.alerts.rules import (
    MATCH_KEYS,
    METRICS,
    SEVERITIES,
    AlertRule,
    AlertsConfig,
    Silence,
)

ChannelParser = Callable[[dict[str, Any], str], Mapping[str, Any]]

_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")  # rule names appear in URLs and paths
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # Prometheus label names

SECTION_KEYS = {"evaluation_interval", "dashboard_url", "rules", "silences", "channels"}
RULE_KEYS = {
    "name",
    "match",
    "group_by",
    "metric",
    "window",
    "above",
    "anomaly",
    "min_requests",
    "for",
    "keep_firing_for",
    "repeat_interval",
    "severity",
    "labels",
    "annotations",
    "channels",
}
SILENCE_KEYS = {"matchers", "starts_at", "ends_at", "comment"}


def _shown(value: Any) -> str:
    """A value as JSON for an error message, cut short: the message stays one short line."""
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# A rule is a few hundred bytes: these bound what an edit through the API may store.
MAX_DURATION = dt.timedelta(days=366)
MAX_NAME = 200  # characters of a rule name
MAX_TEXT = 1_000  # characters of a label, match or annotation value
MAX_ENTRIES = 50  # labels, annotations or match keys of one rule


def parse_duration(value: Any, at: str) -> dt.timedelta:
    if not isinstance(value, str) or len(value) > 40 or not _DURATION.match(value.strip()):
        raise ValueError(f"{at}: {_shown(value)} is not a duration (e.g. 30s, 5m, 2h)")
    seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(value))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{at}: {_shown(value)} is longer than {MAX_DURATION.days} days")
    return dt.timedelta(seconds=seconds)


def parse_alerts(section: Any, parse_channels: ChannelParser | None = None) -> AlertsConfig:
    """``parse_channels`` (notify.config's) validates [alerts.channels.NAME]; without it each
    channel is kept as its table."""
    if not isinstance(section, dict):
        raise ValueError("alerts: expected a table ([alerts])")
    _known(section, SECTION_KEYS, "alerts")
    interval = parse_duration(
        section.get("evaluation_interval", "30s"), "alerts.evaluation_interval"
    )
    if interval < dt.timedelta(seconds=1):
        raise ValueError("alerts.evaluation_interval: must be at least 1s")
    url = section.get("dashboard_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url)):
        raise ValueError(f"alerts.dashboard_url: {_shown(url)} is not an http(s) URL")
    channels = _channels(section.get("channels", {}), parse_channels)
    rules = section.get("rules", [])
    if not isinstance(rules, list):
        raise ValueError("alerts.rules: expected [[alerts.rules]] entries")
    parsed = tuple(_rule(entry, f"alerts.rules[{i}]", channels) for i, entry in enumerate(rules))
    names = [r.name for r in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"alerts.rules[{i}].name: {_shown(name)} is used by another rule")
    silences = section.get("silences", [])
    if not isinstance(silences, list):
        raise ValueError("alerts.silences: expected [[alerts.silences]] entries")
    return AlertsConfig(
        evaluation_interval=interval,
        dashboard_url=url.rstrip("/") if url else None,
        rules=parsed,
        silences=tuple(_silence(s, f"alerts.silences[{i}]") for i, s in enumerate(silences)),
        channels=channels,
    )


def parse_rule(entry: Any, channels: Mapping[str, Any], at: str = "rule") -> AlertRule:
    """One [[alerts.rules]] table on its own (a rule being edited), checked as the config
    loader checks it, against the channels in force."""
    return _rule(entry, at, channels)


def _known(table: dict[str, Any], known: set[str], at: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{at}.{key}: unknown key (known: {', '.join(sorted(known))})")


def _channels(table: Any, parse_channels: ChannelParser | None) -> Mapping[str, Any]:
    if not isinstance(table, dict):
        raise ValueError("alerts.channels: expected [alerts.channels.NAME] tables")
    if parse_channels is not None:
        return parse_channels(table, "alerts.channels")
    for name, channel in table.items():
        if not isinstance(channel, dict):
            raise ValueError(f"alerts.channels.{name}: expected a table")
    return dict(table)


def _strings(value: Any, at: str, *, keys: re.Pattern[str] | None = None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{at}: expected a table of strings")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"{at}: {len(value):,} entries; at most {MAX_ENTRIES}")
    for key, text in value.items():
        if not isinstance(text, str) or not text:
            raise ValueError(f"{at}.{key}: expected a non-empty string")
        if len(key) > MAX_NAME or len(text) > MAX_TEXT:
            raise ValueError(
                f"{at}.{_shown(key)}: longer than {MAX_NAME} characters (key) or {MAX_TEXT} (value)"
            )
        if keys is not None and not keys.match(key):
            raise ValueError(f"{at}.{key}: not a label name (letters, digits, _)")
    return dict(value)


def _number(value: Any, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{at}: {_shown(value)} is not a number")
    if not math.isfinite(value):  # `above = nan` is a rule that can never fire
        raise ValueError(f"{at}: {_shown(value)} is not a finite number")
    return float(value)


def _rule(entry: Any, at: str, channels: Mapping[str, Any]) -> AlertRule:
    if not isinstance(entry, dict):
        raise ValueError(f"{at}: expected a table")
    _known(entry, RULE_KEYS, at)
    name = entry.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
        raise ValueError(
            f"{at}.name: {_shown(name)} is not a rule name (letters, digits, and _ . : - inside)"
        )
    match = _strings(entry.get("match", {}), f"{at}.match")
    _known(match, set(MATCH_KEYS), f"{at}.match")
    if "method" in match:
        match["method"] = match["method"].upper()
    group_by = entry.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(k, str) for k in group_by):
        raise ValueError(f"{at}.group_by: expected a list of {', '.join(MATCH_KEYS)}")
    for key in group_by:
        if key not in MATCH_KEYS:
            raise ValueError(f"{at}.group_by: {_shown(key)} is not one of {', '.join(MATCH_KEYS)}")
    if len(set(group_by)) != len(group_by):
        raise ValueError(f"{at}.group_by: a key is listed twice")
    metric = entry.get("metric", "ratio")
    if metric not in METRICS:
        raise ValueError(f"{at}.metric: {_shown(metric)} is not one of {', '.join(METRICS)}")
    if "window" not in entry:
        raise ValueError(f"{at}.window: required (e.g. 5m)")
    window = parse_duration(entry["window"], f"{at}.window")
    if window < dt.timedelta(minutes=1) or window % dt.timedelta(minutes=1):
        raise ValueError(f"{at}.window: must be whole minutes (requests are counted per minute)")
    above, anomaly = _condition(entry, at, metric)
    min_requests = entry.get("min_requests", 0)
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 0:
        raise ValueError(f"{at}.min_requests: expected a whole number of at least 0")
    repeat = parse_duration(entry.get("repeat_interval", "4h"), f"{at}.repeat_interval")
    if not repeat:
        raise ValueError(f"{at}.repeat_interval: must be more than 0s")
    severity = entry.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"{at}.severity: {_shown(severity)} is not one of {', '.join(SEVERITIES)}")
    labels = _strings(entry.get("labels", {}), f"{at}.labels", keys=_LABEL)
    for key in labels:
        if key in ("alertname", "severity", *group_by):
            raise ValueError(
                f"{at}.labels.{key}: set by the rule itself (name, severity, group_by)"
            )
    return AlertRule(
        name=name,
        window=window,
        metric=metric,
        match=match,
        group_by=tuple(group_by),
        above=above,
        anomaly=anomaly,
        min_requests=min_requests,
        pending_for=parse_duration(entry.get("for", "0s"), f"{at}.for"),
        keep_firing_for=parse_duration(entry.get("keep_firing_for", "0s"), f"{at}.keep_firing_for"),
        repeat_interval=repeat,
        severity=severity,
        labels=labels,
        annotations=_strings(entry.get("annotations", {}), f"{at}.annotations"),
        channels=_rule_channels(entry.get("channels", []), f"{at}.channels", channels),
    )


def _condition(entry: dict[str, Any], at: str, metric: str) -> tuple[float | None, float | None]:
    if ("above" in entry) == ("anomaly" in entry):
        raise ValueError(f"{at}: set exactly one of above (a number) or anomaly (e.g. 3.0)")
    if "above" in entry:
        above = _number(entry["above"], f"{at}.above")
        if above < 0 or (metric == "ratio" and above >= 1):
            limit = "between 0 and 1" if metric == "ratio" else "at least 0"
            raise ValueError(f"{at}.above: {_shown(entry['above'])} must be {limit} for {metric}")
        return above, None
    anomaly = _number(entry["anomaly"], f"{at}.anomaly")
    if anomaly <= 0:
        raise ValueError(f"{at}.anomaly: must be more than 0 (spreads above the baseline)")
    return None, anomaly


def _rule_channels(value: Any, at: str, channels: Mapping[str, Any]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{at}: expected a list of channel names")
    for name in value:
        if name not in channels:
            known = ", ".join(sorted(channels)) or "none defined"
            raise ValueError(f"{at}: no channel {_shown(name)} in [alerts.channels] ({known})")
    return tuple(value)


def _instant(value: Any, at: str) -> dt.datetime:
    """A TOML date-time or date, or an ISO-8601 string; without offset it is UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{at}: {_shown(value)} is not an ISO-8601 date-time") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{at}: {_shown(value)} is not a date-time")
    moment: dt.datetime = value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _silence(entry: Any, at: str) -> Silence:
    if not isinstance(entry, dict):
        raise ValueError(f"{at}: expected a table")
    _known(entry, SILENCE_KEYS, at)
    matchers = _strings(entry.get("matchers", {}), f"{at}.matchers")
    if not matchers:
        raise ValueError(f'{at}.matchers: at least one matcher (e.g. rule = "NAME")')
    for key in ("starts_at", "ends_at"):
        if key not in entry:
            raise ValueError(f"{at}.{key}: required (e.g. 2026-11-20T00:00:00Z)")
    starts, ends = (
        _instant(entry["starts_at"], f"{at}.starts_at"),
        _instant(entry["ends_at"], f"{at}.ends_at"),
    )
    if ends <= starts:
        raise ValueError(f"{at}.ends_at: must be after starts_at")
    comment = entry.get("comment", "")
    if not isinstance(comment, str):
        raise ValueError(f"{at}.comment: expected a string")
    return Silence(matchers, starts, ends, comment)
