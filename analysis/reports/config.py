"""The config's ``[reports]`` table -> ReportsConfig. Every refusal is a ConfigError naming the
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

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conflictlens._errors import ConfigError
from conflictlens._settings import first_error
from conflictlens.analysis.reports.settings import (
    DEFAULT_DIRECTORY,
    ReportsSettings,
    ScheduleSettings,
)


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


def parse_reports(
    table: dict[str, Any],
    where: str,
    *,
    base_dir: Path | None = None,
    channels: Collection[str] | None = None,
) -> ReportsConfig:
    """The ``[reports]`` table (declared by analysis.reports.settings). ``where`` is the config
    file (messages start with it; a relative directory is taken from its folder unless
    ``base_dir`` is given); ``channels``, when given, are the channel names defined in
    ``[alerts.channels]``, which ``reports.nightly.channels`` must name."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: reports: expected a table ([reports])")
    try:
        settings = ReportsSettings.model_validate(table, context={"channels": channels})
    except ValidationError as exc:
        problem = first_error(exc, ReportsSettings, prefix="reports", first_index=0)
        raise ConfigError(f"{where}: {problem}") from None
    folder = (
        base_dir if base_dir is not None else (Path(where).parent if where != "config" else None)
    )
    path = Path(settings.directory).expanduser()
    if not path.is_absolute() and folder is not None and "directory" in table:
        path = folder / path
    return ReportsConfig(
        directory=path,
        retention_days=settings.retention_days,
        base_url=settings.base_url,
        gap_minutes=settings.gap_minutes,
        silent_minutes=settings.silent_minutes,
        nightly=_schedule(settings.nightly) if settings.nightly is not None else None,
    )


def _schedule(settings: ScheduleSettings, name: str = "nightly") -> ScheduleConfig:
    return ScheduleConfig(
        name=name,
        schedule=settings.schedule,
        timezone=settings.timezone,
        period=settings.period,
        formats=tuple(dict.fromkeys(settings.formats)),
        channels=tuple(dict.fromkeys(settings.channels)),
        top=settings.top,
    )
