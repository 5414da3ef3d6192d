"""Insights that hold at every zoom: the generator's bad day (a 45-minute deploy spike on two
routes, one document 40 clients fight over for 30 minutes, one client retrying a conflict
four times a second for 3 minutes, all on the log's last day) is found the same whatever range
is asked, on stores with 1, 3 and 17 days of history, in logs stamped to the second (nginx
combined), the millisecond (Envoy JSON) and the microsecond (AWS ALB).

Every expectation comes from the generator's ground truth (the planted windows, routes,
client and counts), never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conflictlens.sample_logs.catalog import STATUS_KINDS, declared_conflict
from conflictlens.sample_logs.formats import FORMATS
from conflictlens.sample_logs.generator import write_log
from tests.conftest import RunCli
from tests.helpers import cli_json

LINES_PER_DAY = 200_000
END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)  # the generator's default end
RANGES_DAYS = (1, 3, 7, 30)
BUCKET = dt.timedelta(minutes=5)  # incidents start within one detection bucket of the truth

# name: (days of history, format, the resolution its timestamps have)
STORES: dict[str, tuple[int, str, float]] = {
    "1d-combined": (1, "nginx-combined", 1000.0),
    "3d-combined": (3, "nginx-combined", 1000.0),
    "17d-combined": (17, "nginx-combined", 1000.0),
    "3d-envoy-json": (3, "envoy-json", 1.0),
    "3d-alb": (3, "aws-alb", 0.001),
}

Store = tuple[Path, dict[str, Any], str]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Store]:
    """Stores are built when a test first asks for one, then shared by the module."""
    return {}


def _store(stores: dict[str, Store], name: str, tmp: Path) -> Store:
    if name not in stores:
        days, style, _ = STORES[name]
        log = tmp / f"{name}.log"
        write_log(
            log, days * LINES_PER_DAY, style=style, seed=31, hours=24 * days, scenario="bad-day"
        )
        truth = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
        db = tmp / f"{name}.duckdb"
        from click.testing import CliRunner

        from conflictlens.cli import cli

        result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
        assert result.exit_code == 0, result.output
        stores[name] = (db, truth["planted"], style)
    return stores[name]


@pytest.fixture(params=list(STORES))
def store(
    request: pytest.FixtureRequest,
    stores: dict[str, Store],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Store]:
    name: str = request.param
    return name, _store(stores, name, tmp_path_factory.mktemp(name))


def _range(days: int) -> list[str]:
    return ["--since", (END - dt.timedelta(days=days)).isoformat(), "--until", END.isoformat()]


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _planted_clusters(planted: dict[str, Any], style: str) -> set[tuple[str, str, str]]:
    """(method, route, error code or kind) of every cluster a planted event fills: the code
    where the format logs one, else the kind its status gives."""
    events = [
        *[(r["method"], r["route"], r["error_code"]) for r in planted["deploy_spike"]["routes"]],
        *[
            (planted["hot_document"]["method"], planted["hot_document"]["route"], code)
            for code in planted["hot_document"]["conflicts_by_code"]
        ],
        (
            planted["retry_storm"]["method"],
            planted["retry_storm"]["route"],
            planted["retry_storm"]["error_code"],
        ),
    ]
    if FORMATS[style].carries_code:
        return {(m, r, code) for m, r, code in events}
    return {(m, r, STATUS_KINDS[declared_conflict(m, r, code)[0]]) for m, r, code in events}


def _cluster_key(row: dict[str, Any], style: str) -> tuple[str, str, str]:
    third = row["error_code"] if FORMATS[style].carries_code else row["kind"]
    return row["method"], row["route"], third


def _events(planted: dict[str, Any]) -> dict[str, tuple[dt.datetime, dt.datetime, set[tuple]]]:
    """Each planted event's window and its (method, route) pairs."""
    spike, document, storm = (
        planted["deploy_spike"],
        planted["hot_document"],
        planted["retry_storm"],
    )
    return {
        "deploy_spike": (
            _at(spike["start"]),
            _at(spike["end"]),
            {(r["method"], r["route"]) for r in spike["routes"]},
        ),
        "hot_document": (
            _at(document["start"]),
            _at(document["end"]),
            {(document["method"], document["route"])},
        ),
        "retry_storm": (
            _at(storm["start"]),
            _at(storm["end"]),
            {(storm["method"], storm["route"])},
        ),
    }


def _which_event(incident: dict[str, Any], planted: dict[str, Any]) -> str | None:
    """The planted event an incident is: it starts within a bucket of the event's start and
    overlaps it."""
    start, end = _at(incident["start"]), _at(incident["end"])
    for name, (begin, finish, _) in _events(planted).items():
        if abs(start - begin) <= BUCKET and start < finish and end > begin:
            return name
    return None


def test_incidents_are_the_planted_events_at_every_zoom(
    store: tuple[str, Store], run_cli: RunCli
) -> None:
    name, (db, planted, _) = store
    answers = []
    for days in RANGES_DAYS:
        result = run_cli("incidents", "--db", db, *_range(days), "--json")
        assert result.exit_code == 0, result.output
        answers.append(cli_json(result))
    assert all(answer == answers[0] for answer in answers), f"{name}: incidents change with range"
    found: dict[str, dict[str, Any]] = {}
    events = _events(planted)
    for incident in answers[0]:
        event = _which_event(incident, planted)
        assert event is not None, f"{name}: an incident that was not planted: {incident}"
        assert event not in found, f"{name}: {event} split into two incidents"
        found[event] = incident
        routes = {(c["method"], c["route"]) for c in incident["clusters"]}
        assert routes == events[event][2], f"{name}: {event} has other routes: {routes}"
    # The storm's 3 minutes may fill one 5-minute bucket (no episode) or two: either is right.
    assert {"deploy_spike", "hot_document"} <= set(found), f"{name}: missed {found.keys()}"


def test_the_retry_storm_is_found_at_every_zoom_and_resolution(
    store: tuple[str, Store], run_cli: RunCli
) -> None:
    name, (db, planted, _) = store
    storm = planted["retry_storm"]
    resolution = STORES[name][2]
    for days in RANGES_DAYS:
        rows = cli_json(run_cli("storms", "--db", db, *_range(days), "--json"))
        assert rows, f"{name}: no storm for {days} days"
        top = rows[0]
        assert (top["client"], top["method"], top["route"], top["resource"]) == (
            storm["client"],
            storm["method"],
            storm["route"],
            storm["resource"],
        )
        assert top["count"] == storm["count"] == 720
        assert top["resolution_ms"] == resolution
        # 720 tries in 3 minutes: 250 ms apart, whatever the stamps' resolution
        assert top["median_interval_ms"] == pytest.approx(storm["median_interval_ms"], rel=0.02)
        assert len(rows) == 1, f"{name}: storms that were not planted: {rows[1:]}"


def test_the_fought_over_document_is_its_routes_hot_resource(
    store: tuple[str, Store], run_cli: RunCli
) -> None:
    name, (db, planted, _) = store
    document = planted["hot_document"]
    for days in RANGES_DAYS:
        rows = cli_json(
            run_cli("resources", "--db", db, *_range(days), "--route", document["route"], "--json")
        )
        top = rows[0]
        assert top["resource"] == document["resource"], name
        assert top["conflicts"] == document["conflicts"]
        assert top["clients"] == document["clients"] == 40


def test_growth_ranks_the_planted_clusters_first_on_the_bad_day(
    store: tuple[str, Store], run_cli: RunCli
) -> None:
    name, (db, planted, style) = store
    expected = _planted_clusters(planted, style)
    for days in RANGES_DAYS:
        rows = cli_json(
            run_cli("hotspots", "--db", db, *_range(days), "--sort", "growth", "--json")
        )
        top = rows[: len(expected)]
        assert {_cluster_key(r, style) for r in top} == expected, (name, days, top)
        assert all(r["score"] is not None and r["baseline"] is not None for r in top), name
        rest = [r["score"] for r in rows[len(expected) :] if r["score"] is not None]
        assert min(r["score"] for r in top) > max(rest, default=0), (name, days)
    rows = cli_json(run_cli("hotspots", "--db", db, *_range(1), "--sort", "growth", "--json"))
    # Before the bad day, 0 or 2 days are too few to compare a day with: the day's own hours
    # are; 16 days hold a week of days just before it.
    expected_method = "trailing" if STORES[name][0] == 17 else "within-range"
    assert {r["baseline_method"] for r in rows} == {expected_method}, name


def test_hotspots_give_every_cluster_a_baseline_on_a_young_store(
    store: tuple[str, Store], run_cli: RunCli
) -> None:
    name, (db, _, _) = store
    for days in RANGES_DAYS:
        rows = cli_json(run_cli("hotspots", "--db", db, *_range(days), "--json"))
        assert rows and all(r["baseline"] is not None for r in rows), (name, days)
        assert "none" not in {r["baseline_method"] for r in rows}


def test_the_report_tells_what_the_cli_tells(
    stores: dict[str, Store], tmp_path_factory: pytest.TempPathFactory, run_cli: RunCli
) -> None:
    db, planted, _ = _store(stores, "3d-combined", tmp_path_factory.mktemp("3d-combined"))
    out = db.parent / "report.json"
    for period, since in (("2026-11-15..2026-11-20", "2026-11-15"), ("2026-11-19", "2026-11-19")):
        result = run_cli("report", "--db", db, "--period", period, "--format", "json", "--out", out)
        assert result.exit_code == 0, result.output
        report = json.loads(out.read_text(encoding="utf-8"))
        span = ["--since", since, "--until", "2026-11-20"]
        incidents = cli_json(run_cli("incidents", "--db", db, *span, "--json"))
        storms = cli_json(run_cli("storms", "--db", db, *span, "--json"))
        assert report["incidents"] == incidents
        assert {_which_event(i, planted) for i in report["incidents"]} >= {
            "deploy_spike",
            "hot_document",
        }
        assert [(s["client"], s["route"], s["resource"], s["count"]) for s in report["storms"]] == [
            (s["client"], s["route"], s["resource"], s["count"]) for s in storms
        ]
        assert report["storms"][0]["client"] == planted["retry_storm"]["client"]
        resources = cli_json(run_cli("resources", "--db", db, *span, "--json", "--per-route", "3"))
        assert [(r["route"], r["resource"]) for r in report["hot_resources"]] == [
            (r["route"], r["resource"]) for r in resources[: len(report["hot_resources"])]
        ]


def test_an_incident_cut_by_the_range_is_shown_whole(
    stores: dict[str, Store], tmp_path_factory: pytest.TempPathFactory, run_cli: RunCli
) -> None:
    """A range that begins or ends inside the deploy spike shows the same incident, whole."""
    db, planted, _ = _store(stores, "3d-combined", tmp_path_factory.mktemp("3d-combined"))
    begin = _at(planted["deploy_spike"]["start"])
    whole = cli_json(run_cli("incidents", "--db", db, *_range(1), "--json"))
    spike = [i for i in whole if _which_event(i, planted) == "deploy_spike"]
    assert len(spike) == 1
    for since, until in (
        (begin + dt.timedelta(minutes=20), END),  # the range starts 20 minutes in
        (begin - dt.timedelta(hours=2), begin + dt.timedelta(minutes=15)),  # ends 15 minutes in
        (begin + dt.timedelta(minutes=10), begin + dt.timedelta(minutes=20)),  # inside it
    ):
        span = ["--since", since.isoformat(), "--until", until.isoformat()]
        found = cli_json(run_cli("incidents", "--db", db, *span, "--json"))
        assert [{k: v for k, v in i.items() if k != "incident"} for i in found] == [
            {k: v for k, v in spike[0].items() if k != "incident"}
        ], (since, until)


def test_a_quieter_clusters_late_episode_is_the_same_incident(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """One deploy, two routes: /a's conflicts jump from 14:00 to 14:25, /b's creep up at first
    and only stand out on their own from 14:20 to 14:45. That is one incident (with both
    routes), not two, and it is the same incident when the range starts after /a calmed."""
    import numpy as np

    from tests.helpers import clf_line, clf_ts, write_lines

    rng = np.random.default_rng(5)
    day = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)
    spike, late, calm, over = (day + dt.timedelta(hours=14, minutes=m) for m in (0, 20, 25, 45))
    lines = []
    for minute in range(24 * 60):
        moment = day + dt.timedelta(minutes=minute)
        rate_a = 0.5 if spike <= moment < calm else 0.05
        rate_b = 0.6 if late <= moment < over else 0.15 if spike <= moment < over else 0.05
        for route, per_minute, rate in (("a", 40, rate_a), ("b", 10, rate_b)):
            for second in np.sort(rng.integers(0, 60, per_minute)):
                status = 409 if rng.random() < rate else 200
                stamp = clf_ts(moment + dt.timedelta(seconds=int(second)))
                lines.append(clf_line(f"/api/{route}/7", status=status, ts=stamp))
    log = tmp_path / "two.log"
    write_lines(log, lines)
    db = tmp_path / "two.duckdb"
    assert run_cli("ingest", "--db", db, "--format", "nginx-combined", log).exit_code == 0
    found = cli_json(run_cli("incidents", "--db", db, "--json"))
    assert len(found) == 1, found
    assert {c["route"] for c in found[0]["clusters"]} == {"/api/a/{id}", "/api/b/{id}"}
    assert abs(_at(found[0]["start"]) - spike) <= BUCKET
    assert abs(_at(found[0]["end"]) - over) <= BUCKET
    after = ["--since", (calm + dt.timedelta(minutes=5)).isoformat(), "--until", over.isoformat()]
    assert cli_json(run_cli("incidents", "--db", db, *after, "--json")) == found
