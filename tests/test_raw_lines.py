"""Each conflict event keeps its log line (raw_line): the very bytes at its offset in the file,
for every format the generator writes, through batch import and the follower (across a
restart, once); query strings cut unless keep_query, clients anonymized when asked; no line
for requests that are no conflict."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from conflictlens.analysis import run_query
from conflictlens.ingest.options import IngestOptions
from conflictlens.ingest.tail import Follower
from conflictlens.sample_logs.generator import write_log
from conflictlens.store import connect
from tests.conftest import RunCli
from tests.helpers import clf_line, query, write_lines
from tests.test_tail import append, following, seq_line, seq_lines, wait_for

STYLES = [
    "nginx-extended",
    "nginx-combined",
    "apache-common",
    "nginx-json",
    "traefik-clf",
    "traefik-json",
    "envoy-text",
    "envoy-json",
    "kong-json",
    "caddy-json",
    "haproxy-httplog",
    "aws-alb",
    "aws-elb-classic",
    "apipark-json",
    "istio-text",
    "envoy-gateway-json",
]


def line_at(data: bytes, offset: int) -> str:
    end = data.find(b"\n", offset)
    return data[offset : end if end >= 0 else len(data)].rstrip(b"\r").decode()


def assert_lines_are_the_files(db: Path, log: Path) -> int:
    """Every event's raw_line is the line at its offset; the number of events."""
    data = log.read_bytes()
    rows = query(db, 'SELECT "offset", raw_line FROM conflict_events')
    assert rows
    for offset, raw in rows:
        assert raw == line_at(data, offset), offset
    return len(rows)


@pytest.mark.parametrize("style", STYLES)
def test_every_format_keeps_each_conflicts_own_line(
    style: str, tmp_path: Path, run_cli: RunCli
) -> None:
    log = tmp_path / "access.log"
    truth = write_log(log, 3000, style=style, seed=5)
    db = tmp_path / "t.duckdb"
    result = run_cli("ingest", "--db", db, log)
    assert result.exit_code == 0, result.output
    # the generator writes no query on a conflicting request: each line is stored as it is
    assert assert_lines_are_the_files(db, log) == truth["conflicts"]


QUERIED = [
    clf_line("/api/v1/users/1?token=s3cret&x=1", status=409),
    clf_line("/api/v1/users/2?token=s3cret", status=200, method="GET"),
    clf_line("/api/v1/users/3", status=412, client="2001:db8:1:2::5"),
]


def _ingest(run_cli: RunCli, tmp_path: Path, config: str, *args: str) -> Path:
    log = tmp_path / "q.log"
    write_lines(log, QUERIED)
    toml = tmp_path / "c.toml"
    toml.write_text(config)
    db = tmp_path / "q.duckdb"
    result = run_cli("ingest", "--db", db, "--config", toml, *args, log)
    assert result.exit_code == 0, result.output
    return db


def test_query_strings_are_cut_from_the_line_unless_kept(run_cli: RunCli, tmp_path: Path) -> None:
    db = _ingest(run_cli, tmp_path, "")
    rows = query(db, 'SELECT raw_line FROM conflict_events ORDER BY "offset"')
    assert [r[0] for r in rows] == [
        QUERIED[0].decode().replace("?token=s3cret&x=1", ""),
        QUERIED[2].decode(),
    ]
    (tmp_path / "kept").mkdir()
    kept = _ingest(run_cli, tmp_path / "kept", "[ingest]\nkeep_query = true\n")
    first = query(kept, 'SELECT raw_line FROM conflict_events ORDER BY "offset" LIMIT 1')
    assert first == [(QUERIED[0].decode(),)]


def test_anonymized_clients_are_anonymized_in_the_line_too(run_cli: RunCli, tmp_path: Path) -> None:
    db = _ingest(run_cli, tmp_path, "[ingest]\nanonymize_clients = true\n")
    rows = query(db, 'SELECT client, raw_line FROM conflict_events ORDER BY "offset"')
    assert rows[0][0] == "10.0.0.0" and rows[0][1].startswith("10.0.0.0 - - [")
    assert rows[1][0] == "2001:db8:1::" and rows[1][1].startswith("2001:db8:1:: - - [")
    assert "10.0.0.1" not in rows[0][1] and "2001:db8:1:2::5" not in rows[1][1]


def test_with_keep_all_only_conflicts_carry_their_line(run_cli: RunCli, tmp_path: Path) -> None:
    db = _ingest(run_cli, tmp_path, "", "--keep-all")
    rows = query(db, 'SELECT status, raw_line IS NOT NULL FROM conflict_events ORDER BY "offset"')
    assert rows == [(409, True), (200, False), (412, True)]


def test_the_events_query_returns_the_line(run_cli: RunCli, tmp_path: Path) -> None:
    db = _ingest(run_cli, tmp_path, "")
    with closing(connect(db, read_only=True)) as con:
        frame = run_query(con, "events", sort="status", descending=False)
    assert frame["raw_line"][1] == QUERIED[2].decode()


def test_the_follower_stores_each_line_once_across_a_restart(tmp_path: Path, db_path: Path) -> None:
    log = tmp_path / "access.log"
    whole = seq_lines("a", range(3))
    partial = seq_line("a", 3)
    log.write_bytes(whole + partial[:25])
    with following(db_path, log, options=IngestOptions()) as follower:
        assert follower.wait_caught_up(30)
    append(log, partial[25:])  # completed while stopped: read from its start on restart
    with following(db_path, log) as follower:
        append(log, seq_line("a", 4))
        wait_for(lambda: follower_events(follower) == 5, 30, "every line")
    assert assert_lines_are_the_files(db_path, log) == 5
    offsets = query(db_path, 'SELECT count(DISTINCT "offset") FROM conflict_events')
    assert offsets == [(5,)]


def follower_events(follower: Follower) -> int:
    with follower.cursor() as con:
        return int(con.execute("SELECT count(*) FROM conflict_events").fetchall()[0][0])
