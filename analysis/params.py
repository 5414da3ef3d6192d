"""What every analysis is asked with: a time range, cluster filters, and the bucket width.

The SQL fragments here are fixed text; the values they compare against are always bound
parameters (``$since``, ``$service`` ...). A filter that is not given is bound as NULL and
switches itself off.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import polars as pl

from conflictlens._errors import AnalysisError as AnalysisError
from conflictlens.store.engine import Store, as_engine

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)

# Bucket widths a caller may name, and the automatic choice by span (at most a few hundred
# points per series: enough to see a spike's start, few enough to draw).
BUCKETS: dict[str, dt.timedelta] = {
    "minute": MINUTE,
    "5m": 5 * MINUTE,
    "hour": HOUR,
    "day": DAY,
}
_AUTO_BUCKETS = ((2 * HOUR, "minute"), (36 * HOUR, "5m"), (31 * DAY, "hour"))


# How a parameter given as text (the HTTP API's query string) becomes its value.
ParamType = Callable[[str], Any]


# No question may reach before or after what the store can hold (ingest rejects timestamps
# outside this window): a range from year 1 is cut to it, not turned into millions of buckets.
EARLIEST = dt.datetime(1991, 1, 1)  # the first year of the web: older times are corrupt
LATEST = dt.datetime(2100, 1, 1)
# The most time buckets one answer may have (a chart has a few thousand points at most), and
# the most windows an analysis may score (a year and a half of 5-minute buckets).
MAX_BUCKETS = 20_000
MAX_WINDOWS = 160_000
# Bounds of the numeric parameters any caller may give (the API, the CLI, the dashboard).
PARAM_BOUNDS: dict[str, tuple[float, float]] = {
    "limit": (0, 1_000_000),
    "offset": (0, 1_000_000_000),
    "width_minutes": (1, 60 * 24 * 366),
    "per_route": (0, 100_000),
    "min_count": (2, 1_000_000),
    "min_conflicts": (1, 1_000_000),
    "min_requests": (0, 1_000_000_000),
    "max_gap_s": (0.001, 7 * 24 * 3600),
    "backoff_factor": (1.0, 1000.0),
    "threshold": (0.0, 1000.0),
    "min_minutes": (1, 60 * 24 * 366),
}
# Any other whole number is bound as a BIGINT: beyond it the store could not take it.
INT64 = (-(2**63), 2**63 - 1)


def check_param(name: str, value: Any) -> None:
    """A numeric parameter inside its bounds and finite; an AnalysisError naming it if not."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    bounds = PARAM_BOUNDS.get(name, INT64 if isinstance(value, int) else None)
    if bounds is None:
        return
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise AnalysisError(f"{name} must be between {low:g} and {high:g}, not {value!r}")


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def flag(text: str, name: str = "value") -> bool:
    """A yes/no parameter given as text (the HTTP API's query string): true/false, 1/0,
    yes/no, on/off in any case; a ValueError naming ``name`` for anything else."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise AnalysisError(f"{name} must be true or false, not {text!r}")


def check_buckets(span: dt.timedelta, width: dt.timedelta, limit: int = MAX_BUCKETS) -> None:
    """Refuse an answer of more than ``limit`` buckets, naming the limit."""
    count = span // width if width > dt.timedelta(0) else 0
    if count > limit:
        raise AnalysisError(
            f"the range holds {count:,} buckets of {width}; at most {limit:,} per answer: "
            "ask for a shorter range or a wider bucket"
        )


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC interval [since, until); either end may be open."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def params(self) -> dict[str, dt.datetime | None]:
        return {"since": naive_utc(self.since), "until": naive_utc(self.until)}

    @property
    def span(self) -> dt.timedelta | None:
        if self.since is None or self.until is None:
            return None
        return naive_utc(self.until) - naive_utc(self.since)  # type: ignore[operator]


@dataclass(frozen=True)
class Filters:
    """The cluster filters every analysis accepts; None means "any"."""

    service: str | None = None
    method: str | None = None
    route: str | None = None
    code: str | None = None
    kind: str | None = None
    client: str | None = None

    def params(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def pop_from(cls, values: dict[str, Any]) -> Filters:
        """Take the filter values out of ``values`` (which keeps the rest)."""
        return cls(**{f.name: values.pop(f.name, None) for f in fields(cls)})


FILTERS: tuple[str, ...] = tuple(f.name for f in fields(Filters))


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """The store's timestamps are naive UTC; convert aware values, keep naive ones."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


EVENT_FILTER = """
    ($since::TIMESTAMP IS NULL OR ts >= $since::TIMESTAMP)
    AND ($until::TIMESTAMP IS NULL OR ts < $until::TIMESTAMP)
    AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
    AND ($code::VARCHAR IS NULL OR error_code = $code::VARCHAR)
    AND ($kind::VARCHAR IS NULL OR kind = $kind::VARCHAR)
    AND ($client::VARCHAR IS NULL OR client = $client::VARCHAR)
"""

# Rollups are per minute: a range boundary inside a minute counts that whole minute. They
# know no error code, kind or client: those filters narrow the conflicts, not the requests.
ROLLUP_FILTER = """
    ($since::TIMESTAMP IS NULL OR minute >= date_trunc('minute', $since::TIMESTAMP))
    AND ($until::TIMESTAMP IS NULL OR minute < $until::TIMESTAMP)
    AND ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
"""


# The hourly summaries (store/hours.py) know clusters but no client or exact time.
HOUR_EVENT_FILTER = """
    ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
    AND ($code::VARCHAR IS NULL OR error_code = $code::VARCHAR)
    AND ($kind::VARCHAR IS NULL OR kind = $kind::VARCHAR)
"""

HOUR_REQUEST_FILTER = """
    ($service::VARCHAR IS NULL OR service = $service::VARCHAR)
    AND ($method::VARCHAR IS NULL OR method = $method::VARCHAR)
    AND ($route::VARCHAR IS NULL OR route = $route::VARCHAR)
"""


def bucket_for(span: dt.timedelta) -> str:
    """The bucket name for a range of this span."""
    for limit, name in _AUTO_BUCKETS:
        if span <= limit:
            return name
    return "day"


def bucket_width(name: str | None, span: dt.timedelta) -> dt.timedelta:
    """The width of bucket ``name`` ('auto' or None: chosen from the span)."""
    if name in (None, "auto"):
        return BUCKETS[bucket_for(span)]
    try:
        return BUCKETS[name]
    except KeyError:
        raise AnalysisError(f"unknown bucket {name!r}; known: auto, {', '.join(BUCKETS)}") from None


def _moment(con: Store, sql: str) -> dt.datetime | None:
    value = fetch(con, sql, {}).item()
    return value if isinstance(value, dt.datetime) else None


def data_end(con: Store) -> dt.datetime | None:
    """Just after the newest minute in the store: where an open range ends."""
    # The two ends apart: greatest() of a NULL end (no rows) is NULL in ClickHouse only.
    rollups = _moment(con, "SELECT max(minute) + INTERVAL 1 MINUTE FROM request_rollups")
    events = _moment(con, "SELECT max(ts) + INTERVAL 1 MICROSECOND FROM conflict_events")
    found = [value for value in (rollups, events) if value is not None]
    return max(found) if found else None


def data_start(con: Store) -> dt.datetime | None:
    """The oldest minute in the store: how far back history (and baselines) can reach."""
    rollups = _moment(con, "SELECT min(minute) FROM request_rollups")
    events = _moment(con, "SELECT date_trunc('minute', min(ts)) FROM conflict_events")
    found = [value for value in (rollups, events) if value is not None]
    return min(found) if found else None


def closed_range(con: Store, time_range: TimeRange, default_span: dt.timedelta | None) -> TimeRange:
    """Fill open ends: until defaults to the end of the data, since to ``default_span``
    before until (or the start of the data when no default span is given). Both ends are
    kept inside EARLIEST..LATEST."""
    until = _clamped(naive_utc(time_range.until)) or data_end(con)
    since = _clamped(naive_utc(time_range.since))
    if until is None:  # an empty store
        return TimeRange(since, until)
    if since is None:
        since = until - default_span if default_span is not None else data_start(con)
    return TimeRange(since, until)


def _clamped(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else min(max(moment, EARLIEST), LATEST)


def iso_z(value: dt.datetime) -> str:
    return value.replace(tzinfo=dt.UTC).isoformat()


def sql_values(time_range: TimeRange, filters: Filters, **extra: Any) -> dict[str, Any]:
    """Bound parameters for the fragments above plus ``extra``."""
    return {**time_range.params(), **filters.params(), **extra}


def fetch(con: Store, sql: str, values: dict[str, Any]) -> pl.DataFrame:
    """Run fixed ``sql`` with the values it names bound as parameters, as a Polars frame,
    on the store's engine (a bare DuckDB connection is the embedded store)."""
    used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
    return as_engine(con).sql(sql, used)
