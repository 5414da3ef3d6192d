"""Summaries of conflicts and requests per hour and per 5 minutes, so that weeks of history
read in milliseconds.

Baselines compare a window with the same window in past weeks: reading four weeks of
per-minute rollups and raw events for that is most of a query's time. The summary tables hold
the same counts per hour (``conflict_hours``, ``request_hours``) and per 5-minute slot
(``conflict_slots``, ``request_slots``) for everything before a watermark, kept up to date by
``refresh_summaries`` (serve runs it every minute; a batch import runs it at the end).

Rows may arrive for time that is already summarised (a late line, an older log imported later,
a route map rewriting stored routes). Such a change records its hour in
``hour_invalidations`` (an append, so concurrent writers never conflict on it), and the next
refresh rebuilds from there. Readers use the summaries only before ``summarised_before``, which
accounts for invalidations, and the raw tables for everything else.
"""

from __future__ import annotations

import datetime as dt

import duckdb

EPOCH = dt.datetime(1970, 1, 1)

# (conflict table, request table, width): the coarsest first.
LEVELS: tuple[tuple[str, str, dt.timedelta], ...] = (
    ("conflict_hours", "request_hours", dt.timedelta(hours=1)),
    ("conflict_slots", "request_slots", dt.timedelta(minutes=5)),
)

_WATERMARK = """
SELECT least(
    (SELECT max(complete_before) FROM hours_watermark),
    (SELECT min(hour) FROM hour_invalidations)
)
"""


def _rebuild(conflicts: str, requests: str, width: dt.timedelta) -> tuple[str, ...]:
    """The statements that rebuild one level; table names come from LEVELS only."""
    bucket = f"time_bucket(INTERVAL '{int(width.total_seconds())} seconds', {{column}})"
    return (
        f"DELETE FROM {conflicts} WHERE slot >= $start",  # noqa: S608
        f"DELETE FROM {requests} WHERE slot >= $start",  # noqa: S608
        f"""
        INSERT INTO {conflicts}
        SELECT {bucket.format(column="ts")}, service, method, route, error_code, kind, count(*)
        FROM conflict_events WHERE ts >= $start AND ts < $end
        GROUP BY ALL
        ORDER BY 1  -- in time order: readers skip the row groups outside their spans
        """,  # noqa: S608
        f"""
        INSERT INTO {requests}
        SELECT {bucket.format(column="minute")}, service, method, route, sum(requests)::BIGINT
        FROM request_rollups WHERE minute >= $start AND minute < $end
        GROUP BY ALL
        ORDER BY 1
        """,  # noqa: S608
    )


_REBUILD = (
    *(statement for level in LEVELS for statement in _rebuild(*level)),
    "DELETE FROM hour_invalidations WHERE hour <= $end",
    "UPDATE hours_watermark SET complete_before = $end",
)


def summarised_before(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """Everything before this is in the summary tables, complete."""
    value = con.execute(_WATERMARK).fetchall()[0][0]
    return value if isinstance(value, dt.datetime) else EPOCH


def invalidate_from(con: duckdb.DuckDBPyConnection, moment: dt.datetime) -> None:
    """Rows at or after ``moment`` changed: its hour and later must be summarised again.
    Call inside the transaction that changes them."""
    con.execute(
        "INSERT INTO hour_invalidations VALUES (date_trunc('hour', $moment::TIMESTAMP))",
        {"moment": moment},
    )


def refresh_summaries(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """Summarise every complete hour not yet summarised; return the new watermark.

    The newest hour holding data is still filling and is left to the raw tables."""
    newest = con.execute("SELECT max(minute) FROM request_rollups").fetchall()[0][0]
    if not isinstance(newest, dt.datetime):
        return summarised_before(con)
    end = newest.replace(minute=0, second=0, microsecond=0)
    start = summarised_before(con)
    if start >= end:
        return start
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in _REBUILD:
            values = {"start": start, "end": end}
            con.execute(statement, {k: v for k, v in values.items() if f"${k}" in statement})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return end
