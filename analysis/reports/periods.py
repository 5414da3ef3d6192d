"""Report periods: which stretch of time a report covers, in a named time zone.

A day is a calendar day in the report's zone (23 or 25 hours long on the days clocks
change), so "yesterday in Europe/Berlin" is the Berlin day, whatever its length in UTC.
Periods are half-open, [since, until), held as aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from conflictlens._errors import InvalidValue
from conflictlens.analysis.params import TimeRange

RELATIVE = {"last-24h": dt.timedelta(hours=24), "last-7d": dt.timedelta(days=7)}
SCHEDULED = ("yesterday", *RELATIVE)
PERIOD_FORMS = "yesterday, last-24h, last-7d, YYYY-MM-DD, or FROM..TO"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; InvalidValue (a ValueError) naming it when it is unknown."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise InvalidValue(
            f"unknown time zone {shown!r} (use an IANA name such as Europe/Berlin)"
        ) from None


@dataclass(frozen=True)
class Period:
    """What a report covers: [since, until) in UTC, shown in zone ``tz``; ``day`` is set
    when the period is one calendar day of that zone."""

    since: dt.datetime
    until: dt.datetime
    tz: str
    day: dt.date | None = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zone(self.tz)

    @property
    def key(self) -> str:
        """Identifies the period whatever its label: the UTC instants."""
        return f"{_iso(self.since)}..{_iso(self.until)}"

    @property
    def label(self) -> str:
        if self.day is not None:
            return f"{self.day.isoformat()} ({self.tz})"
        fmt = "%Y-%m-%d %H:%M"
        start, end = self.since.astimezone(self.zone), self.until.astimezone(self.zone)
        return f"{start.strftime(fmt)} to {end.strftime(fmt)} ({self.tz})"

    @property
    def slug(self) -> str:
        """A file-name stem: the day, or the UTC instants in compact form."""
        if self.day is not None:
            return self.day.isoformat()
        fmt = "%Y%m%dT%H%MZ"
        return f"{self.since.strftime(fmt)}-{self.until.strftime(fmt)}"

    @property
    def span(self) -> dt.timedelta:
        return self.until - self.since

    def time_range(self) -> TimeRange:
        return TimeRange(self.since, self.until)

    def previous(self) -> Period:
        """The period just before: the day before, or the same span before."""
        if self.day is not None:
            return day_period(self.day - dt.timedelta(days=1), self.tz)
        return Period(self.since - self.span, self.since, self.tz)

    def week_before(self) -> Period:
        """The same period a week earlier by the zone's wall clock: the same weekday and
        hours, whatever the clocks did in between."""
        if self.day is not None:
            return day_period(self.day - dt.timedelta(days=7), self.tz)
        return Period(
            _wall_shift(self.since, self.zone), _wall_shift(self.until, self.zone), self.tz
        )

    def to_json(self) -> dict[str, str | None]:
        local = self.zone
        return {
            "from": _iso(self.since),
            "to": _iso(self.until),
            "label": self.label,
            "timezone": self.tz,
            "local_from": self.since.astimezone(local).isoformat(),
            "local_to": self.until.astimezone(local).isoformat(),
            "day": self.day.isoformat() if self.day else None,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _wall_shift(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    local = moment.astimezone(tz).replace(tzinfo=None) - dt.timedelta(days=7)
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def day_period(day: dt.date, tz: str) -> Period:
    """The calendar day ``day`` in zone ``tz``."""
    local = zone(tz)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=local).astimezone(dt.UTC)
    next_day = day + dt.timedelta(days=1)
    end = dt.datetime.combine(next_day, dt.time(0), tzinfo=local).astimezone(dt.UTC)
    return Period(start, end, tz, day)


# A report compares its period with the one before and the week before: a period must leave
# room for those inside the years the store can hold, and be at most about a year long.
EARLIEST = dt.datetime(1991, 1, 15, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
MAX_PERIOD = dt.timedelta(days=400)


def parse_period(spec: str, tz: str, now: dt.datetime) -> Period:
    """``yesterday`` (the day before ``now``'s day in ``tz``), ``last-24h``/``last-7d``
    (ending at ``now``, to the minute), a date (that day in ``tz``), or ``FROM..TO`` (TO
    exclusive; each a date or date-time, read in ``tz`` unless it carries an offset)."""
    try:
        period = _parse_period(spec, tz, now)
    except OverflowError:
        raise InvalidValue(f"period {spec!r}: outside the years a report can cover") from None
    if period.since < EARLIEST or period.until > LATEST:
        raise InvalidValue(
            f"period {spec!r}: must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
        )
    if period.until - period.since > MAX_PERIOD:
        raise InvalidValue(f"period {spec!r}: longer than {MAX_PERIOD.days} days")
    return period


def _parse_period(spec: str, tz: str, now: dt.datetime) -> Period:
    local = zone(tz)
    text = spec.strip()
    if text == "yesterday":
        return day_period(now.astimezone(local).date() - dt.timedelta(days=1), tz)
    if text in RELATIVE:
        end = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        return Period(end - RELATIVE[text], end, tz)
    if _DATE.match(text):
        return day_period(_date(text, spec), tz)
    if ".." in text:
        first, _, last = text.partition("..")
        since, until = _moment(first, local, spec), _moment(last, local, spec)
        if until <= since:
            raise InvalidValue(f"period {spec!r}: TO must be after FROM")
        return Period(since, until, tz)
    raise InvalidValue(f"invalid period {spec!r}: use {PERIOD_FORMS}")


def _date(text: str, spec: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"invalid period {spec!r}: {text!r} is not a date") from None


def _moment(text: str, local: zoneinfo.ZoneInfo, spec: str) -> dt.datetime:
    value = text.strip()
    if _DATE.match(value):
        day = _date(value, spec)
        return dt.datetime.combine(day, dt.time(0), tzinfo=local).astimezone(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidValue(
            f"invalid period {spec!r}: {value!r} is not an ISO-8601 date or date-time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local)
    return parsed.astimezone(dt.UTC)


def scheduled_period(kind: str, fire: dt.datetime, tz: str) -> Period:
    """The period a scheduled run at ``fire`` reports on: the day before the fire's day
    (``yesterday``), or the span ending at the fire time."""
    if kind not in SCHEDULED:
        raise InvalidValue(f"unknown scheduled period {kind!r}; known: {', '.join(SCHEDULED)}")
    return parse_period(kind, tz, fire)
