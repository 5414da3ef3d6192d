"""``conflictlens export``: the stored conflict events and request rollups of a range as Parquet,
one folder a day in Hive style (``events/day=2026-11-19/part-0.parquet``), which Spark, Trino,
Athena, DuckDB and Polars read as a partitioned table.

A day at a time, so memory stays bounded by one day's data; a day's file is written to a
temporary name and renamed, so a reader never sees half of one, and exporting a range again
replaces its days' files (the same rows: the queries have a total order).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# What is exported, and the catalog query that reads it.
TABLES = {"events": "export_events", "rollups": "export_rollups"}
Fetch = Callable[[str, dt.datetime, dt.datetime], pa.Table]  # query name, [since, until)


@dataclass
class Exported:
    """What an export wrote: rows and files per table, and the days it covered."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    files: list[str] = field(default_factory=list)
    days: int = 0


def days(
    since: dt.datetime, until: dt.datetime
) -> Iterator[tuple[dt.date, dt.datetime, dt.datetime]]:
    """Each UTC day that [since, until) touches, with the part of the range inside it."""
    day = since.date()
    while dt.datetime.combine(day, dt.time()) < until:
        start = dt.datetime.combine(day, dt.time())
        yield day, max(since, start), min(until, start + dt.timedelta(days=1))
        day += dt.timedelta(days=1)


def export(fetch: Fetch, since: dt.datetime, until: dt.datetime, out: Path) -> Exported:
    """Write every table's rows in [since, until) (naive UTC) under ``out``: only the days the
    store has data for are asked (``--since 2020-01-01`` is not 2,500 empty questions)."""
    done = Exported()
    span = fetch("totals", since, until).to_pylist()
    first, last = (span[0]["first_minute"], span[0]["last_minute"]) if span else (None, None)
    if first is None or last is None:
        return done
    since, until = max(since, first), min(until, last + dt.timedelta(minutes=1))
    for day, start, end in days(since, until):
        done.days += 1
        for table, query in TABLES.items():
            rows = fetch(query, start, end)
            folder = out / table / f"day={day.isoformat()}"
            if rows.num_rows == 0:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / "part-0.parquet"
            partial = folder / f".part-0.parquet.{os.getpid()}"
            pq.write_table(rows, partial, compression="zstd")
            partial.replace(target)
            done.rows[table] += rows.num_rows
            done.files.append(str(target))
    return done
