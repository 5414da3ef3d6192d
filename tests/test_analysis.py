"""The analysis bars, on the generator's planted scenarios imported through the real pipeline:
the hot document, the retry storm, the deploy spike as one incident, no incident when none is
planted. Plus the mechanics the bars stand on: baselines, hot spots, clusters over time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conflictlens.analysis import Filters, TimeRange, run_query
from conflictlens.analysis.baselines import plan_baseline
from conflictlens.analysis.params import DAY, HOUR, MINUTE, WEEK, bucket_for
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from tests.conftest import RunCli
from tests.helpers import clf_line, clf_ts, cli_json, write_lines

Scenario = tuple[Path, dict[str, Any]]


def _scenario(
    folder: Path, scenario: str, style: str, lines: int, hours: float, seed: int = 11
) -> Scenario:
    log = folder / f"{scenario}.log"
    write_log(log, lines, style=style, seed=seed, hours=hours, scenario=scenario)
    truth = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
    db = folder / f"{scenario}.duckdb"
    from click.testing import CliRunner

    from conflictlens.cli import cli

    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    return db, truth["planted"]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    """Each planted scenario in a different gateway format, imported into its own store."""
    folder = tmp_path_factory.mktemp("scenarios")
    return {
        "deploy-spike": _scenario(folder, "deploy-spike", "envoy-text", 200_000, 24),
        "none-planted": _scenario(folder, "none-planted", "nginx-extended", 200_000, 24),
        "retry-storm": _scenario(folder, "retry-storm", "kong-json", 100_000, 12),
        "hot-document": _scenario(folder, "hot-document", "traefik-json", 100_000, 12),
    }


def _iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def test_planted_hot_document_is_the_top_hot_resource_of_its_route(
    scenarios: dict[str, Scenario], run_cli: RunCli
) -> None:
    db, planted = scenarios["hot-document"]
    rows = cli_json(run_cli("resources", "--db", db, "--route", planted["route"], "--json"))
    assert rows[0]["resource"] == planted["resource"], rows[:3]
    top = rows[0]
    assert top["method"] == planted["method"]
    assert top["clients"] == planted["clients"]
    assert top["conflicts"] >= planted["conflicts"]
    assert top["max_overlap"] >= 1
    assert {"method", "route", "resource", "conflicts", "clients", "max_overlap"} <= set(top)


def test_planted_retry_storm_is_found_with_its_count(
    scenarios: dict[str, Scenario], run_cli: RunCli
) -> None:
    db, planted = scenarios["retry-storm"]
    rows = cli_json(run_cli("storms", "--db", db, "--json"))
    mine = [r for r in rows if r["client"] == planted["client"]]
    assert len(mine) == 1, rows
    storm = mine[0]
    assert abs(storm["count"] - planted["count"]) <= 0.05 * planted["count"], (storm, planted)
    assert (storm["method"], storm["route"], storm["resource"]) == (
        planted["method"],
        planted["route"],
        planted["resource"],
    )
    assert storm["median_interval_ms"] == pytest.approx(planted["median_interval_ms"], rel=0.1)
    # Times are ISO-8601 with an offset, and the storm spans the planted one.
    assert _iso(storm["start"]).utcoffset() == dt.timedelta(0)
    assert abs(_iso(storm["start"]) - _iso(planted["start"])) < dt.timedelta(seconds=1)
    assert abs(_iso(storm["end"]) - _iso(planted["end"])) < dt.timedelta(seconds=1)


def test_planted_deploy_spike_is_one_incident_with_exactly_its_routes(
    scenarios: dict[str, Scenario], run_cli: RunCli
) -> None:
    db, planted = scenarios["deploy-spike"]
    rows = cli_json(run_cli("incidents", "--db", db, "--json"))
    assert len(rows) == 1, [(r["start"], r["clusters"]) for r in rows]
    incident = rows[0]
    bucket = dt.timedelta(minutes=5)  # the incident bucket for a 24 h range
    assert abs(_iso(incident["start"]) - _iso(planted["start"])) <= bucket
    assert abs(_iso(incident["end"]) - _iso(planted["end"])) <= bucket
    found = {(c["method"], c["route"], c["error_code"]) for c in incident["clusters"]}
    assert found == {(r["method"], r["route"], r["error_code"]) for r in planted["routes"]}
    assert incident["peak_ratio"] > max(r["baseline_rate"] for r in planted["routes"])


def test_the_storm_clients_conflicts_in_its_window_are_the_top_client(
    scenarios: dict[str, Scenario],
) -> None:
    """What a dashboard shows for an incident's window: the clients query (and storms) asked
    with since/until and the route find the planted retry storm's client and its tries."""
    db, planted = scenarios["retry-storm"]
    second = dt.timedelta(seconds=1)  # Kong logs milliseconds: the first try is stamped earlier
    window = TimeRange(_iso(planted["start"]) - second, _iso(planted["end"]) + second)
    with connect(db, read_only=True) as con:
        clients = run_query(con, "clients", window, route=planted["route"], limit=5)
        storms = run_query(con, "storms", window, route=planted["route"])
    top = clients.row(0, named=True)
    assert top["client"] == planted["client"] and top["user_agent"] == planted["user_agent"]
    assert top["conflicts"] == planted["count"] and top["resources"] == 1
    assert top["top_error_code"] == planted["error_code"]
    assert storms["client"].to_list() == [planted["client"]]


def test_no_incident_when_none_is_planted(scenarios: dict[str, Scenario], run_cli: RunCli) -> None:
    db, _ = scenarios["none-planted"]
    assert cli_json(run_cli("incidents", "--db", db, "--json")) == []


@pytest.mark.parametrize(
    ("log", "command", "check"),
    [
        ("hot-document.nginx-extended.log", "resources", "resource"),
        ("retry-storm.envoy-text.log", "storms", "client"),
    ],
)
def test_shipped_sample_scenarios(
    log: str, command: str, check: str, db_path: Path, run_cli: RunCli
) -> None:
    """The small samples in sample_logs/scenarios/ show their planted finding first too."""
    path = Path(__file__).parent.parent / "sample_logs" / "scenarios" / log
    planted = json.loads(Path(f"{path}.truth.json").read_text(encoding="utf-8"))["planted"]
    assert run_cli("ingest", "--db", db_path, path).exit_code == 0
    rows = cli_json(run_cli(command, "--db", db_path, "--json"))
    assert rows and rows[0][check] == planted[check]


# --- mechanics ------------------------------------------------------------------------------


def test_baseline_plan_prefers_the_same_hour_of_week() -> None:
    assert plan_baseline(HOUR, 3 * WEEK).method == "hour-of-week"
    assert plan_baseline(HOUR, 3 * WEEK).offsets == (168, 336, 504)
    assert plan_baseline(DAY, 9 * WEEK).offsets == (7, 14, 21, 28)  # at most four weeks
    trailing = plan_baseline(5 * MINUTE, 10 * HOUR)
    assert trailing.method == "trailing" and trailing.offsets == tuple(range(1, 25))
    assert plan_baseline(DAY, 2 * DAY).method == "none"  # two samples are no baseline
    # 10 hours do not divide a week: the same hour-of-week cannot be lined up
    assert plan_baseline(10 * HOUR, 5 * WEEK).method == "trailing"


def test_bucket_is_chosen_from_the_span() -> None:
    assert [bucket_for(s) for s in (HOUR, 24 * HOUR, 7 * DAY, 90 * DAY)] == [
        "minute",
        "5m",
        "hour",
        "day",
    ]


END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _line(moment: dt.datetime, path: str, status: int, method: str = "PUT") -> bytes:
    return clf_line(path, status=status, method=method, ts=clf_ts(moment))


@pytest.fixture
def weeks_store(tmp_path: Path, run_cli: RunCli) -> Path:
    """Three weeks and a day of hand-made traffic: /api/v1/carts/{id} has 2 conflicts every
    hour, 6 in the last day's 10:00 hour; /api/v1/rare appears only in the last day (1
    conflict in 2 requests); /api/v1/busy has many requests and few conflicts."""
    lines: list[bytes] = []
    start = END - 22 * DAY
    for hour in range(22 * 24):
        moment = start + hour * HOUR
        conflicts = 6 if moment == END - DAY + 10 * HOUR else 2
        lines += [_line(moment + i * MINUTE, "/api/v1/carts/7", 409) for i in range(conflicts)]
        lines += [_line(moment + i * MINUTE, "/api/v1/carts/7", 200) for i in range(8)]
        lines += [_line(moment + i * MINUTE, "/api/v1/busy/1", 200) for i in range(20)]
        lines.append(_line(moment + 30 * MINUTE, "/api/v1/busy/1", 409))
    last = END - DAY + 10 * HOUR
    lines += [_line(last, "/api/v1/rare", 409, "POST"), _line(last, "/api/v1/rare", 200, "POST")]
    log = tmp_path / "weeks.log"
    write_lines(log, lines)
    db = tmp_path / "weeks.duckdb"
    assert run_cli("ingest", "--db", db, "--format", "nginx-combined", log).exit_code == 0
    return db


def test_hotspots_use_past_weeks_and_flag_new_clusters(weeks_store: Path) -> None:
    con = connect(weeks_store, read_only=True)
    try:
        hour = TimeRange(END - DAY + 10 * HOUR, END - DAY + 11 * HOUR)
        rows = {r["route"]: r for r in run_query(con, "hotspots", hour).to_dicts()}
        carts = rows["/api/v1/carts/{id}"]
        assert carts["baseline_method"] == "hour-of-week"
        assert carts["conflicts"] == 6 and carts["baseline"] == 2.0
        assert carts["score"] > 0 and not carts["new"]
        assert rows["/api/v1/rare"]["new"] is True
        day = TimeRange(END - DAY, END)
        ranked = run_query(con, "hotspots", day, sort="ratio").to_dicts()
        # 1 conflict in 2 requests is a 50 % ratio, but too few to rank above real clusters.
        assert ranked[0]["route"] == "/api/v1/carts/{id}"
        assert ranked[-1]["route"] == "/api/v1/rare"
        by_volume = run_query(con, "hotspots", day, sort="volume").to_dicts()
        assert [r["conflicts"] for r in by_volume] == sorted(
            (r["conflicts"] for r in by_volume), reverse=True
        )
    finally:
        con.close()


def test_clusters_over_time_have_ratio_and_share(weeks_store: Path) -> None:
    con = connect(weeks_store, read_only=True)
    try:
        day = TimeRange(END - DAY, END)
        frame = run_query(con, "timeline", day, route="/api/v1/carts/{id}")
        assert set(frame["bucket_seconds"]) == {300}  # 24 h → 5-minute buckets
        assert frame["conflicts"].sum() == 2 * 23 + 6
        assert frame["requests"].sum() >= frame["conflicts"].sum()
        assert (frame["share"] == 1.0).all()  # the route filter leaves one cluster per bucket
        hourly = run_query(con, "timeline", day, bucket="hour")
        assert set(hourly["bucket_seconds"]) == {3600}
        shares = hourly.group_by("bucket").agg(pl.col("share").sum())
        assert shares.height == 24
        assert shares["share"].to_list() == pytest.approx([1.0] * 24)
    finally:
        con.close()


def test_filters_narrow_every_analysis(scenarios: dict[str, Scenario]) -> None:
    db, planted = scenarios["retry-storm"]
    con = connect(db, read_only=True)
    try:
        for name in ("storms", "resources", "hotspots", "timeline"):
            frame = run_query(con, name, TimeRange(), client=planted["client"])
            assert frame.height > 0, name
            other = run_query(con, name, TimeRange(), client="192.0.2.254")
            assert other.height == 0, name
    finally:
        con.close()


def test_unknown_sort_is_one_clear_line(db_path: Path, run_cli: RunCli) -> None:
    write_lines(db_path.parent / "a.log", [clf_line()])
    assert run_cli("ingest", "--db", db_path, db_path.parent / "a.log").exit_code == 0
    result = run_cli("clusters", "--db", db_path, "--over-time", "--bucket", "fortnight")
    assert result.exit_code != 0 and "fortnight" in result.output
    con = connect(db_path, read_only=True)
    try:
        with pytest.raises(ValueError, match="unknown sort 'loudest'"):
            run_query(con, "hotspots", TimeRange(), sort="loudest")
    finally:
        con.close()


def test_filters_value_type() -> None:
    assert Filters(client="1.2.3.4").params()["client"] == "1.2.3.4"


def test_the_fast_median_is_numpys_nanmedian() -> None:
    import warnings

    import numpy as np

    from conflictlens.analysis.baselines import _nan_median

    rng = np.random.default_rng(1)
    values = rng.integers(0, 10, (40, 30, 7)).astype(float)
    values[rng.random(values.shape) < 0.3] = np.nan
    values[0, 0, :] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(values, axis=2)
    assert np.allclose(_nan_median(values), expected, equal_nan=True)
