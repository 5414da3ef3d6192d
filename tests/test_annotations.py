"""Annotations (deploy markers) and the incident headline: the `annotate` command and the
`annotations` query on a real store, incidents naming the change that preceded them, and the
headline figures checked against the generator's planted deploy spike and the log itself."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conflictlens.analysis import TimeRange, run_query
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from conflictlens.store.schema import MIGRATIONS, migrate
from tests.conftest import RunCli
from tests.helpers import clf_line, cli_json, query, write_lines

# --- the store -----------------------------------------------------------------------------


def test_a_store_of_schema_4_gains_annotations_and_raw_lines_keeping_its_rows(
    db_path: Path,
) -> None:
    import duckdb

    # a file as conflictlens wrote it before annotations: versions 1-4 only
    with closing(duckdb.connect(str(db_path))) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, sql in enumerate(MIGRATIONS[:4], 1):
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
        con.execute(
            'INSERT INTO conflict_events (ts, status, source_id, "offset") '
            "VALUES ('2026-11-19 10:00:00', 409, 1, 0)"
        )
    with closing(connect(db_path)) as con:
        assert migrate(con) == len(MIGRATIONS)
        assert con.execute("SELECT status, raw_line FROM conflict_events").fetchall() == [
            (409, None)
        ]
        assert con.execute("SELECT count(*) FROM annotations").fetchall() == [(0,)]


# --- the command and the query -------------------------------------------------------------


def test_annotate_writes_the_file_and_the_query_lists_by_time_and_service(
    run_cli: RunCli, db_path: Path
) -> None:
    for at, words, service in (
        ("2026-11-19T15:20:00Z", "orders v1.42", "orders"),
        ("2026-11-19T16:20:00+01:00", "flag checkout-v2 on", None),  # 15:20 UTC too
        ("2026-11-19T09:00", "carts v7", "carts"),
    ):
        extra = ("--service", service) if service else ()
        result = run_cli("annotate", "--db", db_path, "--at", at, "--text", words, *extra)
        assert result.exit_code == 0, result.output
        assert words in result.output
    rows = query(db_path, 'SELECT "at", text, service FROM annotations ORDER BY id')
    assert rows[1] == (dt.datetime(2026, 11, 19, 15, 20), "flag checkout-v2 on", None)
    with closing(connect(db_path, read_only=True)) as con:
        listed = run_query(con, "annotations").to_dicts()
        assert [r["text"] for r in listed] == ["carts v7", "orders v1.42", "flag checkout-v2 on"]
        # a service's annotations include those of no service (a change to everything)
        orders = run_query(con, "annotations", service="orders")["text"].to_list()
        assert orders == ["orders v1.42", "flag checkout-v2 on"]
        since = TimeRange(dt.datetime(2026, 11, 19, 12), dt.datetime(2026, 11, 19, 15, 20))
        assert run_query(con, "annotations", since).height == 0  # until is exclusive


def test_annotate_defaults_to_now(run_cli: RunCli, db_path: Path) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = cli_json(run_cli("annotate", "--db", db_path, "--text", "hotfix", "--json"))
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    at = dt.datetime.fromisoformat(row["at"].removesuffix("Z"))
    assert before <= at <= after and row["service"] is None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--at", "yesterday", "--text", "x"), "--at: invalid time"),
        (("--at", "1970-01-01", "--text", "x"), "at: must lie between"),
        (("--text", "   "), "text: must not be empty"),
        (("--text", "x", "--service", "two words"), "service: a name without spaces"),
    ],
)
def test_annotate_bad_input_is_one_line(
    run_cli: RunCli, db_path: Path, args: tuple[str, ...], said: str
) -> None:
    result = run_cli("annotate", "--db", db_path, *args)
    assert result.exit_code != 0 and said in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


# --- incidents name the change before them -------------------------------------------------


@pytest.fixture(scope="module")
def deploy_spike(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """The generator's deploy spike (envoy-text: the host is the service), imported once."""
    from click.testing import CliRunner

    from conflictlens.cli import cli

    folder = tmp_path_factory.mktemp("deploy")
    log = folder / "access.log"
    write_log(log, 200_000, style="envoy-text", seed=11, hours=24, scenario="deploy-spike")
    planted = json.loads(Path(f"{log}.truth.json").read_text())["planted"]
    db = folder / "spike.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    return db, log, planted


def _copy(store: Path, folder: Path) -> Path:
    target = folder / "copy.duckdb"
    shutil.copy(store, target)
    return target


def _incident(run_cli: RunCli, db: Path) -> dict[str, Any]:
    rows = cli_json(run_cli("incidents", "--db", db, "--json"))
    assert len(rows) == 1, rows
    return rows[0]


def _at(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_incident_names_the_latest_change_within_15_minutes_before_it(
    deploy_spike: tuple[Path, Path, dict[str, Any]], run_cli: RunCli, tmp_path: Path
) -> None:
    store, _, _ = deploy_spike
    db = _copy(store, tmp_path)
    plain = _incident(run_cli, db)
    assert plain["annotation"] is None and plain["minutes_after_annotation"] is None
    start = dt.datetime.fromisoformat(plain["start"]).replace(tzinfo=None)
    for minutes, words, service in (
        (16, "too early", None),  # more than 15 minutes before: not it
        (12, "orders v1.41", None),
        (3, "billing v9", "billing"),  # later, but another service's change
        (7, "orders v1.42", "api.example.com"),  # the latest that applies
        (-6, "after the start", None),  # after the incident's first bucket: not before it
    ):
        extra = ("--service", service) if service else ()
        at = _at(start - dt.timedelta(minutes=minutes))
        assert run_cli("annotate", "--db", db, "--at", at, "--text", words, *extra).exit_code == 0
    named = _incident(run_cli, db)
    assert named["annotation"] == "orders v1.42"
    assert named["minutes_after_annotation"] == 7
    assert dt.datetime.fromisoformat(named["annotation_at"]).replace(tzinfo=None) == (
        start - dt.timedelta(minutes=7)
    )
    # naming the change changes nothing of what was detected
    detected = ("start", "end", "peak_ratio", "conflicts", "clusters")
    assert {k: named[k] for k in detected} == {k: plain[k] for k in detected}
    table = run_cli("incidents", "--db", db)
    assert "began 7 min after orders v1.42" in table.output


def test_a_change_inside_the_first_bucket_counts_as_0_minutes_and_15_is_the_edge(
    deploy_spike: tuple[Path, Path, dict[str, Any]], run_cli: RunCli, tmp_path: Path
) -> None:
    store, _, _ = deploy_spike
    db = _copy(store, tmp_path)
    start = dt.datetime.fromisoformat(_incident(run_cli, db)["start"]).replace(tzinfo=None)
    early = _at(start - dt.timedelta(minutes=16))
    assert run_cli("annotate", "--db", db, "--at", early, "--text", "early").exit_code == 0
    assert _incident(run_cli, db)["annotation"] is None
    edge = _at(start - dt.timedelta(minutes=15))
    assert run_cli("annotate", "--db", db, "--at", edge, "--text", "edge").exit_code == 0
    assert _incident(run_cli, db)["minutes_after_annotation"] == 15
    inside = _at(start + dt.timedelta(minutes=2))
    assert run_cli("annotate", "--db", db, "--at", inside, "--text", "inside").exit_code == 0
    named = _incident(run_cli, db)
    assert (named["annotation"], named["minutes_after_annotation"]) == ("inside", 0)


# --- the headline figures ------------------------------------------------------------------

ENVOY = re.compile(r'^\[(\S+)\] "(\S+) (\S+)')


def _requests_in_log(log: Path, planted: dict[str, Any], start: str, end: str) -> int:
    """Requests on the planted routes in [start, end), counted from the log's own lines."""
    patterns = [
        (r["method"], re.compile("^" + re.escape(r["route"]).replace(r"\{id\}", r"\d+") + "$"))
        for r in planted["routes"]
    ]
    first = dt.datetime.fromisoformat(start)
    last = dt.datetime.fromisoformat(end)
    count = 0
    with log.open() as lines:
        for line in lines:
            match = ENVOY.match(line)
            assert match is not None
            stamp, method, target = match.groups()
            if not first <= dt.datetime.fromisoformat(stamp) < last:
                continue
            path = target.split("?")[0]
            count += any(method == m and p.match(path) for m, p in patterns)
    return count


def test_the_headline_figures_of_the_planted_deploy_spike(
    deploy_spike: tuple[Path, Path, dict[str, Any]], run_cli: RunCli
) -> None:
    db, log, planted = deploy_spike
    incident = _incident(run_cli, db)
    routes = planted["routes"]
    assert set(incident["endpoints"]) == {f"{r['method']} {r['route']}" for r in routes}
    assert set(incident["error_codes"]) == {r["error_code"] for r in routes}
    assert incident["requests"] == _requests_in_log(
        log, planted, incident["start"], incident["end"]
    )
    # the usual ratio is that of the cluster whose peak is the incident's peak
    top = max(incident["clusters"], key=lambda c: c["peak_ratio"])
    assert incident["usual_ratio"] == top["baseline_ratio"]
    truth = next(r for r in routes if (r["method"], r["route"]) == (top["method"], top["route"]))
    assert incident["usual_ratio"] == pytest.approx(truth["baseline_rate"], rel=0.25)
    assert incident["times_usual"] == pytest.approx(incident["peak_ratio"] / top["baseline_ratio"])
    assert incident["times_usual"] == pytest.approx(planted["factor"], rel=0.3)


def test_times_usual_is_null_when_the_usual_ratio_is_zero(db_path: Path) -> None:
    """A route that never conflicted before: its usual is 0, and "times usual" is not a number."""
    from conflictlens.analysis.incident_context import headline

    row = {
        "peak_ratio": 0.5,
        "clusters": [
            {"method": "PUT", "route": "/a/{id}", "error_code": None, "peak_ratio": 0.5,
             "baseline_ratio": 0.0},
            {"method": "PUT", "route": "/b/{id}", "error_code": "X", "peak_ratio": 0.2,
             "baseline_ratio": 0.1},
        ],
    }  # fmt: skip
    figures = headline(row)
    assert (figures["usual_ratio"], figures["times_usual"]) == (0.0, None)
    assert figures["endpoints"] == ["PUT /a/{id}", "PUT /b/{id}"]
    assert figures["error_codes"] == ["X"]


# --- events sorted server-side -------------------------------------------------------------


def _events_store(run_cli: RunCli, folder: Path) -> Path:
    lines = [
        clf_line("/api/v1/users/3", method="PUT", client="10.0.0.3", size=30),
        clf_line("/api/v1/users/1", method="DELETE", client="10.0.0.1", size=10),
        clf_line("/api/v1/users/2", method="PATCH", client="10.0.0.2", size=20, status=412),
        clf_line("/api/v1/carts/9", method="PUT", client="10.0.0.9", size=20, status=423),
        clf_line(
            "/api/v1/users/4",
            method="PUT",
            client="10.0.0.4",
            size=40,
            ts="20/Nov/2026:10:00:05 +0000",
        ),
    ]  # all but the last at the same second: ties everywhere
    log = folder / "events.log"
    write_lines(log, lines)
    db = folder / "events.duckdb"
    assert run_cli("ingest", "--db", db, log).exit_code == 0
    return db


@pytest.mark.parametrize("sort", ["method", "path", "status", "client", "bytes", "ts", "route"])
@pytest.mark.parametrize("descending", [True, False])
def test_events_sort_by_a_column_and_pages_never_overlap(
    run_cli: RunCli, tmp_path: Path, sort: str, descending: bool
) -> None:
    db = _events_store(run_cli, tmp_path)
    with closing(connect(db, read_only=True)) as con:
        whole = run_query(con, "events", sort=sort, descending=descending)
        pages = [
            run_query(con, "events", sort=sort, descending=descending, limit=1, offset=n)
            for n in range(whole.height)
        ]
    values = whole[sort].to_list()
    assert values == sorted(values, reverse=descending)
    paged = [(p["source_id"][0], p["offset"][0]) for p in pages]
    assert len(set(paged)) == whole.height == 5  # every event once, none twice
    assert paged == list(zip(whole["source_id"], whole["offset"], strict=True))


def test_events_default_order_is_newest_first_and_bad_sorts_are_refused(
    run_cli: RunCli, tmp_path: Path
) -> None:
    from conflictlens.analysis import AnalysisError

    db = _events_store(run_cli, tmp_path)
    with closing(connect(db, read_only=True)) as con:
        first = run_query(con, "events", limit=1)
        assert first["path"][0] == "/api/v1/users/4"
        with pytest.raises(AnalysisError, match="unknown sort 'user_agent'; known: ts, method"):
            run_query(con, "events", sort="user_agent")
        with pytest.raises(AnalysisError, match="descending must be true or false"):
            run_query(con, "events", descending="sideways")
        ascending = run_query(con, "events", sort="ts", descending="false")
        assert ascending["path"][-1] == "/api/v1/users/4"
