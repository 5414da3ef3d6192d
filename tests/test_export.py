"""`conflictlens export`: the stored events and rollups of a range as day-partitioned Parquet
(Hive style), read back by DuckDB as a data-lake user would, the same from the file and
through a running serve, and repeatable."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conflictlens.sample_logs.generator import write_log
from tests.e2e_support import ServeProcess
from tests.test_serve import run

CLF_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}):")
STATUS = re.compile(r'" (\d{3}) ')


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """Three days of nginx-combined traffic imported; the database, the log and its truth."""
    folder = tmp_path_factory.mktemp("export")
    log = folder / "access.log"
    truth = write_log(log, 30_000, style="nginx-combined", seed=11, hours=72)
    db = folder / "c.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    return db, log, truth


def conflicts_per_day(log: Path) -> Counter[str]:
    """Read off the log's lines, not from the store: 409/412/423/428 per UTC day."""
    counted: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        status = STATUS.search(line)
        if status and int(status.group(1)) in (409, 412, 423, 428):
            day = dt.datetime.strptime(CLF_TIME.search(line).group(1), "%d/%b/%Y")  # type: ignore[union-attr]
            counted[day.date().isoformat()] += 1
    return counted


def lake(out: Path, table: str) -> duckdb.DuckDBPyRelation:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{out}/{table}/*/*.parquet', hive_partitioning = true)"
    )


def exported(db: Path, out: Path, *extra: str) -> dict[str, Any]:
    done = run("export", "--db", str(db), "--out", str(out), "--json", *extra)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_every_event_and_request_lands_in_its_days_folder(
    store: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    db, log, truth = store
    out = tmp_path / "lake"
    summary = exported(db, out, "--since", "2000-01-01")
    per_day = conflicts_per_day(log)
    assert sum(per_day.values()) == truth["conflicts"]
    assert summary["rows"]["events"] == truth["conflicts"] and summary["days"] == len(per_day)
    events = lake(out, "events")
    shown = dict(events.aggregate("day::VARCHAR AS day, count(*)::BIGINT AS n", "day").fetchall())
    assert shown == dict(per_day)
    # Each event's day folder is its own timestamp's day (the partition is not a guess).
    assert events.filter("ts::DATE <> day").aggregate("count(*)").fetchall() == [(0,)]
    assert lake(out, "rollups").aggregate("sum(requests)::BIGINT").fetchall() == [(truth["lines"],)]
    assert sorted(p.name for p in (out / "events").iterdir()) == [
        f"day={d}" for d in sorted(per_day)
    ]


def test_a_partial_range_and_a_second_export_write_the_same_rows(
    store: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    db, log, _ = store
    day = sorted(conflicts_per_day(log))[1]
    since, until = f"{day}T06:00:00Z", f"{day}T18:00:00Z"
    out = tmp_path / "lake"
    first = exported(db, out, "--since", since, "--until", until)
    rows = lake(out, "events").order('ts, source_id, "offset"').fetchall()
    second = exported(db, out, "--since", since, "--until", until)
    assert (
        first == second and lake(out, "events").order('ts, source_id, "offset"').fetchall() == rows
    )
    times = [r[0] for r in rows]
    assert times and min(times) >= dt.datetime.fromisoformat(since[:-1])
    assert max(times) < dt.datetime.fromisoformat(until[:-1])
    assert [p.name for p in (out / "events").iterdir()] == [f"day={day}"]


def test_through_serve_the_export_is_the_same(
    store: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    db, _, truth = store
    direct = tmp_path / "direct"
    exported(db, direct, "--since", "2000-01-01")
    config = tmp_path / "conflictlens.toml"
    config.write_text("", encoding="utf-8")
    served = tmp_path / "served"
    serve = ServeProcess(db, config, dashboard=False)
    try:
        summary = exported(db, served, "--since", "2000-01-01")
    finally:
        serve.stop()
    assert summary["rows"]["events"] == truth["conflicts"]
    for table in ("events", "rollups"):
        a, b = lake(direct, table), lake(served, table)
        assert a.columns == b.columns
        assert a.except_(b).aggregate("count(*)").fetchall() == [(0,)]
        assert b.except_(a).aggregate("count(*)").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--since", "2026-11-20", "--until", "2026-11-19"), "--until: must be after --since"),
        (("--since", "yesterday"), "invalid time 'yesterday'"),
    ],
)
def test_bad_input_is_one_line(
    store: tuple[Path, Path, dict[str, Any]], tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    done = run("export", "--db", str(store[0]), "--out", str(tmp_path / "x"), *args)
    assert done.returncode == 1 and needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
