"""Hostile input and hostile neighbours: one test per finding of the security review (the
finding's number in each docstring), against real processes on loopback and real files.
Nothing here may take serve down, turn it against its user, or lose a good line."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import polars as pl
import pytest

from conflictlens.sample_logs.generator import write_log
from tests.conftest import RunCli
from tests.helpers import clf_line, cli_json, write_lines
from tests.test_serve import CLI, Serve, run

pytestmark = pytest.mark.slow

ESC = "\x1b"
GIB = 1024**3


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    log = folder / "access.log"
    write_log(log, 20_000, style="nginx-extended", seed=13, hours=48)
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    return db


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[Serve]:
    running = Serve(store)
    try:
        yield running
    finally:
        running.stop()


def request(
    server: Serve,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request with exactly these headers (Host included when given)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}))
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and "Content-Length" not in (headers or {}):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def peak_rss(pid: int) -> int:
    """The process's highest resident set size so far, in bytes (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


# --- 1. budgets on every question --------------------------------------------------------


def test_one_get_cannot_run_serve_out_of_memory(server: Serve) -> None:
    """1. A year-1 range in one-minute buckets is refused with the limit named; serve's
    memory stays far from a gigabyte and it answers afterwards."""
    status, body = request(
        server, "GET", "/api/queries/report_trend?since=0001-01-01&width_minutes=1"
    )
    assert status == 400 and "at most" in body["detail"], body
    for path in (
        "/api/queries/anomalies?since=0001-01-01&bucket=minute",
        "/api/queries/timeline?since=0001-01-01&bucket=minute",
        "/api/queries/incidents?since=0001-01-01&until=9999-12-31",
        "/api/queries/resource_timeline?since=0001-01-01&bucket=minute",
    ):
        status, body = request(server, "GET", path)
        assert status in (200, 400), (path, status, body)
    assert peak_rss(server.proc.pid) < GIB
    assert request(server, "GET", "/api/health")[0] == 200


# --- 2, 3. values validated at the boundary ------------------------------------------------

GOOD = clf_line("/api/v1/users/1", ts="20/Nov/2026:10:00:00 +0000")
BROKEN_TIMES = [
    clf_line("/api/v1/users/2", ts="01/Jan/0000:10:00:00 +0000"),  # year 0
    clf_line("/api/v1/users/3", ts="20/Nov/1990:10:00:00 +0000"),  # before the window
    b'{"time_iso8601": "-0001-01-01T00:00:00+00:00", "status": 409}',  # not even CLF
    clf_line("/api/v1/users/4", ts="01/Jan/10000:10:00:00 +0000"),  # year 10000
]


def test_a_year_zero_line_is_a_reject_not_a_failed_import(tmp_path: Path, run_cli: RunCli) -> None:
    """2. The import succeeds, the good lines around the broken ones are stored."""
    log = tmp_path / "a.log"
    write_lines(log, [GOOD, *BROKEN_TIMES, GOOD.replace(b"10:00:00", b"10:00:01")])
    db = tmp_path / "t.duckdb"
    result = run_cli("ingest", "--db", db, "--format", "nginx-combined", log, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["parsed"], summary["rejected"]) == (2, 4)
    assert "timestamp outside 1991-01-01..2100-01-01" in summary["reject_reasons"]


def test_serve_stores_the_good_lines_after_a_year_zero_line(tmp_path: Path) -> None:
    """2. Followed by serve, the file moves on past the broken line (it used to stick at
    offset 0, logging "commit failed" every second)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "access.log"
    write_lines(log, [BROKEN_TIMES[0], GOOD, GOOD.replace(b"10:00:00", b"10:00:05")])
    config = tmp_path / "c.toml"
    config.write_text(f'[[sources]]\npath = "{logs}/*.log"\nformat = "nginx-combined"\n')
    server = Serve(tmp_path / "t.duckdb", "--config", str(config))
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and stored < 2:
            status, body = request(server, "GET", "/api/queries/totals")
            stored = body[0]["conflicts"] if status == 200 else 0
            time.sleep(0.2)
        assert stored == 2
        sources = request(server, "GET", "/api/status")[1]["sources"]
        assert [(s["offset"], s["rejects"]) for s in sources] == [(log.stat().st_size, 1)]
    finally:
        server.stop()


def test_out_of_range_values_never_reach_the_analysis(tmp_path: Path, run_cli: RunCli) -> None:
    """3. A year-10000 stamp and inf/nan/1e309 latencies are rejects; every analysis and the
    week's report answer for the good lines."""
    extended = [
        GOOD + f' {latency} "VERSION_MISMATCH"'.encode()
        for latency in ("0.010", "inf", "nan", "1e309", "-inf")
    ]
    log = tmp_path / "a.log"
    write_lines(log, [*extended, BROKEN_TIMES[3] + b' 0.010 "VERSION_MISMATCH"'])
    db = tmp_path / "t.duckdb"
    result = run_cli("ingest", "--db", db, "--format", "nginx-extended", log, "--json")
    assert json.loads(result.output)["reject_reasons"] == {
        "latency is not a finite number": 4,
        "invalid timestamp": 1,
    }
    for args in (
        ("clusters", "--over-time"),
        ("resources",),
        ("hotspots",),
        ("incidents",),
        ("storms",),
        ("report", "--period", "last-7d", "--now", "2026-11-21T00:00:00Z", "--format", "json"),
    ):
        outcome = run_cli(*args, "--db", db)
        assert outcome.exit_code == 0, (args, outcome.output)
    assert cli_json(run_cli("resources", "--db", db, "--json"))[0]["conflicts"] == 1


# --- 4, 5. output hygiene ------------------------------------------------------------------


def test_terminal_escapes_from_a_log_are_shown_not_sent(tmp_path: Path, run_cli: RunCli) -> None:
    """4. A path with percent-encoded ESC and OSC sequences that got a 409."""
    path = "/api/v1/users/7%1b%5b2J%1b%5d0;owned%07"
    lines = [
        clf_line(path, ts=f"20/Nov/2026:10:00:{second:02d} +0000", user_agent="x\\x1b[31m")
        for second in range(12)
    ]
    log = tmp_path / "a.log"
    write_lines(log, lines)
    db = tmp_path / "t.duckdb"
    assert run_cli("ingest", "--db", db, "--format", "nginx-combined", log).exit_code == 0
    outputs = [
        run_cli(*args, "--db", db).output
        for args in (
            ("clusters",),
            ("clusters", "--over-time"),
            ("resources",),
            ("storms",),
            ("hotspots",),
            ("report", "--period", "2026-11-20", "--format", "md"),
        )
    ]
    assert all(ESC not in out and "\x07" not in out for out in outputs)
    assert any("\\x1b[2J" in out for out in outputs[:2])  # shown, escaped
    assert "\\\\x1b" in outputs[-1] or "\\x1b" in outputs[-1]


def test_explore_csv_has_no_live_formulas() -> None:
    """5. Explore's CSV download, as the page builds it."""
    from conflictlens.dashboard.data import spreadsheet_csv

    frame = pl.DataFrame(
        {
            "route": ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "/ok"],
            "user_agent": ["@SUM(1+1)", "-2+3", "\tx"],
            "conflicts": [1, 2, 3],
        }
    )
    rows = spreadsheet_csv(frame).splitlines()[1:]
    cells = [cell for row in rows for cell in row.split(",")[:2]]
    dangerous = [c for c in cells if c.strip('"').startswith(("=", "+", "-", "@", "\t"))]
    assert dangerous == [] and '"/ok"' not in cells and "/ok" in cells


# --- 6. DNS rebinding and CSRF ------------------------------------------------------------


def test_a_rebinding_host_is_refused(server: Serve) -> None:
    """6. A page served from attacker.example that rebinds its name to 127.0.0.1."""
    status, _ = request(server, "GET", "/api/queries/totals", headers={"Host": "attacker.example"})
    assert status == 400
    ok, _ = request(server, "GET", "/api/queries/totals", headers={"Host": "localhost:1"})
    assert ok == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain"}, 415),  # a simple cross-origin request
        ({"Content-Type": "application/json", "Origin": "http://attacker.example"}, 403),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403),
        ({}, 415),  # no body and no type: a form or an <img> cannot change state
    ],
)
def test_a_cross_site_write_is_refused(server: Serve, headers: dict[str, str], status: int) -> None:
    """6. POST /api/alerts/test/NAME and the silence expiry, the way a web page would."""
    for path in ("/api/alerts/test/anything", "/api/silences/1/expire"):
        body = b"{}" if headers else None
        got, detail = request(server, "POST", path, body, headers)
        assert got == status, (path, detail)
    sent = request(server, "GET", "/api/queries/alert_notifications")[1]
    assert sent == []


# --- 7. a symlinked config ------------------------------------------------------------------


def test_a_symlinked_config_is_edited_through_its_link(tmp_path: Path) -> None:
    """7. The dashboard's save writes the real file; the link stays a link."""
    from conflictlens.config_edit import save_rule

    real = tmp_path / "etc" / "conflictlens.toml"
    real.parent.mkdir()
    real.write_text('# kept\n[alerts]\nevaluation_interval = "1m"\n')
    link = tmp_path / "conflictlens.toml"
    link.symlink_to(real)
    rule = {"name": "spike", "metric": "ratio", "window": "15m", "anomaly": 5.0}
    save_rule(link, rule)
    assert link.is_symlink() and link.resolve() == real
    assert 'name = "spike"' in real.read_text() and "# kept" in real.read_text()


# --- 8. the discovery file ------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """A stranger on a local port that looks like serve and records what it is sent."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization"))
        body = b"[]" if self.path.startswith("/api/queries") else b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stranger() -> Iterator[int]:
    httpd = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("trap", ["writable by others", "a link", "not a serve"])
def test_an_untrusted_discovery_file_is_ignored(
    store: Path, server: Serve, tmp_path: Path, stranger: int, trap: str
) -> None:
    """8. The CLI reads the file itself and sends its token nowhere. The file names a live
    conflictlens serve (another one) unless the trap is the pid itself."""
    db = tmp_path / "t.duckdb"
    db.write_bytes(store.read_bytes())
    discovery = db.with_name(db.name + ".serve")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        pid = sleeper.pid if trap == "not a serve" else server.proc.pid
        info = {"pid": pid, "url": f"http://127.0.0.1:{stranger}"}
        if trap == "a link":
            real = tmp_path / "elsewhere.json"
            real.write_text(json.dumps(info))
            discovery.symlink_to(real)
        else:
            discovery.write_text(json.dumps(info))
            if trap == "writable by others":
                discovery.chmod(0o666)
        env = {**os.environ, "CONFLICTLENS_TOKEN": "t" * 20}
        result = subprocess.run(
            [*CLI, "clusters", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout), "the store's own clusters, not the stranger's []"
        assert Recorder.seen == []
    finally:
        sleeper.kill()
        sleeper.wait()


# --- 9, 10. sizes and numbers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def configured(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """serve with a config file, which the rule editor writes to."""
    config = tmp_path_factory.mktemp("configured") / "c.toml"
    config.write_text('[alerts]\nevaluation_interval = "1m"\n')
    db = config.with_name("t.duckdb")
    db.write_bytes(store.read_bytes())
    running = Serve(db, "--config", str(config))
    try:
        yield running
    finally:
        running.stop()


def test_rule_edits_have_size_limits(configured: Serve) -> None:
    """9. A 2 MB body, a 100k-character name, 2,000 labels and above = NaN are refused."""
    server = configured
    json_type = {"Content-Type": "application/json"}
    big = json.dumps({"rule": {"name": "x", "labels": {"a": "b" * 2_000_000}}}).encode()
    assert request(server, "PUT", "/api/alerts/rules/x", big, json_type)[0] == 413
    base = {"metric": "ratio", "window": "5m", "anomaly": 3.0}
    rules = [
        {**base, "name": "n" * 100_000},
        {**base, "name": "many", "labels": {f"l{i}": "v" for i in range(2000)}},
        {"name": "never", "metric": "ratio", "window": "5m", "above": float("nan")},
        {**base, "name": "forever", "window": "99999999999d"},
    ]
    for rule in rules:
        name = str(rule["name"])[:50]
        body = json.dumps({"rule": rule}).encode()  # NaN is written as NaN, as a client may
        status, detail = request(server, "PUT", f"/api/alerts/rules/{name}", body, json_type)
        assert status == 400, (name, status, detail)
        assert len(str(detail)) < 400  # the reason is one short line


@pytest.mark.parametrize(
    "query",
    [
        "events?limit=-1",
        "events?limit=1000000000000",
        "events?offset=-5",
        "clusters?limit=-3",
        "report_trend?width_minutes=0",
        "report_trend?width_minutes=-60",
        "storms?max_gap_s=nan",
        "storms?min_count=-1",
        "incidents?threshold=inf",
        "hotspots?since=99999999d",
        "timeline?until=99999999w",
        "resources?per_route=-1",
    ],
)
def test_bad_numbers_are_400_not_500(server: Serve, query: str) -> None:
    """10. Each of these used to end in a 500 (a traceback in serve's log)."""
    status, body = request(server, "GET", f"/api/queries/{query}")
    assert status == 400, body
    assert isinstance(body, dict) and body["detail"]


def test_an_absurd_report_period_is_one_line(store: Path, run_cli: RunCli) -> None:
    """10. A report of 0001-01-01..9999-12-31."""
    result = run_cli("report", "--db", store, "--period", "0001-01-01..9999-12-31")
    assert result.exit_code == 1 and "between 1991-01-15 and 2100-01-01" in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- 11. reject amplification --------------------------------------------------------------


def test_empty_lines_are_skipped_and_rejects_are_capped(tmp_path: Path, run_cli: RunCli) -> None:
    """11. A gz of a million newlines stores nothing; 25,000 lines of garbage store the first
    10,000 rejects with their samples and count all 25,000."""
    from conflictlens.store.writer import MAX_REJECTS_PER_SOURCE

    newlines = tmp_path / "newlines.log.gz"
    with gzip.open(newlines, "wb") as out:
        out.write(b"\n" * 1_000_000 + GOOD + b"\n")
    garbage = tmp_path / "garbage.log"
    write_lines(garbage, [b"garbage line %d" % i for i in range(25_000)] + [GOOD])
    db = tmp_path / "t.duckdb"
    for log in (newlines, garbage):
        result = run_cli("ingest", "--db", db, "--format", "nginx-combined", log, "--json")
        assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as con:
        counted = dict(con.sql("SELECT path, rejects FROM sources").fetchall())
        kept = dict(
            con.sql(
                "SELECT s.path, count(*) FROM rejects r JOIN sources s USING (source_id) "
                "GROUP BY ALL"
            ).fetchall()
        )
        conflicts = con.sql("SELECT count(*) FROM conflict_events").fetchall()
    assert counted == {str(newlines): 0, str(garbage): 25_000}
    assert kept == {str(garbage): MAX_REJECTS_PER_SOURCE} and MAX_REJECTS_PER_SOURCE == 10_000
    assert conflicts == [(2,)]


# --- 12. special files ----------------------------------------------------------------------


def test_the_cli_refuses_endless_devices_and_reads_a_fifo_once(tmp_path: Path) -> None:
    """12. /dev/zero used to spin forever; a FIFO was opened twice and hung."""
    refused = subprocess.run(
        [*CLI, "ingest", "--db", str(tmp_path / "t.duckdb"), "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "/dev/zero" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    lines = [GOOD, GOOD.replace(b"10:00:00", b"10:00:02")]
    writer = threading.Thread(target=lambda: write_lines(fifo, lines))
    writer.start()
    result = subprocess.run(
        [*CLI, "ingest", "--db", str(tmp_path / "t.duckdb"), str(fifo), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    writer.join(timeout=10)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conflicts"] == 2


# --- 13. the token ---------------------------------------------------------------------------


def test_the_token_comes_from_the_environment_without_a_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """13. CONFLICTLENS_TOKEN counts with no config file; a token of spaces does not."""
    from conflictlens.config import ConfigError, load_config

    monkeypatch.setenv("CONFLICTLENS_TOKEN", "a" * 24)
    assert load_config().serve.token == "a" * 24
    monkeypatch.setenv("CONFLICTLENS_TOKEN", " " * 16)
    with pytest.raises(ConfigError, match="without spaces"):
        load_config()


# --- 14. report files behind links ------------------------------------------------------------


def test_a_listed_report_name_that_is_a_link_is_not_served(tmp_path: Path) -> None:
    """14. An index entry whose file is a link to the config (and its token)."""
    from conflictlens.analysis.reports.archive import Archive

    secret = tmp_path / "conflictlens.toml"
    secret.write_text('[serve]\ntoken = "' + "s" * 20 + '"\n')
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "leak.md").symlink_to(secret)
    (reports / "fine.md").write_text("# report\n")
    files = [{"name": "leak.md", "format": "md"}, {"name": "fine.md", "format": "md"}]
    (reports / "index.json").write_text(json.dumps({"reports": [{"files": files}]}))
    archive = Archive(reports)
    assert archive.listed_file("leak.md") is None
    assert archive.listed_file("fine.md") == (reports / "fine.md", "md")


# --- minor ---------------------------------------------------------------------------------


def test_unwritable_out_and_deep_toml_are_one_line(
    store: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Minor: report --out where nothing can be written; a config nested 10,000 deep."""
    result = run_cli("report", "--db", store, "--period", "2026-11-19", "--out", "/proc/r.md")
    assert result.exit_code == 1 and "cannot write" in result.output, result.output
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 10_000 + "]" * 10_000 + "\n")
    result = run_cli("clusters", "--db", store, "--config", deep)
    assert result.exit_code == 1 and "nested too deeply" in result.output, result.output


def test_no_traceback_reaches_the_user(tmp_path: Path) -> None:
    """Every case above as a user meets it: one line on stderr, never a traceback."""
    cases = [
        ["ingest", "--db", str(tmp_path / "t.duckdb"), "/dev/zero"],
        ["report", "--db", str(tmp_path / "t.duckdb"), "--period", "0001-01-01..9999-12-31"],
        ["clusters", "--db", str(tmp_path / "t.duckdb"), "--since", "99999999d"],
    ]
    for args in cases:
        result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


class PickyWriter:
    """The real Writer, made to fail on any batch holding one marked line: a step no check
    foresaw that breaks on that line's data (as year 0 once broke the commit)."""

    MARK = "/api/v1/cursed/1"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        from conflictlens.store.writer import Writer

        self.writer = Writer(con)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)

    def commit(self, batch: Any) -> None:
        if batch.events.height and (batch.events["path"] == self.MARK).any():
            raise ValueError("year 0 is out of range")
        self.writer.commit(batch)


def test_a_line_that_breaks_a_later_step_is_a_reject_not_a_stuck_file(tmp_path: Path) -> None:
    """2. Whatever step a line breaks, it becomes a reject with the error as its reason and
    every good line around it is stored: the file never sticks."""
    from conflictlens.ingest import IngestOptions, import_source
    from conflictlens.store import connect

    good = [
        clf_line(f"/api/v1/users/{n}", ts=f"20/Nov/2026:10:{n // 60:02d}:{n % 60:02d} +0000")
        for n in range(3000)
    ]
    cursed = clf_line(PickyWriter.MARK, ts="20/Nov/2026:11:00:00 +0000")
    log = tmp_path / "a.log"
    write_lines(log, [*good[:1234], cursed, *good[1234:]])
    con = connect(tmp_path / "t.duckdb")
    try:
        options = IngestOptions(chunk_bytes=64 * 1024)
        summary = import_source(str(log), PickyWriter(con), options, format_name="nginx-combined")
        stored = con.sql("SELECT count(*) FROM conflict_events").fetchall()[0][0]
        rejects = con.sql("SELECT reason, sample FROM rejects").fetchall()
        offset = con.sql('SELECT "offset" FROM sources').fetchall()[0][0]
    finally:
        con.close()
    assert (summary.lines, summary.parsed, summary.rejected) == (3001, 3000, 1)
    assert stored == 3000 and offset == log.stat().st_size
    assert rejects == [("cannot be stored: year 0 is out of range", cursed)]
