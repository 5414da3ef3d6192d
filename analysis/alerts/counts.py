"""Counting a rule's match: conflicts and requests per time bucket from one query, and window
sums per group from cumulative sums.

Buckets are numbered back from ``until``: bucket b is [until - (b+1)·bucket, until - b·bucket).
Windows are whole minutes ending on a minute: request rollups are per minute, and a minute that
has not ended yet would hold data at or after ``now``. So conflicts and requests are counted
over the same complete minutes, and nothing at or after ``until`` is ever read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from conflictlens.analysis.alerts.rules import MATCH_KEYS, REQUEST_KEYS, AlertRule, Group
from conflictlens.store.engine import Store, as_engine

_MATCH = """
    ($m_service::VARCHAR IS NULL OR service GLOB $m_service::VARCHAR)
    AND ($m_method::VARCHAR IS NULL OR method GLOB $m_method::VARCHAR)
    AND ($m_route::VARCHAR IS NULL OR route GLOB $m_route::VARCHAR)
"""
EVENT_MATCH = (
    _MATCH
    + """
    AND ($m_error_code::VARCHAR IS NULL OR error_code GLOB $m_error_code::VARCHAR)
    AND ($m_kind::VARCHAR IS NULL OR kind GLOB $m_kind::VARCHAR)
"""
)

# One span of contiguous time; a query ORs a few. Plain range tests on the time column let
# DuckDB skip the row groups outside them (a baseline four weeks back reads five windows).
_SPAN = "({column} >= $span_start_{n}::TIMESTAMP AND {column} < $span_end_{n}::TIMESTAMP)"

# Conflicts per bucket and cluster, and requests per bucket and route, in one round trip.
_COUNTS = f"""
    SELECT 'conflicts' AS what,
           (epoch_us($until::TIMESTAMP) - epoch_us(ts) - 1) // $bucket_us AS b,
           service, method, route, error_code, kind, count(*)::BIGINT AS n
    FROM conflict_events
    WHERE ({{event_spans}}) AND {EVENT_MATCH}
    GROUP BY ALL
    UNION ALL
    SELECT 'requests', (epoch_us($until::TIMESTAMP) - epoch_us(minute) - 1) // $bucket_us,
           service, method, route, NULL, NULL, sum(requests)::BIGINT
    FROM request_rollups
    WHERE ({{rollup_spans}}) AND {_MATCH}
    GROUP BY ALL
"""  # noqa: S608 - fixed fragments only; every value is bound

Span = tuple[dt.datetime, dt.datetime]
EPOCH = dt.datetime(1970, 1, 1)
MICROSECOND = dt.timedelta(microseconds=1)


def match_values(match: Mapping[str, str]) -> dict[str, str | None]:
    return {f"m_{k}": match.get(k) for k in MATCH_KEYS}


# A row of a read: bucket b, service, method, route, error_code, kind, n (requests rows have
# no error code or kind).
Row = tuple[Any, ...]
_KEY_AT = {key: 1 + i for i, key in enumerate(MATCH_KEYS)}


@dataclass(frozen=True)
class Counts:
    """Conflicts per bucket and cluster (``events``) and requests per bucket and route
    (``rollups``) of one match. Plain rows: a read holds a few hundred of them live, and
    Python beats building data frames at that size."""

    events: list[Row]
    rollups: list[Row]
    until: dt.datetime
    bucket: dt.timedelta


def read_counts(
    con: Store,
    match: Mapping[str, str],
    until: dt.datetime,
    bucket: dt.timedelta,
    spans: Sequence[Span],
) -> Counts:
    """One query: the match's conflicts and requests per bucket inside ``spans`` (< until)."""
    values: dict[str, object] = {
        **match_values(match),
        "until": until,
        "bucket_us": bucket // MICROSECOND,
    }
    for n, (start, end) in enumerate(spans):
        values[f"span_start_{n}"], values[f"span_end_{n}"] = start, min(end, until)

    def where(column: str) -> str:
        return " OR ".join(_SPAN.format(column=column, n=n) for n in range(len(spans)))

    sql = _COUNTS.format(event_spans=where("ts"), rollup_spans=where("minute"))
    used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
    events: list[Row] = []
    rollups: list[Row] = []
    if isinstance(con, duckdb.DuckDBPyConnection):
        found = con.execute(sql, used).fetchall()
    else:  # another engine answers a frame
        found = as_engine(con).sql(sql, used).rows()
    for what, *row in found:
        (events if what == "conflicts" else rollups).append(tuple(row))
    return Counts(events, rollups, until, bucket)


def window_spans(ends: Sequence[dt.datetime], width: dt.timedelta) -> list[Span]:
    """The windows [end - width, end) as few spans: overlapping or touching ones merged."""
    merged: list[Span] = []
    for first, last in sorted((end - width, end) for end in ends):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _sort_key(group: Group) -> tuple[tuple[bool, str], ...]:
    return tuple((v is not None, v or "") for v in group)


def groups_in(rule: AlertRule, counts: Counts) -> set[Group]:
    """The rule's groups with data in ``counts`` (with requests, when the groups are routes)."""
    if not rule.group_by:
        return {()}
    at = [_KEY_AT[k] for k in rule.group_by]
    found = {tuple(row[i] for i in at) for row in counts.events}
    if set(rule.group_by) <= set(REQUEST_KEYS):
        found.update(tuple(row[i] for i in at) for row in counts.rollups)
    return found


def ordered(groups: set[Group]) -> list[Group]:
    return sorted(groups, key=_sort_key)


class Cumulative:
    """Cumulative conflicts and requests per group over the buckets of ``counts`` from
    ``since`` on, so that any window sum is one subtraction."""

    def __init__(
        self, rule: AlertRule, groups: list[Group], counts: Counts, since: dt.datetime
    ) -> None:
        self.until, self.bucket = counts.until, counts.bucket
        self.buckets = (counts.until - since) // counts.bucket
        at = [_KEY_AT[k] for k in rule.group_by]
        conflicts = self._dense(counts.events, {g: i for i, g in enumerate(groups)}, at)
        # Requests are counted per route slice (the group's service, method, route keys):
        # groups that differ only by error code or kind share their slice's requests.
        sliced = [i for i, k in enumerate(rule.group_by) if k in REQUEST_KEYS]
        slices: dict[Group, int] = {}
        rows = [slices.setdefault(tuple(g[i] for i in sliced), len(slices)) for g in groups]
        requests = self._dense(counts.rollups, slices, [at[i] for i in sliced])
        requests = requests[np.asarray(rows, dtype=np.int64)] if groups else requests[:0]
        zero = np.zeros((len(groups), 1), dtype=np.int64)
        self.conflicts = np.concatenate([zero, conflicts.cumsum(axis=1)], axis=1)
        self.requests = np.concatenate([zero, requests.cumsum(axis=1)], axis=1)

    def _dense(self, found: list[Row], index: dict[Group, int], at: list[int]) -> np.ndarray:
        """(index rows x buckets) of the rows' counts, the oldest bucket first."""
        matrix = np.zeros((len(index), self.buckets), dtype=np.int64)
        placed = [
            (index[key], self.buckets - 1 - row[0], row[-1])
            for row in found
            if row[0] < self.buckets and (key := tuple(row[i] for i in at)) in index
        ]
        if placed:
            where = np.asarray(placed, dtype=np.int64)
            np.add.at(matrix, (where[:, 0], where[:, 1]), where[:, 2])
        return matrix

    def sums(
        self, ends: Sequence[dt.datetime] | np.ndarray, width: dt.timedelta
    ) -> tuple[np.ndarray, np.ndarray]:
        """Conflicts and requests per group in the windows [end - width, end), for ``ends``
        of any shape; the result has shape (groups, *ends.shape)."""
        moments = np.asarray(ends, dtype="datetime64[us]").astype(np.int64)
        until = (self.until - EPOCH) // MICROSECOND
        hi = self.buckets - (until - moments) // (self.bucket // MICROSECOND)
        lo = hi - width // self.bucket
        assert (lo >= 0).all() and (hi <= self.buckets).all(), "window outside what was read"
        return (
            self.conflicts[:, hi] - self.conflicts[:, lo],
            self.requests[:, hi] - self.requests[:, lo],
        )
