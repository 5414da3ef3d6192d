"""The [reports] table declared once: each key with its type, default, check and documentation.
Loading (analysis.reports.config) and the config reference derive from these models."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Annotated, Any

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from conflictlens._settings import KeyedError, Section, one_of, shown
from conflictlens.analysis.reports.periods import SCHEDULED, zone
from conflictlens.analysis.reports.render import FORMATS

DEFAULT_DIRECTORY = "conflictlens-reports"
_URL = re.compile(r"^https?://[^\s]+$")


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected a cron expression such as "0 6 * * *"')
    try:
        CronSim(value, dt.datetime(2026, 1, 1))
    except (CronSimError, ValueError) as exc:
        raise ValueError(f"{shown(value)} is not a cron expression ({exc})") from None
    return value


def _zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IANA zone name")
    zone(value)  # its ValueError says why
    return value


def _formats(value: Any) -> Any:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a list of {', '.join(FORMATS)}")
    return value


def _channel_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a channel name")
    return value


def _url(value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not _URL.match(value)):
        raise ValueError(f"{shown(value)} is not an http(s) URL")
    return value if value is None or value.endswith("/") else value + "/"


def _folder(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a folder path")
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
Format = Annotated[str, BeforeValidator(one_of(FORMATS))]


class ScheduleSettings(Section):
    """``[reports.nightly]``: a report made on a schedule and sent to channels."""

    schedule: Annotated[str, BeforeValidator(_cron)] = Field(
        "0 6 * * *", description="When, as a cron expression in `timezone`."
    )
    timezone: Annotated[str, BeforeValidator(_zone)] = Field(
        "UTC", description="The IANA zone of the schedule and the period's days."
    )
    period: Annotated[str, BeforeValidator(one_of(SCHEDULED))] = Field(
        "yesterday",
        description=f"The period covered: {', '.join(SCHEDULED)} (ending at the scheduled time).",
    )
    formats: Annotated[list[Format], BeforeValidator(_formats), AfterValidator(list)] = Field(
        default_factory=lambda: ["html", "json"],
        description=f"The files made: {', '.join(FORMATS)}.",
    )
    channels: list[Annotated[str, BeforeValidator(_channel_name)]] = Field(
        default_factory=list, description="Names of [alerts.channels] the report is sent to."
    )
    top: Whole = Field(20, description="Rows per list.")

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, names: list[str], info: ValidationInfo) -> list[str]:
        channels: Collection[str] | None = (info.context or {}).get("channels")
        if channels is None:
            return names
        for number, name in enumerate(names):
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none defined"
                raise KeyedError(number, f"no channel {shown(name)} in [alerts.channels] ({known})")
        return names


class ReportsSettings(Section):
    """``[reports]``: the report archive and scheduled reports."""

    directory: Annotated[str, BeforeValidator(_folder)] = Field(
        DEFAULT_DIRECTORY, description="The archive's folder (relative to the config file)."
    )
    retention_days: Whole = Field(90, description="Older reports and their files are deleted.")
    base_url: Annotated[str | None, BeforeValidator(_url)] = Field(
        None, description="Links in messages are this plus the file's name."
    )
    gap_minutes: Whole = Field(
        5, description="Ingest health: this many minutes without a request is a gap."
    )
    silent_minutes: Whole = Field(
        60, description="Ingest health: a source with no new line this long before the end."
    )
    nightly: ScheduleSettings | None = Field(None, description="The scheduled report.")
