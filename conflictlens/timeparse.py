"""``--since`` / ``--until`` values: ISO-8601 dates and date-times, or durations back from now."""

from __future__ import annotations

import datetime as dt

from conflictlens._errors import InvalidValue
from conflictlens._settings import duration, is_duration


def parse_time(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """An aware UTC datetime. A bare date is midnight UTC; a date-time without offset is UTC;
    a duration (``24h``, ``7d``, ``1h30m``: the grammar of every duration) counts back from
    now; ``now`` is now."""
    value = text.strip()
    if value.lower() == "now":
        return now or dt.datetime.now(dt.UTC)
    if is_duration(value):
        try:
            return (now or dt.datetime.now(dt.UTC)) - duration(value, at_most=None)
        except (OverflowError, ValueError):
            raise InvalidValue(f"invalid time {text!r}: reaches back before year 1") from None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidValue(
            f"invalid time {text!r}: use an ISO-8601 date or date-time (2026-11-20, "
            "2026-11-20T06:00:00Z, 2026-11-20T08:00+02:00) or a duration back from now (30m, 24h, 7d, now)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
