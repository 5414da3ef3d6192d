"""The [alerts] table declared once: each key with its type, default, check and documentation.
Loading (analysis.alerts.config), the errors that name the exact key, the API's rule schema and
the config reference derive from these models. Channels are validated by notify.config."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator
from pydantic import model_validator as _model_validator

from conflictlens._settings import Duration, KeyedError, Section, one_of, shown
from conflictlens.analysis.alerts.rules import MATCH_KEYS, METRICS, SEVERITIES, AlertRule, Silence

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")  # rule names appear in URLs and paths
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # Prometheus label names
# A rule is a few hundred bytes: these bound what an edit through the API may store.
MAX_NAME = 200  # characters of a rule name
MAX_TEXT = 1_000  # characters of a label, match or annotation value
MAX_ENTRIES = 50  # labels, annotations or match keys of one rule


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{shown(value)} is not a number")
    if not math.isfinite(value):  # `above = nan` is a rule that can never fire
        raise ValueError(f"{shown(value)} is not a finite number")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _rule_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not _NAME.match(value):
        raise ValueError(f"{shown(value)} is not a rule name (letters, digits, and _ . : - inside)")
    return value


def _strings(value: Any, *, labels: bool = False) -> dict[str, str]:
    """A table of short non-empty strings (label names when ``labels``)."""
    if not isinstance(value, dict):
        raise ValueError("expected a table of strings")
    if len(value) > MAX_ENTRIES:
        raise ValueError(f"{len(value):,} entries; at most {MAX_ENTRIES}")
    for key, text in value.items():
        if not isinstance(text, str) or not text:
            raise KeyedError(key, "expected a non-empty string")
        if len(key) > MAX_NAME or len(text) > MAX_TEXT:
            raise KeyedError(
                shown(key), f"longer than {MAX_NAME} characters (key) or {MAX_TEXT} (value)"
            )
        if labels and not _LABEL.match(key):
            raise KeyedError(key, "not a label name (letters, digits, _)")
    return dict(value)


def _group_by(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"expected a list of {', '.join(MATCH_KEYS)}")
    for key in value:
        if key not in MATCH_KEYS:
            raise ValueError(f"{shown(key)} is not one of {', '.join(MATCH_KEYS)}")
    if len(set(value)) != len(value):
        raise ValueError("a key is listed twice")
    return value


def _entries(table: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"expected [[{table}]] entries")
        return value

    return check


def _instant(value: Any) -> dt.datetime:
    """A TOML date-time or date, or an ISO-8601 string; without offset it is UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{shown(value)} is not an ISO-8601 date-time") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{shown(value)} is not a date-time")
    moment: dt.datetime = value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


Strings = Annotated[dict[str, str], BeforeValidator(_strings)]
Labels = Annotated[dict[str, str], BeforeValidator(lambda v: _strings(v, labels=True))]
Instant = Annotated[dt.datetime, BeforeValidator(_instant)]


class MatchSettings(Section):
    """A rule's ``match``: which clusters it watches; each value is a glob (`*`, `?`), all must
    match."""

    service: str | None = Field(None, description="The service (glob).")
    method: Annotated[str, AfterValidator(str.upper)] | None = Field(
        None, description="The method (glob; upper-cased)."
    )
    route: str | None = Field(None, description="The route template (glob).")
    error_code: str | None = Field(None, description="The error code (glob).")
    kind: str | None = Field(None, description="The conflict kind (glob).")


class RuleSettings(Section):
    """One ``[[alerts.rules]]`` entry. Exactly one of `above` and `anomaly` is set."""

    name: Annotated[str, BeforeValidator(_rule_name)] = Field(
        description="The rule's name: letters, digits, and `_ . : -` inside; unique."
    )
    match: MatchSettings = Field(
        default_factory=MatchSettings, description="Which clusters the rule watches."
    )
    group_by: Annotated[list[str], BeforeValidator(_group_by)] = Field(
        default_factory=list,
        description=f"One alert per group of these keys ({', '.join(MATCH_KEYS)}).",
    )
    metric: Annotated[str, BeforeValidator(one_of(METRICS))] = Field(
        "ratio",
        description="`count` (conflicts in the window), `ratio` (conflicts / requests) or `rate` (per second).",
    )
    window: Duration = Field(description="Whole minutes the metric is taken over (e.g. `5m`).")
    above: Annotated[float, BeforeValidator(_number)] | None = Field(
        None, description="Fire above this value (a ratio is between 0 and 1)."
    )
    anomaly: Annotated[float, BeforeValidator(_number)] | None = Field(
        None, description="Fire this many spreads above the baseline median (e.g. 3.0)."
    )
    min_requests: Annotated[int, BeforeValidator(_count)] = Field(
        0, description="Ignore windows with fewer requests."
    )
    pending_for: Duration = Field(
        dt.timedelta(0), alias="for", description="Fire only once the condition held this long."
    )
    keep_firing_for: Duration = Field(
        dt.timedelta(0), description="Keep firing this long after the condition stops."
    )
    repeat_interval: Duration = Field(
        dt.timedelta(hours=4), description="Notify again this often while firing."
    )
    severity: Annotated[str, BeforeValidator(one_of(SEVERITIES))] = Field(
        "warning", description=f"One of {', '.join(SEVERITIES)}."
    )
    labels: Labels = Field(default_factory=dict, description="Labels added to each alert.")
    annotations: Strings = Field(
        default_factory=dict, description="Annotations added to each alert."
    )
    channels: list[str] = Field(
        default_factory=list, description="Names of [alerts.channels] to notify."
    )

    @field_validator("window")
    @classmethod
    def _whole_minutes(cls, window: dt.timedelta) -> dt.timedelta:
        if window < dt.timedelta(minutes=1) or window % dt.timedelta(minutes=1):
            raise ValueError("must be whole minutes (requests are counted per minute)")
        return window

    @field_validator("above")
    @classmethod
    def _in_range(cls, above: float | None, info: ValidationInfo) -> float | None:
        metric = info.data.get("metric", "ratio")
        if above is not None and (above < 0 or (metric == "ratio" and above >= 1)):
            limit = "between 0 and 1" if metric == "ratio" else "at least 0"
            raise ValueError(f"{shown(above)} must be {limit} for {metric}")
        return above

    @field_validator("anomaly")
    @classmethod
    def _positive(cls, anomaly: float | None) -> float | None:
        if anomaly is not None and anomaly <= 0:
            raise ValueError("must be more than 0 (spreads above the baseline)")
        return anomaly

    @field_validator("repeat_interval")
    @classmethod
    def _not_zero(cls, repeat: dt.timedelta) -> dt.timedelta:
        if not repeat:
            raise ValueError("must be more than 0s")
        return repeat

    @field_validator("labels")
    @classmethod
    def _own_labels(cls, labels: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key in labels:
            if key in ("alertname", "severity", *info.data.get("group_by", [])):
                raise KeyedError(key, "set by the rule itself (name, severity, group_by)")
        return labels

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, names: list[str], info: ValidationInfo) -> list[str]:
        channels: Mapping[str, Any] | None = (info.context or {}).get("channels")
        if channels is None:  # validated on its own: the loader checks the names
            return names
        for name in names:
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none defined"
                raise ValueError(f"no channel {shown(name)} in [alerts.channels] ({known})")
        return names

    @_model_validator(mode="after")
    def _one_condition(self) -> RuleSettings:
        if (self.above is None) == (self.anomaly is None):
            raise ValueError("set exactly one of above (a number) or anomaly (e.g. 3.0)")
        return self

    def to_rule(self) -> AlertRule:
        return AlertRule(
            name=self.name,
            window=self.window,
            metric=self.metric,
            match=self.match.model_dump(exclude_none=True),
            group_by=tuple(self.group_by),
            above=self.above,
            anomaly=self.anomaly,
            min_requests=self.min_requests,
            pending_for=self.pending_for,
            keep_firing_for=self.keep_firing_for,
            repeat_interval=self.repeat_interval,
            severity=self.severity,
            labels=self.labels,
            annotations=self.annotations,
            channels=tuple(self.channels),
        )


class SilenceSettings(Section):
    """One ``[[alerts.silences]]`` entry: hold back matching alerts' notifications."""

    matchers: Strings = Field(
        description='`rule` (or `alertname`) and labels; all must equal (e.g. `{ rule = "NAME" }`).'
    )
    starts_at: Instant = Field(description="When it starts (a TOML date-time; UTC without offset).")
    ends_at: Instant = Field(description="When it ends (exclusive).")
    comment: str = Field("", description="Why.")

    @field_validator("matchers")
    @classmethod
    def _some(cls, matchers: dict[str, str]) -> dict[str, str]:
        if not matchers:
            raise ValueError('at least one matcher (e.g. rule = "NAME")')
        return matchers

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends: dt.datetime, info: ValidationInfo) -> dt.datetime:
        starts = info.data.get("starts_at")
        if starts is not None and ends <= starts:
            raise ValueError("must be after starts_at")
        return ends

    def to_silence(self) -> Silence:
        return Silence(self.matchers, self.starts_at, self.ends_at, self.comment)


def _http_url(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not re.match(r"^https?://", value)):
        raise ValueError(f"{shown(value)} is not an http(s) URL")
    return value


class AlertsSettings(Section):
    """``[alerts]``: spike alerts, evaluated by `serve`."""

    evaluation_interval: Duration = Field(
        dt.timedelta(seconds=30), description="How often `serve` evaluates the rules."
    )
    dashboard_url: Annotated[str | None, BeforeValidator(_http_url)] = Field(
        None, description="The dashboard's address, for the links in notifications."
    )
    rules: Annotated[list[RuleSettings], BeforeValidator(_entries("alerts.rules"))] = Field(
        default_factory=list, description="The rules."
    )
    silences: Annotated[list[SilenceSettings], BeforeValidator(_entries("alerts.silences"))] = (
        Field(default_factory=list, description="Silences kept in the file.")
    )
    channels: dict[str, Any] = Field(
        default_factory=dict,
        description="`[alerts.channels.NAME]`: where notifications go (see the channel types).",
    )

    @field_validator("evaluation_interval")
    @classmethod
    def _at_least_a_second(cls, interval: dt.timedelta) -> dt.timedelta:
        if interval < dt.timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return interval
