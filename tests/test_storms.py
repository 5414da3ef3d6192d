"""Retry storms on logs stamped to the second, the millisecond and the microsecond: hand-made
lines whose tries, intervals and backoff are known, imported through the real pipeline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli
from tests.helpers import clf_line, clf_ts, cli_json, write_lines

START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
ROUTE = "/api/v1/users/{id}"


def _combined(offsets_s: list[float], client: str = "10.0.0.7") -> list[bytes]:
    """nginx combined lines (whole seconds) for tries at these offsets from START."""
    return [
        clf_line("/api/v1/users/42", ts=clf_ts(START + dt.timedelta(seconds=s)), client=client)
        for s in offsets_s
    ]


def _json(offsets_s: list[float], places: int, client: str = "10.0.0.7") -> list[bytes]:
    """nginx JSON lines whose $time_iso8601 carries ``places`` decimals of a second."""
    lines = []
    for s in offsets_s:
        moment = START + dt.timedelta(seconds=s)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f"{moment.microsecond / 1e6:.{places}f}"[1:]
        record = {
            "time_iso8601": stamp + "+00:00",
            "remote_addr": client,
            "request_method": "PUT",
            "request_uri": "/api/v1/users/42",
            "status": 409,
        }
        lines.append(json.dumps(record).encode())
    return lines


def _storms(tmp_path: Path, run_cli: RunCli, lines: list[bytes], fmt: str) -> list[Any]:
    log = tmp_path / "access.log"
    write_lines(log, lines)
    db = tmp_path / "t.duckdb"
    result = run_cli("ingest", "--db", db, "--format", fmt, log)
    assert result.exit_code == 0, result.output
    return cli_json(run_cli("storms", "--db", db, "--json"))  # type: ignore[no-any-return]


def test_a_tight_loop_in_whole_seconds_is_a_storm(tmp_path: Path, run_cli: RunCli) -> None:
    """Four tries a second for a minute: nginx writes 4 lines per second with the same stamp.
    Most gaps read 0; that is no backoff, and the interval is the span over the count."""
    tries = [i * 0.25 for i in range(240)]
    storms = _storms(tmp_path, run_cli, _combined(tries), "nginx-combined")
    assert len(storms) == 1
    storm = storms[0]
    assert (storm["client"], storm["route"], storm["count"]) == ("10.0.0.7", ROUTE, 240)
    assert storm["resolution_ms"] == 1000.0
    # the true 250 ms, within what whole seconds can tell over 239 gaps
    assert storm["median_interval_ms"] == pytest.approx(250, abs=1000 / 239)


def test_a_client_backing_off_in_whole_seconds_is_no_storm(tmp_path: Path, run_cli: RunCli) -> None:
    """Ten tries in 8 s whose gaps grow from 0.1 s to 3 s, stamped in whole seconds."""
    gaps = [0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 1.9, 3.0]
    tries = [sum(gaps[:i]) for i in range(len(gaps) + 1)]
    assert _storms(tmp_path, run_cli, _combined(tries), "nginx-combined") == []


def test_a_client_that_does_not_back_off_is_a_storm_even_if_ties_end_it(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Steady 300 ms apart, but the first half happens to straddle fewer second marks than the
    second: the halves' medians (0 and 0, or 0 and 1000) say nothing; the spans do."""
    tries = [0.9 + i * 0.3 for i in range(12)]
    storms = _storms(tmp_path, run_cli, _combined(tries), "nginx-combined")
    assert [s["count"] for s in storms] == [12]
    assert storms[0]["median_interval_ms"] == pytest.approx(300, abs=1000 / 11)


@pytest.mark.parametrize(("places", "resolution"), [(3, 1.0), (6, 0.001)])
def test_fine_stamps_measure_the_gaps(
    tmp_path: Path, run_cli: RunCli, places: int, resolution: float
) -> None:
    """Millisecond and microsecond stamps resolve a 200 ms loop: the median gap is measured."""
    tries = [i * 0.2 + 0.000123 * (i % 3) for i in range(30)]
    storms = _storms(tmp_path, run_cli, _json(tries, places), "nginx-json")
    assert len(storms) == 1
    assert storms[0]["resolution_ms"] == resolution
    assert storms[0]["median_interval_ms"] == pytest.approx(200, abs=1)


@pytest.mark.parametrize("places", [0, 3, 6])
def test_backoff_is_backoff_at_every_resolution(
    tmp_path: Path, run_cli: RunCli, places: int
) -> None:
    """Gaps doubling from 0.5 s to 8 s (a textbook exponential backoff)."""
    gaps = [0.5, 0.5, 1, 1, 2, 2, 4, 4, 8]
    tries = [sum(gaps[:i]) for i in range(len(gaps) + 1)]
    assert _storms(tmp_path, run_cli, _json(tries, places), "nginx-json") == []
