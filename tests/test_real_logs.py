"""Real lines other projects wrote (tests/fixtures/real, sources in its SOURCES.md), imported
through the CLI, with what each line must become read off the line by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunCli
from tests.helpers import query

REAL = Path(__file__).parent / "fixtures" / "real"


def test_classic_elb_tcp_and_ssl_listener_entries_are_rejects_with_a_reason(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """A TCP or SSL listener logs connections ("- - - ", no status): no HTTP request, so a
    reject that says so, never a stored request with status 0 (even with keep_all)."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    log = REAL / "aws_elb_classic_tcp.log"
    result = run_cli("ingest", "--format", "auto", log, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["files"][0]["format"] == "aws-elb-classic"
    assert (summary["lines"], summary["parsed"], summary["rejected"]) == (4, 0, 4)
    assert summary["reject_reasons"] == {"TCP/SSL listener entry, no HTTP request": 4}
    db = tmp_path / "conflictlens.duckdb"
    assert query(db, "SELECT count(*) FROM conflict_events") == [(0,)]
    starts = [0]
    for line in log.read_bytes().splitlines(keepends=True)[:-1]:
        starts.append(starts[-1] + len(line))
    assert query(db, 'SELECT "offset" FROM rejects ORDER BY 1') == [(s,) for s in starts]


def test_istio_default_lines_take_the_client_from_the_downstream_address(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Istio's default format: X-Forwarded-For is "-", %DOWNSTREAM_REMOTE_ADDRESS% (the 4th
    field after the upstream host) names the client; every field read off the lines."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    log = REAL / "istio_default.log"
    summary = json.loads(run_cli("ingest", log, "--json").output)
    assert summary["files"][0]["format"] == "envoy-text"
    assert (summary["parsed"], summary["rejected"], summary["conflicts"]) == (2, 0, 0)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%g'), method, path, status, bytes, latency_ms,"
        ' client, user_agent, upstream FROM conflict_events ORDER BY "offset"',
    )
    common = ("2020-11-25T21:26:18.409", "GET", "/status/418", 418, 135)
    assert rows == [
        (*common, 4.0, "10.44.1.23", "curl/7.73.0-DEV", "10.44.1.27:80"),
        (*common, 3.0, "10.44.1.23", "curl/7.73.0-DEV", "127.0.0.1:80"),
    ]
