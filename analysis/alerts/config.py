"""The config's [alerts] table -> AlertsConfig. The table is declared by the models in
analysis.alerts.settings; every refusal names the exact key and the reason
(``alerts.rules[0].window: "5x" is not a duration (e.g. 30s, 5m, 2h)``) as a ConfigError (a ValueError), and
the config loader adds the file name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from conflictlens._errors import ConfigError, InvalidValue
from conflictlens._settings import duration, first_error, shown
from conflictlens.analysis.alerts.rules import AlertRule, AlertsConfig
from conflictlens.analysis.alerts.settings import AlertsSettings, RuleSettings

ChannelParser = Callable[[dict[str, Any], str], Mapping[str, Any]]
Model = TypeVar("Model", bound=BaseModel)


def parse_duration(value: Any, at: str) -> dt.timedelta:
    """A duration (see conflictlens._settings.duration); the error names ``at``."""
    try:
        return duration(value)
    except ValueError as exc:
        raise InvalidValue(f"{at}: {exc}") from None


def parse_alerts(section: Any, parse_channels: ChannelParser | None = None) -> AlertsConfig:
    """``parse_channels`` (notify.config's) validates [alerts.channels.NAME]; without it each
    channel is kept as its table."""
    if not isinstance(section, dict):
        raise ConfigError("alerts: expected a table ([alerts])")
    channels = _channels(section.get("channels", {}), parse_channels)
    settings = _validated(AlertsSettings, section, "alerts", channels)
    names = [rule.name for rule in settings.rules]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"alerts.rules[{i}].name: {shown(name)} is used by another rule")
    return AlertsConfig(
        evaluation_interval=settings.evaluation_interval,
        dashboard_url=settings.dashboard_url.rstrip("/") if settings.dashboard_url else None,
        rules=tuple(rule.to_rule() for rule in settings.rules),
        silences=tuple(silence.to_silence() for silence in settings.silences),
        channels=channels,
    )


def parse_rule(entry: Any, channels: Mapping[str, Any], at: str = "rule") -> AlertRule:
    """One [[alerts.rules]] table on its own (a rule being edited), checked as the config
    loader checks it, against the channels in force."""
    return _validated(RuleSettings, entry, at, channels).to_rule()


def _validated(model: type[Model], data: Any, at: str, channels: Mapping[str, Any]) -> Model:
    try:
        return model.model_validate(data, context={"channels": channels})
    except ValidationError as exc:
        raise ConfigError(first_error(exc, model, prefix=at, first_index=0)) from None


def _channels(table: Any, parse_channels: ChannelParser | None) -> Mapping[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError("alerts.channels: expected [alerts.channels.NAME] tables")
    if parse_channels is not None:
        return parse_channels(table, "alerts.channels")
    for name, channel in table.items():
        if not isinstance(channel, dict):
            raise ConfigError(f"alerts.channels.{name}: expected a table")
    return dict(table)
