"""The hourly and 5-minute summaries answer exactly what the raw tables answer, also after
late lines, an older log imported later, and a route map rewriting stored routes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conflictlens.analysis import Filters, TimeRange, run_query
from conflictlens.analysis.baselines import window_counts
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect, refresh_summaries, summarised_before
from tests.conftest import RunCli
from tests.helpers import clf_line, clf_ts, write_lines

END = dt.datetime(2026, 11, 20)


def _raw_only(db: Path) -> None:
    con = connect(db)
    con.execute("UPDATE hours_watermark SET complete_before = '1970-01-01'")
    con.close()


def _answers(db: Path) -> dict[str, pl.DataFrame]:
    con = connect(db, read_only=True)
    try:
        day = TimeRange(END - dt.timedelta(days=1), END)
        week = TimeRange(END - dt.timedelta(days=7), END)
        events, requests = window_counts(
            con, END - dt.timedelta(minutes=7), dt.timedelta(minutes=50), [0, 1, 5, 30], Filters()
        )
        # Adjacent windows whose edges fall inside 5-minute slots and hours (21:03, 20:13):
        # no summary row may be counted across an edge.
        straddling, straddling_requests = window_counts(
            con, END - dt.timedelta(minutes=177), dt.timedelta(minutes=50), [0, 1, 2], Filters()
        )
        keys = ["service", "method", "route", "error_code", "kind"]
        return {
            "straddling": straddling.sort([*keys, "j"], nulls_last=True),
            "straddling requests": straddling_requests.sort(
                ["service", "method", "route", "j"], nulls_last=True
            ),
            "hotspots day": run_query(con, "hotspots", day).sort(keys, nulls_last=True),
            "hotspots week": run_query(con, "hotspots", week).sort(keys, nulls_last=True),
            "incidents": run_query(con, "incidents", day).drop("incident"),
            "events": events.sort([*keys, "j"], nulls_last=True),
            "requests": requests.sort(["service", "method", "route", "j"], nulls_last=True),
        }
    finally:
        con.close()


def _same(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name in left:
        assert_frame_equal(left[name], right[name], check_exact=False), name


@pytest.fixture
def store(tmp_path: Path, run_cli: RunCli) -> Path:
    log = tmp_path / "access.log"
    write_log(log, 60_000, style="nginx-extended", seed=8, hours=9 * 24, scenario="deploy-spike")
    db = tmp_path / "t.duckdb"
    assert run_cli("ingest", "--db", db, log).exit_code == 0
    return db


def test_summaries_answer_what_the_raw_tables_answer(store: Path, tmp_path: Path) -> None:
    con = connect(store, read_only=True)
    assert summarised_before(con) == dt.datetime(2026, 11, 19, 23)  # the import refreshed them
    con.close()
    summarised = _answers(store)
    assert summarised["hotspots week"].height and summarised["events"].height
    _raw_only(store)
    _same(summarised, _answers(store))


def test_late_lines_and_route_maps_invalidate_the_summaries(store: Path, run_cli: RunCli) -> None:
    before = _answers(store)
    # An older log imported later: lines in hours that are already summarised.
    moment = dt.datetime(2026, 11, 15, 10, 30, tzinfo=dt.UTC)
    late = store.parent / "late.log"
    write_lines(late, [clf_line("/api/v1/late/7", ts=clf_ts(moment)) for _ in range(5)])
    assert run_cli("ingest", "--db", store, "--format", "nginx-combined", late).exit_code == 0
    con = connect(store)
    assert summarised_before(con) == dt.datetime(2026, 11, 19, 23)  # rebuilt from 10:00
    con.close()
    after = _answers(store)
    assert not after["hotspots week"].equals(before["hotspots week"])
    _raw_only(store)
    _same(after, _answers(store))


def test_an_invalidation_is_honoured_before_the_next_refresh(store: Path) -> None:
    con = connect(store)
    con.execute(
        "INSERT INTO request_rollups VALUES ('2026-11-15 10:30', NULL, 'GET', '/x', 200, 7, 0, 0, 0)"
    )
    from conflictlens.store.summaries import invalidate_from

    invalidate_from(con, dt.datetime(2026, 11, 15, 10, 30))
    assert summarised_before(con) == dt.datetime(2026, 11, 15, 10)
    con.close()
    summarised = _answers(store)
    _raw_only(store)
    _same(summarised, _answers(store))
    con = connect(store)
    assert refresh_summaries(con) == dt.datetime(2026, 11, 19, 23)
    con.close()
