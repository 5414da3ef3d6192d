"""The config's ``[reports]`` table -> ReportsConfig. Every refusal is a ValueError naming the
exact key and the reason (``conflictlens.toml: reports.nightly.schedule: ...``).

```toml
[reports]
directory = "reports"        # relative to the config file; the archive and its index.json
retention_days = 90          # older reports (and their files) are deleted
base_url = "https://intranet.example/conflictlens/"   # links in messages: base_url + file
gap_minutes = 5              # ingest health: this many minutes without a request is a gap
silent_minutes = 60          # ... a source with no new line this long before the end

[reports.nightly]
schedule = "0 6 * * *"       # cron, in `timezone`
timezone = "Europe/Berlin"
period = "yesterday"         # or last-24h, last-7d (ending at the scheduled time)
formats = ["html", "json"]   # html, md, json, csv
channels = ["ops-mail"]      # names of [alerts.channels.NAME] (email, webhook, slack, command)
top = 20                     # rows per list
```
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronsim import CronSim, CronSimError

from analysis.reports.periods import SCHEDULED, zone
from analysis.reports.render import FORMATS

REPORTS_KEYS = {
    "directory",
    "retention_days",
    "base_url",
    "gap_minutes",
    "silent_minutes",
    "nightly",
}
SCHEDULE_KEYS = {"schedule", "timezone", "period", "formats", "channels", "top"}
DEFAULT_DIRECTORY = "conflictlens-reports"
_URL = re.compile(r"^https?://[^\s]+$")


@dataclass(frozen=True)
class ScheduleConfig:
    """A scheduled report: when (cron in a zone), over which period, in which formats, and
    to which channels."""

    name: str = "nightly"
    schedule: str = "0 6 * * *"
    timezone: str = "UTC"
    period: str = "yesterday"
    formats: tuple[str, ...] = ("html", "json")
    channels: tuple[str, ...] = ()
    top: int = 20


@dataclass(frozen=True)
class ReportsConfig:
    directory: Path = field(default_factory=lambda: Path(DEFAULT_DIRECTORY))
    retention_days: int = 90
    base_url: str | None = None
    gap_minutes: int = 5
    silent_minutes: int = 60
    nightly: ScheduleConfig | None = None  # None: no scheduled report

    @property
    def schedules(self) -> tuple[ScheduleConfig, ...]:
        return (self.nightly,) if self.nightly is not None else ()


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)


def parse_reports(
    table: dict[str, Any],
    where: str,
    *,
    base_dir: Path | None = None,
    channels: Collection[str] | None = None,
) -> ReportsConfig:
    """The ``[reports]`` table. ``where`` is the config file (messages start with it; a
    relative directory is taken from its folder unless ``base_dir`` is given); ``channels``,
    when given, are the channel names defined in ``[alerts.channels]``, which
    ``reports.nightly.channels`` must name."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: reports: expected a table ([reports])")
    _known(table, REPORTS_KEYS, where, "reports")
    folder = (
        base_dir if base_dir is not None else (Path(where).parent if where != "config" else None)
    )
    directory = table.get("directory", DEFAULT_DIRECTORY)
    if not isinstance(directory, str) or not directory.strip():
        raise ValueError(f"{where}: reports.directory: expected a folder path")
    path = Path(directory).expanduser()
    if not path.is_absolute() and folder is not None and "directory" in table:
        path = folder / path
    base_url = table.get("base_url")
    if base_url is not None and (not isinstance(base_url, str) or not _URL.match(base_url)):
        raise ValueError(f"{where}: reports.base_url: {_shown(base_url)} is not an http(s) URL")
    if base_url is not None and not base_url.endswith("/"):
        base_url += "/"
    nightly = table.get("nightly")
    return ReportsConfig(
        directory=path,
        retention_days=_whole(table, "retention_days", 90, 1, where, "reports"),
        base_url=base_url,
        gap_minutes=_whole(table, "gap_minutes", 5, 1, where, "reports"),
        silent_minutes=_whole(table, "silent_minutes", 60, 1, where, "reports"),
        nightly=_schedule(nightly, "nightly", where, channels) if nightly is not None else None,
    )


def _known(table: dict[str, Any], known: set[str], where: str, at: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(
                f"{where}: {at}.{key}: unknown key (known: {', '.join(sorted(known))})"
            )


def _whole(table: dict[str, Any], key: str, default: int, least: int, where: str, at: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{where}: {at}.{key}: expected a whole number of at least {least}")
    return value


def _schedule(
    table: Any, name: str, where: str, channels: Collection[str] | None
) -> ScheduleConfig:
    at = f"reports.{name}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: {at}: expected a table ([{at}])")
    _known(table, SCHEDULE_KEYS, where, at)
    expression = table.get("schedule", "0 6 * * *")
    if not isinstance(expression, str):
        raise ValueError(f'{where}: {at}.schedule: expected a cron expression such as "0 6 * * *"')
    try:
        CronSim(expression, dt.datetime(2026, 1, 1))
    except (CronSimError, ValueError) as exc:
        raise ValueError(
            f"{where}: {at}.schedule: {_shown(expression)} is not a cron expression ({exc})"
        ) from None
    tz = table.get("timezone", "UTC")
    if not isinstance(tz, str):
        raise ValueError(f"{where}: {at}.timezone: expected an IANA zone name")
    try:
        zone(tz)
    except ValueError as exc:
        raise ValueError(f"{where}: {at}.timezone: {exc}") from None
    period = table.get("period", "yesterday")
    if period not in SCHEDULED:
        raise ValueError(
            f"{where}: {at}.period: {_shown(period)} is not one of {', '.join(SCHEDULED)}"
        )
    formats = table.get("formats", ["html", "json"])
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not formats:
        raise ValueError(f"{where}: {at}.formats: expected a list of {', '.join(FORMATS)}")
    for number, fmt in enumerate(formats):
        if fmt not in FORMATS:
            raise ValueError(
                f"{where}: {at}.formats[{number}]: {_shown(fmt)} is not one of {', '.join(FORMATS)}"
            )
    names = table.get("channels", [])
    if not isinstance(names, list):
        raise ValueError(f"{where}: {at}.channels: expected a list of channel names")
    for number, channel in enumerate(names):
        if not isinstance(channel, str) or not channel:
            raise ValueError(f"{where}: {at}.channels[{number}]: expected a channel name")
        if channels is not None and channel not in channels:
            known = ", ".join(sorted(channels)) or "none defined"
            raise ValueError(
                f"{where}: {at}.channels[{number}]: no channel {_shown(channel)} in "
                f"[alerts.channels] ({known})"
            )
    top = _whole(table, "top", 20, 1, where, at)
    return ScheduleConfig(
        name=name,
        schedule=expression,
        timezone=tz,
        period=period,
        formats=tuple(dict.fromkeys(formats)),
        channels=tuple(dict.fromkeys(names)),
        top=top,
    )
