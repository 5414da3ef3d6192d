"""Reports: the numbers equal the generator's ground truth for the day, through the read-only
store and through a real serve API alike; periods in a zone (23- and 25-hour days); the
[reports] config; what each format makes of hostile text; the command's behaviour."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner, Result

from conflictlens.analysis.reports import (
    FORMATS,
    build_report,
    day_period,
    local_queries,
    parse_period,
    parse_reports,
)
from conflictlens.analysis.reports.render_csv import render_csv
from conflictlens.analysis.reports.render_html import csp_hash, render_html, script_json
from conflictlens.analysis.reports.render_md import md, render_md
from conflictlens.cli import cli
from conflictlens.cli_report import report as report_command
from conflictlens.cli_report import serve_queries
from conflictlens.sample_logs.generator import ground_truth, traffic, write_log
from conflictlens.store import connect
from tests.helpers import conflicts_by_cluster

STYLE = "nginx-extended"
LINES, SEED, HOURS = 60_000, 21, 48.0
END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)


def run_report(*args: Any) -> Result:
    """``conflictlens report`` in-process (stdout and stderr apart)."""
    return CliRunner().invoke(report_command, [str(a) for a in args])


def report_json(*args: Any) -> dict[str, Any]:
    result = run_report(*args, "--format", "json")
    assert result.exit_code == 0, (result.output, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def ingest(db: Path, *logs: Path) -> None:
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), *map(str, logs)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """48 hours of traffic ending 2026-11-20T00:00Z, imported; and the generated rows."""
    folder = tmp_path_factory.mktemp("two-days")
    log = folder / "access.log"
    write_log(log, LINES, style=STYLE, seed=SEED, hours=HOURS, end=END)
    db = folder / "t.duckdb"
    ingest(db, log)
    return db, traffic(LINES, seed=SEED, end=END, hours=HOURS)


def day_truth(frame: pl.DataFrame, start: dt.datetime) -> tuple[dict[str, Any], int]:
    """The ground truth of one UTC day of the generated rows, and its request count."""
    day = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < start + dt.timedelta(days=1)))
    return ground_truth(day, STYLE), day.height


# --- the numbers -----------------------------------------------------------------------------


def test_json_numbers_equal_the_ground_truth_of_the_day(
    two_days: tuple[Path, pl.DataFrame],
) -> None:
    db, frame = two_days
    truth, requests = day_truth(frame, DAY)
    report = report_json("--db", db, "--period", "2026-11-19", "--tz", "UTC", "--top", 1000)
    assert report["period"]["from"] == "2026-11-19T00:00:00+00:00"
    assert report["period"]["to"] == "2026-11-20T00:00:00+00:00"
    assert report["conflicts"] == truth["conflicts"] > 0
    assert report["requests"] == requests
    assert report["ratio"] == truth["conflicts"] / requests
    clusters = report["top_clusters"]
    assert conflicts_by_cluster(clusters) == conflicts_by_cluster(truth["conflicts_by_cluster"])
    kinds = {(c["method"], c["route"], c["status"], c["error_code"]): c["kind"] for c in clusters}
    assert kinds == {
        (c["method"], c["route"], c["status"], c["error_code"]): c["kind"]
        for c in truth["conflicts_by_cluster"]
    }
    routes = {(r["method"], r["route"]): r["requests"] for r in truth["requests_by_route"]}
    for cluster in clusters:
        assert cluster["requests"] == routes[(cluster["method"], cluster["route"])]
        assert cluster["ratio"] == cluster["conflicts"] / cluster["requests"]
    # The comparison period is the day before, counted just as exactly.
    before, before_requests = day_truth(frame, DAY - dt.timedelta(days=1))
    assert report["previous"]["conflicts"] == before["conflicts"]
    assert report["previous"]["requests"] == before_requests
    assert report["changes"]["previous"]["conflicts"] == pytest.approx(
        (truth["conflicts"] - before["conflicts"]) / before["conflicts"]
    )
    assert (
        report["week_before"]["requests"] == 0 and report["changes"]["week_before"]["ratio"] is None
    )
    # The trend covers the day in 15-minute buckets and adds up to the totals.
    points = report["trend"]["points"]
    assert len(points) == 96 and report["trend"]["bucket_seconds"] == 900
    assert sum(p["conflicts"] for p in points) == truth["conflicts"]
    assert sum(p["requests"] for p in points) == requests
    required = {"period", "conflicts", "requests", "ratio", "top_clusters", "new_clusters"}
    assert required | {"hot_resources", "storms", "incidents", "alerts"} <= set(report)
    assert set(clusters[0]) >= {"method", "route", "status", "error_code", "kind", "conflicts"}
    assert report["ingest"] == {
        "rejects": [],
        "silent_sources": [],
        "gaps": [],
        "gap_minutes": 5,
        "silent_minutes": 60,
        "rejected_lines": 0,
    }


def test_every_format_tells_the_same_totals(two_days: tuple[Path, pl.DataFrame]) -> None:
    db, frame = two_days
    truth, requests = day_truth(frame, DAY)
    args = ("--db", db, "--period", "2026-11-19", "--tz", "UTC")
    rows = list(csv.DictReader(io.StringIO(run_report(*args, "--format", "csv").stdout)))
    total = next(r for r in rows if r["section"] == "total")
    assert (int(total["conflicts"]), int(total["requests"])) == (truth["conflicts"], requests)
    assert sum(int(r["conflicts"]) for r in rows if r["section"] == "cluster") <= truth["conflicts"]
    markdown = run_report(*args, "--format", "md").stdout
    assert f"| conflicts | {truth['conflicts']:,} |" in markdown
    page = run_report(*args, "--format", "html").stdout
    assert f">{truth['conflicts']:,}</div>" in page


def test_a_day_in_a_zone_is_that_zones_day(two_days: tuple[Path, pl.DataFrame]) -> None:
    db, frame = two_days
    report = report_json("--db", db, "--period", "2026-11-19", "--tz", "Europe/Berlin")
    start = dt.datetime(2026, 11, 18, 23, tzinfo=dt.UTC)  # midnight in Berlin (CET)
    inside = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < start + dt.timedelta(days=1)))
    assert report["period"]["local_from"] == "2026-11-19T00:00:00+01:00"
    assert report["requests"] == inside.height
    assert report["trend"]["points"][0]["bucket"] == "2026-11-18T23:00:00+00:00"


def test_the_report_through_serves_api_equals_the_one_from_the_file(
    two_days: tuple[Path, pl.DataFrame], tmp_path: Path
) -> None:
    """A real HTTP server (serve's app under uvicorn on loopback) answering as Arrow."""
    db, _ = two_days
    period = day_period(dt.date(2026, 11, 19), "Europe/Berlin")
    when = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    with closing(connect(db, read_only=True)) as con:
        direct = build_report(local_queries(con), period, generated=when)
        with api_server(con, db) as url:
            through = build_report(serve_queries(url, None), period, generated=when)
    assert through == direct


@pytest.fixture
def served(two_days: tuple[Path, pl.DataFrame], tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The store behind an API server found through its discovery file, as serve is."""
    from conflictlens.client import write_discovery

    db = tmp_path / "t.duckdb"
    db.write_bytes(two_days[0].read_bytes())
    with closing(connect(db, read_only=True)) as con, api_server(con, db) as url:
        write_discovery(db, url)
        yield db, url


def test_the_command_reads_through_serve_when_it_runs(
    served: tuple[Path, str], two_days: tuple[Path, pl.DataFrame]
) -> None:
    db, _ = served
    truth, requests = day_truth(two_days[1], DAY)
    with connect(db, read_only=True) as con:  # another reader: the store stays readable
        assert con.execute("SELECT count(*) FROM sources").fetchall() == [(1,)]
    report = report_json("--db", db, "--period", "2026-11-19", "--tz", "UTC")
    assert (report["conflicts"], report["requests"]) == (truth["conflicts"], requests)


class api_server:
    """serve's API app for an open store, under uvicorn on a free loopback port."""

    def __init__(self, con: Any, db: Path) -> None:
        import uvicorn

        from conflictlens.api import create_app
        from tests.test_serve import free_port

        self.port = free_port()
        app = create_app(con.cursor, db_path=str(db))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- periods ---------------------------------------------------------------------------------


def test_days_follow_the_zones_clock() -> None:
    autumn = day_period(dt.date(2026, 10, 25), "Europe/Berlin")
    spring = day_period(dt.date(2026, 3, 29), "Europe/Berlin")
    assert autumn.span == dt.timedelta(hours=25) and spring.span == dt.timedelta(hours=23)
    assert autumn.since == dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC)
    assert autumn.previous().span == dt.timedelta(hours=24)
    # A week before a 25-hour day is that weekday's 24-hour day, midnight to midnight.
    week = day_period(dt.date(2026, 10, 31), "Europe/Berlin").week_before()
    assert (week.day, week.since, week.span) == (
        dt.date(2026, 10, 24),
        dt.datetime(2026, 10, 23, 22, tzinfo=dt.UTC),
        dt.timedelta(hours=24),
    )


def test_period_forms() -> None:
    now = dt.datetime(2026, 10, 25, 5, 30, 12, tzinfo=dt.UTC)  # 06:30 CET
    berlin = "Europe/Berlin"
    assert parse_period("yesterday", berlin, now).day == dt.date(2026, 10, 24)
    assert parse_period("yesterday", "America/Los_Angeles", now).day == dt.date(2026, 10, 23)
    last = parse_period("last-24h", berlin, now)
    assert (last.since, last.until) == (
        now.replace(second=0) - dt.timedelta(hours=24),
        now.replace(second=0),
    )
    assert parse_period("last-7d", "UTC", now).span == dt.timedelta(days=7)
    span = parse_period("2026-10-01..2026-11-01", berlin, now)
    assert span.since == dt.datetime(2026, 9, 30, 22, tzinfo=dt.UTC)
    assert span.until == dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC)
    with_offset = parse_period("2026-10-01T06:00Z..2026-10-01T18:00+02:00", berlin, now)
    assert with_offset.span == dt.timedelta(hours=10)
    for bad, said in (
        ("tomorrow", "use yesterday, last-24h"),
        ("2026-13-01", "is not a date"),
        ("2026-11-02..2026-11-01", "TO must be after FROM"),
        ("2026-11-01..soon", "not an ISO-8601"),
    ):
        with pytest.raises(ValueError, match=said):
            parse_period(bad, berlin, now)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_period("yesterday", "Mars/Olympus", now)


# --- config ----------------------------------------------------------------------------------


def test_reports_config_defaults_and_values(tmp_path: Path) -> None:
    where = str(tmp_path / "conflictlens.toml")
    assert parse_reports({}, where).nightly is None
    parsed = parse_reports(
        {
            "directory": "out/reports",
            "retention_days": 30,
            "base_url": "https://intra.example/cl",
            "nightly": {
                "timezone": "Europe/Berlin",
                "formats": ["html", "csv"],
                "channels": ["ops"],
            },
        },
        where,
        channels={"ops"},
    )
    assert parsed.directory == tmp_path / "out" / "reports"
    assert parsed.base_url == "https://intra.example/cl/"
    assert parsed.nightly is not None
    assert (parsed.nightly.schedule, parsed.nightly.period) == ("0 6 * * *", "yesterday")
    assert parsed.nightly.formats == ("html", "csv") and parsed.nightly.channels == ("ops",)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"retention": 3}, "reports.retention: unknown key"),
        ({"retention_days": 0}, "reports.retention_days: expected a whole number of at least 1"),
        ({"retention_days": True}, "reports.retention_days: expected a whole number"),
        ({"directory": ""}, "reports.directory: expected a folder path"),
        ({"base_url": "ftp://x"}, 'reports.base_url: "ftp://x" is not an http'),
        (
            {"nightly": {"schedule": "0 25 * * *"}},
            'reports.nightly.schedule: "0 25 * * *" is not a cron',
        ),
        ({"nightly": {"schedule": 6}}, "reports.nightly.schedule: expected a cron expression"),
        ({"nightly": {"timezone": "Europe/Berln"}}, "reports.nightly.timezone: unknown time zone"),
        (
            {"nightly": {"period": "2026-11-19"}},
            'reports.nightly.period: "2026-11-19" is not one of',
        ),
        (
            {"nightly": {"formats": ["html", "pdf"]}},
            'reports.nightly.formats[1]: "pdf" is not one of',
        ),
        (
            {"nightly": {"channels": ["ops", "pager"]}},
            'reports.nightly.channels[1]: no channel "pager"',
        ),
        ({"nightly": {"top": 0}}, "reports.nightly.top: expected a whole number of at least 1"),
        ({"nightly": {"cron": "0 6 * * *"}}, "reports.nightly.cron: unknown key"),
        ({"nightly": "daily"}, "reports.nightly: expected a table"),
    ],
)
def test_a_bad_reports_value_is_refused_with_its_exact_key(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_reports(table, "conflictlens.toml", channels={"ops"})
    assert str(caught.value).startswith("conflictlens.toml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- formats and hostile text ----------------------------------------------------------------

HOSTILE = '<script>alert(1)</script> | [x](javascript:alert(1)) *a* `b` "q" &amp; =cmd|1'


def hostile_report() -> dict[str, Any]:
    """A report whose every string came from a hostile log."""
    period = day_period(dt.date(2026, 11, 19), "UTC")
    cluster = {
        "service": HOSTILE,
        "method": "PUT",
        "route": '=HYPERLINK("http://x")/' + HOSTILE,
        "status": 409,
        "error_code": "+" + HOSTILE,
        "kind": "unknown",
        "conflicts": 3,
        "requests": 9,
        "ratio": 1 / 3,
        "share": 1.0,
    }
    return {
        "version": 1,
        "generated": "2026-11-20T06:00:00+00:00",
        "period": period.to_json(),
        "conflicts": 3,
        "requests": 9,
        "ratio": 1 / 3,
        "previous": {"from": "2026-11-18T00:00:00+00:00", "to": "2026-11-19T00:00:00+00:00", "conflicts": 0, "requests": 0, "ratio": None},
        "week_before": {"from": "2026-11-12T00:00:00+00:00", "to": "2026-11-13T00:00:00+00:00", "conflicts": 0, "requests": 0, "ratio": None},
        "changes": {k: {"conflicts": None, "requests": None, "ratio": None} for k in ("previous", "week_before")},
        "trend": {"bucket_seconds": 900, "points": [], "week_before": []},
        "top_clusters": [cluster],
        "new_clusters": [cluster],
        "growing_clusters": [],
        "hot_resources": [],
        "storms": [{"client": HOSTILE, "method": "PUT", "route": HOSTILE, "resource": "1", "count": 5, "start": None, "end": None, "median_interval_ms": 1.0, "error_code": None, "user_agent": HOSTILE}],
        "incidents": [],
        "alerts": [],
        "ingest": {"rejects": [{"path": HOSTILE, "reason": HOSTILE, "lines": 1, "last_seen": None}], "silent_sources": [], "gaps": [], "gap_minutes": 5, "silent_minutes": 60, "rejected_lines": 1},
    }  # fmt: skip


def test_markdown_keeps_hostile_text_inert() -> None:
    text = render_md(hostile_report())
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "[x](javascript" not in text and "\\[x\\](javascript" in text
    table_rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    # Every cell boundary is the renderer's: a | from the log is escaped.
    cells = 10  # "#" and the nine columns of the top clusters
    assert table_rows and all(len(re.findall(r"(?<!\\)\|", r)) == cells + 1 for r in table_rows)
    assert md("a|b*c_d`e") == "a\\|b\\*c\\_d\\`e"


def test_csv_cells_never_become_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(hostile_report()))))
    cluster = next(r for r in rows if r["section"] == "cluster")
    assert cluster["route"].startswith("'=HYPERLINK")
    assert cluster["error_code"].startswith("'+")
    assert cluster["service"] == HOSTILE  # text that is no formula is kept as it is


def test_html_escapes_and_pins_its_scripts() -> None:
    page = render_html(hostile_report())
    assert "<script>alert" not in page
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 3  # plotly.js, the figures, the print hook
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    script_src = html.unescape(policy.group(1)).split("script-src")[1].split(";")[0]
    for script in scripts:
        assert csp_hash(script) in script_src
    assert "'unsafe-inline'" not in script_src
    # Nothing is fetched: no external script, style, font or image.
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\s(src|href)=""", page)
    assert "@import" not in page and "url(http" not in page
    figures = scripts[1]
    assert (
        "<" not in figures
        and "&lt;script&gt;"
        in json.loads(
            re.search(r"var figures = (\{.*?\});\n", figures, flags=re.S).group(1)  # type: ignore[union-attr]
        )["chart-clusters"]["data"][0]["text"][0]
    )
    body = render_html(hostile_report(), charts=False, link="javascript:alert(1)")
    assert "<script" not in body and "href=" not in body  # no script, and no javascript: link


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><!-- \u2028 & >"})
    assert not set("<>&\u2028") & set(text)
    assert json.loads(text) == {"a": "</script><!-- \u2028 & >"}


# --- the command -----------------------------------------------------------------------------


def test_the_format_follows_the_file_name(
    two_days: tuple[Path, pl.DataFrame], tmp_path: Path
) -> None:
    db, _ = two_days
    for fmt in FORMATS:
        out = tmp_path / f"r.{fmt}"
        result = run_report("--db", db, "--period", "2026-11-19", "--out", out)
        assert result.exit_code == 0, result.output
        assert f"wrote {out} ({fmt}," in result.stdout
        assert out.read_bytes().startswith(
            {"html": b"<!DOCTYPE html>", "md": b"# Conflicts", "json": b"{", "csv": b"section,"}[
                fmt
            ]
        )
    assert not list(tmp_path.glob(".tmp-*"))  # written through a temporary file and a rename


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--period", "fortnight"), "invalid period 'fortnight': use yesterday, last-24h"),
        (("--tz", "Europe/Nowhere"), "unknown time zone 'Europe/Nowhere'"),
        (("--out", "missing/r.html"), "--out: folder missing does not exist"),
        (("--now", "later"), "--now: invalid time 'later'"),
        (("--due",), "no [reports.nightly] table"),
        (("--due", "--format", "md"), "--due and --list take the period"),
    ],
)
def test_user_errors_are_one_line(
    two_days: tuple[Path, pl.DataFrame], args: tuple[str, ...], message: str
) -> None:
    result = run_report("--db", two_days[0], *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = run_report("--db", tmp_path / "none.duckdb")
    assert result.exit_code == 1 and "no database at" in result.stderr


def test_help_has_an_example_and_every_option_is_explained() -> None:
    result = run_report("--help")
    assert "Example:" in result.stdout
    for option in report_command.params:
        assert getattr(option, "help", None), option.name


def test_yesterday_counts_from_now(two_days: tuple[Path, pl.DataFrame]) -> None:
    report = report_json(
        "--db", two_days[0], "--now", "2026-11-20T04:00:00Z", "--tz", "America/New_York"
    )
    assert report["period"]["day"] == "2026-11-18"  # 23:00 on the 19th in New York
    assert report["period"]["from"] == "2026-11-18T05:00:00+00:00"


# --- alerts ----------------------------------------------------------------------------------


def test_alerts_fired_and_resolved_come_from_the_alert_tables(tmp_path: Path) -> None:
    from conflictlens.analysis import Filters, TimeRange
    from conflictlens.analysis.reports.alerts_view import alerts_in_range

    with closing(connect(tmp_path / "t.duckdb")) as con:  # a new store has the alert tables
        at = dt.datetime(2026, 11, 19, 8)
        payload = json.dumps(
            {"rule": "carts", "status": "firing", "severity": "page", "summary": "PUT carts at 9 %",
             "labels": {"route": "/api/v2/carts/{id}", "method": "PUT"}}
        )  # fmt: skip
        for channel, delivered in (("ops", at), ("chat", None)):
            con.execute(
                "INSERT INTO alert_outbox (created_at, channel, rule, fingerprint, status, payload, "
                "next_attempt_at, delivered_at) VALUES (?, ?, 'carts', 'f1', 'firing', ?, ?, ?)",
                [at, channel, payload, at, delivered],
            )
        con.execute(
            "INSERT INTO alert_state (rule, fingerprint, labels, state, firing_since, resolved_at, "
            "updated_at) VALUES ('carts', 'f1', '{\"route\": \"/api/v2/carts/{id}\"}', 'resolved', ?, ?, ?)",
            [at, at + dt.timedelta(hours=2), at + dt.timedelta(hours=2)],
        )
        con.execute(
            "INSERT INTO alert_state (rule, fingerprint, labels, state, firing_since, updated_at) "
            "VALUES ('old', 'f2', '{}', 'firing', '2026-11-01', '2026-11-01')"
        )
        day = TimeRange(
            dt.datetime(2026, 11, 19, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
        )
        rows = alerts_in_range(con, day, Filters()).to_dicts()
        assert [(r["event"], r["rule"], r["at"]) for r in rows] == [
            ("fired", "carts", at),  # once, though notified on two channels
            ("resolved", "carts", at + dt.timedelta(hours=2)),  # from the state table
        ]
        assert (rows[0]["channels"], rows[0]["delivered"], rows[0]["severity"]) == (
            ["chat", "ops"],
            ["ops"],
            "page",
        )
        # Filters match the alert's group labels; a label the group lacks matches anything.
        assert alerts_in_range(con, day, Filters(route="/api/v1/users")).height == 0
        assert alerts_in_range(con, day, Filters(method="PUT")).height == 2
        assert alerts_in_range(con, day, Filters(method="GET")).to_dicts()[0]["event"] == "resolved"
