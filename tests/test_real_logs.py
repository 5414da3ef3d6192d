"""Real lines other projects wrote (tests/fixtures/real, sources in its SOURCES.md), imported
through the CLI, with what each line must become read off the line by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli
from tests.helpers import query

REAL = Path(__file__).parent / "fixtures" / "real"


def import_kept(tmp_path: Path, run_cli: RunCli, *args: object) -> dict[str, Any]:
    """The files imported as a user imports them, every request stored (``keep_all``): the
    import's summary (the import must succeed)."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    result = run_cli("ingest", *args, "--json")
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.output)
    return summary


def test_classic_elb_tcp_and_ssl_listener_entries_are_rejects_with_a_reason(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """A TCP or SSL listener logs connections ("- - - ", no status): no HTTP request, so a
    reject that says so, never a stored request with status 0 (even with keep_all)."""
    # (a TCP listener's entries from a goaccess issue: see corpus/part-C/SOURCES.md)
    log = REAL / "corpus" / "part-C" / "aws-elb-classic" / "goaccess_issue952_tcp.log"
    summary = import_kept(tmp_path, run_cli, "--format", "auto", log)
    assert summary["files"][0]["format"] == "aws-elb-classic"
    assert (summary["lines"], summary["parsed"], summary["rejected"]) == (9, 0, 9)
    assert summary["reject_reasons"] == {"TCP/SSL listener entry, no HTTP request": 9}
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
    assert summary["files"][0]["format"] == "istio-text"
    assert summary["files"][0]["detection"] == {"matched": 2, "sampled": 2, "ties": []}
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


# Envoy Gateway's default JSON access log, key for key as its docs give the format
# (envoyproxy/gateway · site/content/en/latest/tasks/observability/proxy-accesslog.md ·
# 0ad35e8f8078a54c8abb15403d77b9a239a45a49, Apache-2.0); the values are ours: no captured
# line of it was found under a licence we can copy.
ENVOY_GATEWAY_DEFAULT = {
    "start_time": "2025-05-01T08:34:27.573Z",
    "method": "PUT",
    "x-envoy-origin-path": "/api/v1/users/42?force=1",
    "protocol": "HTTP/1.1",
    "response_code": "409",
    "response_flags": "-",
    "response_code_details": "via_upstream",
    "connection_termination_details": "-",
    "upstream_transport_failure_reason": "-",
    "bytes_received": "17",
    "bytes_sent": "63",
    "duration": "12",
    "x-envoy-upstream-service-time": "-",
    "x-forwarded-for": "203.0.113.9",
    "user-agent": "curl/8.5.0",
    "x-request-id": "7c2a1d4e-0b9f-4e55-9a51-0f4e6e2b1c11",
    ":authority": "api.example.com",
    "upstream_host": "10.244.0.19:8000",
    "upstream_cluster": "httproute/default/users/rule/0",
    "upstream_local_address": "10.244.0.30:48658",
    "downstream_local_address": "10.244.0.30:10080",
    "downstream_remote_address": "10.244.0.1:55222",
    "requested_server_name": "-",
    "route_name": "httproute/default/users/rule/0/match/0/*",
}


def test_envoy_gateway_default_json_keeps_its_path_and_headers(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Envoy Gateway names the path x-envoy-origin-path and the headers by their names:
    path, route, client, user agent and request id are stored, not null."""
    log = tmp_path / "eg.log"
    log.write_text(json.dumps(ENVOY_GATEWAY_DEFAULT) + "\n")
    summary = json.loads(run_cli("ingest", log, "--json").output)
    assert summary["files"][0]["format"] == "envoy-gateway-json"
    assert summary["files"][0]["detection"] == {"matched": 1, "sampled": 1, "ties": []}
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT method, path, route, status, client, user_agent, request_id, latency_ms, bytes"
        " FROM conflict_events",
    )
    assert rows == [
        (
            "PUT",
            "/api/v1/users/42",
            "/api/v1/users/{id}",
            409,
            "203.0.113.9",
            "curl/8.5.0",
            "7c2a1d4e-0b9f-4e55-9a51-0f4e6e2b1c11",
            12.0,
            63,
        )
    ]


def test_traefik_common_lines_with_dropped_fields_are_traefiks(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Traefik writes "-" for every field it drops (count, router, server URL unquoted or
    quoted, even the time): the file is still Traefik's, its lines read field by field."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    log = REAL / "traefik_common_dropped.log"
    summary = json.loads(run_cli("ingest", log, "--json").output)
    assert summary["files"][0]["format"] == "traefik-clf"
    assert summary["reject_reasons"] == {"invalid timestamp": 2}  # "[-]": no time logged
    db = tmp_path / "conflictlens.duckdb"
    rows = query(
        db,
        "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S'), method, path, status, bytes, latency_ms,"
        ' client, user_agent, service, upstream FROM conflict_events ORDER BY "offset"',
    )
    line = ("2016-04-13T14:14:19", "POST", "testpath", 123, 12, 1.0)  # -0700 → UTC
    tail = ("testUserAgent", "testRouter", "127.0.0.1")  # the server URL's host
    assert rows == [(*line, None, *tail)] * 2  # "TestHost" names no address: no client


def test_a_mostly_combined_file_is_combined_and_keeps_its_common_lines(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Four combined lines and two common ones of an Apache log (one with "-" for its bytes,
    which nginx never writes): detection names Apache's combined format, with how many
    sampled lines it read; the common lines are stored too, without a user agent."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    log = REAL / "apache_common_and_combined.log"
    summary = json.loads(run_cli("ingest", log, "--json").output)
    found = summary["files"][0]
    assert found["format"] == "apache-combined"
    assert found["detection"] == {"matched": 6, "sampled": 6, "ties": []}
    assert (summary["parsed"], summary["rejected"]) == (6, 0)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        'SELECT status, client, user_agent IS NOT NULL FROM conflict_events ORDER BY "offset"',
    )
    assert rows == [
        (404, "::1", False),
        (404, "192.168.33.1", True),
        (408, "::1", False),
        (404, "172.17.0.1", True),
        (200, None, True),  # "monitoring-server": a host name, not an address
        (408, "127.0.0.1", False),  # a user agent of "-" is none
    ]
    text = run_cli("ingest", "--db", tmp_path / "again.duckdb", log).output
    assert "apache-combined (detected: 6 of 6 sampled lines)" in text


def test_formats_that_read_a_file_alike_are_both_named(tmp_path: Path, run_cli: RunCli) -> None:
    """nginx's and Apache's combined formats read a plain combined log alike: a tie, and
    the summary says so (the first in the registry's order is used)."""
    sample = Path(__file__).parents[1] / "sample_logs" / "nginx-combined.log"
    found = json.loads(run_cli("ingest", sample, "--json").output)["files"][0]
    assert found["format"] == "nginx-combined"
    assert found["detection"] == {"matched": 200, "sampled": 200, "ties": ["apache-combined"]}


def test_a_file_no_format_takes_is_imported_as_rejects_and_read_again_with_its_format(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Every line of a file no format recognises is a reject that says so (the import does
    not fail); once the user names its format, the file is read again from its start in
    place of those rejects."""
    log = tmp_path / "odd.log"
    lines = [
        "203.0.113.9 [20/Nov/2026:10:00:00 +0000] PUT /api/v1/users/7 409",
        "203.0.113.9 [20/Nov/2026:10:00:01 +0000] GET /api/v1/users/7 200",
    ]
    log.write_text("\n".join(lines) + "\n")
    db = tmp_path / "t.duckdb"
    first = json.loads(run_cli("ingest", "--db", db, log, "--json").output)
    assert first["files"][0]["format"] == "unrecognised"
    assert (first["parsed"], first["rejected"], first["failed"]) == (0, 2, [])
    reason = "not an access-log entry of any known format (pass --format or --log-format)"
    assert first["reject_reasons"] == {reason: 2}
    fmt = "$remote_addr [$time_local] $request_method $uri $status"
    again = json.loads(run_cli("ingest", "--db", db, "--log-format", fmt, log, "--json").output)
    assert (again["files"][0]["resumed_at"], again["parsed"], again["rejected"]) == (0, 2, 0)
    assert query(db, "SELECT count(*) FROM rejects") == [(0,)]
    assert query(db, "SELECT lines, rejects, format FROM sources") == [(2, 0, "custom")]
    assert query(db, "SELECT method, path, status FROM conflict_events") == [
        ("PUT", "/api/v1/users/7", 409)
    ]


def test_one_file_that_cannot_be_read_does_not_stop_the_others(
    tmp_path: Path, run_cli: RunCli
) -> None:
    good = REAL / "istio_default.log"
    db = tmp_path / "t.duckdb"
    result = run_cli("ingest", "--db", db, "/dev/null", good, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [f["path"] for f in summary["failed"]] == ["/dev/null"]
    assert summary["parsed"] == 2
    assert "1 of 2 files not imported: /dev/null:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unrecognised_lines_from_stdin_are_rejects_too(tmp_path: Path, run_cli: RunCli) -> None:
    """Standard input is detected chunk by chunk (no early look): the same outcome."""
    lines = "203.0.113.9 [20/Nov/2026:10:00:00 +0000] PUT /api/v1/users/7 409\n" * 3
    result = run_cli("ingest", "--db", tmp_path / "t.duckdb", "-", "--json", input=lines)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["files"][0]["format"], summary["rejected"]) == ("unrecognised", 3)


def test_a_connect_target_is_a_host_and_port_not_a_path(tmp_path: Path, run_cli: RunCli) -> None:
    """CONNECT names a host and port (authority-form), which is no path: the path is none,
    and an absolute URL beside it keeps only its path (a HAProxy file from logstash's
    patterns tests: corpus/part-J/SOURCES.md; line 6 is the CONNECT)."""
    log = REAL / "corpus" / "part-J" / "haproxy-httplog" / "logstash-patterns-core-haproxy.log"
    import_kept(tmp_path, run_cli, "--format", "auto", log)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT method, path FROM conflict_events WHERE method IN ('CONNECT', 'GET') ORDER BY 1, 2",
    )
    assert rows == [
        ("CONNECT", None),
        ("GET", "/"),
        ("GET", "/component---src-pages-index-js-4b15624544f97cf0bb8f.js"),
        ("GET", "/path/to/image"),
        ("GET", "/serv/login.php"),
    ]


def test_clf_times_with_a_fraction_of_a_second_are_read(tmp_path: Path, run_cli: RunCli) -> None:
    """Apache's ``%{%d/%b/%Y:%H:%M:%S}t.%{msec_frac}t`` and talisker (gunicorn) write the CLF
    time with milliseconds: every line stored at its millisecond, none rejected (talisker's
    own test log: corpus/part-K/SOURCES.md)."""
    log = REAL / "corpus" / "part-K" / "apache-combined" / "talisker-access.log"
    summary = import_kept(tmp_path, run_cli, "--format", "auto", log)
    assert (summary["lines"], summary["parsed"], summary["rejected"]) == (3, 3, 0)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT strftime(ts, '%H:%M:%S.%g') FROM conflict_events ORDER BY ts",
    )
    assert [r[0] for r in rows] == ["10:11:27.856", "10:11:37.124", "10:11:43.961"]


def test_a_referer_written_as_a_bare_dash_keeps_the_user_agent(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """MarkLogic writes an absent referer as an unquoted ``-`` in an otherwise combined line:
    the quoted user agent after it is still read, on those lines and on the file's quoted ones
    (Azure-Sentinel's MarkLogic sample log: corpus/part-N/SOURCES.md)."""
    log = REAL / "corpus" / "part-N" / "apache-combined" / "azure-sentinel-marklogic.log"
    import_kept(tmp_path, run_cli, "--format", "auto", log)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT count(*), count(user_agent) FROM conflict_events",
    )
    lines = log.read_text().splitlines()
    assert rows == [(len(lines), len(lines))]
    assert sum(bool(re.search(r'[0-9] - "', line)) for line in lines) == 12  # unquoted referers


def test_an_alb_url_whose_host_was_cut_keeps_its_path(tmp_path: Path, run_cli: RunCli) -> None:
    """An ALB line pasted with its host redacted (``https:/vent?...``): the path is what
    follows the scheme (goaccess issue 797: corpus/part-N/SOURCES.md)."""
    log = REAL / "corpus" / "part-N" / "aws-alb" / "goaccess-issue-797.log"
    import_kept(tmp_path, run_cli, "--format", "auto", log)
    rows = query(tmp_path / "conflictlens.duckdb", "SELECT method, path FROM conflict_events")
    assert rows == [("POST", "/vent")]


PART_M = REAL / "corpus" / "part-M"


@pytest.mark.parametrize(
    ("log", "paths"),
    [
        # kubectl logs --timestamps before an Envoy JSON line (istio/istio#25882)
        ("envoy-json/istio-istio-25882.log", ["/http/verify"]),
        # kubectl logs --timestamps, then Ambassador's "ACCESS " (emissary-ingress/emissary#2619)
        (
            "envoy-text/emissary-ingress-emissary-2619.log",
            [
                "/test/ghost/.ambassador-internal/openapi-docs",
                "/test/ghost2/.ambassador-internal/openapi-docs",
            ],
        ),
        # stern's "<pod> <container> " before Envoy text lines (istio/istio#9194)
        ("envoy-text/istio-istio-9194.log", ["/listeners", "/stats", "/listeners", "/stats"]),
        # Knative's test log stream "<ns>/<pod>[<container>]: " (net-contour#202)
        ("envoy-text/knative-extensions-net-contour-202.log", ["/"]),
        # an Envoy line pasted with an indent (projectcontour/contour#4641)
        ("envoy-text/projectcontour-contour-4641.log", ["/nginx", "/nginxapp"]),
    ],
)
def test_envoy_lines_behind_kubernetes_prefixes_are_read(
    tmp_path: Path, run_cli: RunCli, log: str, paths: list[str]
) -> None:
    """Prefixes that Kubernetes tools and pasting put before Envoy's lines are removed, every
    line is read (real pasted logs: corpus/part-M/SOURCES.md)."""
    import_kept(tmp_path, run_cli, "--format", "auto", PART_M / log)
    rows = query(
        tmp_path / "conflictlens.duckdb", 'SELECT path FROM conflict_events ORDER BY "offset"'
    )
    assert [r[0] for r in rows] == paths


def test_docker_service_logs_prefix_is_an_envelope(tmp_path: Path, run_cli: RunCli) -> None:
    """``docker service logs`` prefixes ``<service>.<n>.<task>@<node>  | ``: the Traefik line
    behind it is read as Traefik's, and rejected for its status ``-`` with Traefik's reason
    (traefik/traefik#9648: corpus/part-M/SOURCES.md)."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    result = run_cli(
        "ingest", "--format", "auto", PART_M / "traefik-clf/traefik-traefik-9648.log", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"][0]["format"] == "traefik-clf"
    (reason,) = query(tmp_path / "conflictlens.duckdb", "SELECT reason FROM rejects")
    assert "not an access-log entry" not in reason[0]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        # 0.9's "$the_real_ip - [$the_real_ip]" with the first one empty (ingress-nginx#334)
        (
            "ingress-nginx/kubernetes-ingress-nginx-334-b.log",
            [("127.0.0.1", 6.0, "100.96.14.20:3000")],
        ),
        # 2016's contrib layout with $host second (kubernetes-retired/contrib#1801)
        ("ingress-nginx/kubernetes-retired-contrib-1801.log", [("1.2.3.4", 0.0, None)]),
        # Istio's line with an empty route field (a trailing blank): the downstream client
        ("istio-text/istio-istio-30594.log", [("10.36.1.1", 0.0, None)]),
    ],
)
def test_older_ingress_layouts_and_istio_blanks_keep_client_and_latency(
    tmp_path: Path, run_cli: RunCli, log: str, expected: list[tuple[str, float, str | None]]
) -> None:
    """Client, latency and upstream as read by hand off real lines (corpus/part-M)."""
    import_kept(tmp_path, run_cli, "--format", "auto", PART_M / log)
    rows = query(
        tmp_path / "conflictlens.duckdb",
        'SELECT client, latency_ms, upstream FROM conflict_events ORDER BY "offset"',
    )
    assert rows == expected


def test_traefik_durations_with_a_fraction_of_a_millisecond_are_read(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """Traefik 1.0 wrote the duration as Go prints it (``56.846528ms``): the line is Traefik's
    and keeps its latency (traefik/traefik PR 308: corpus/part-O/SOURCES.md)."""
    log = REAL / "corpus" / "part-O" / "traefik-clf" / "traefik-traefik-pr308.log"
    summary = import_kept(tmp_path, run_cli, "--format", "auto", log)
    assert summary["files"][0]["format"] == "traefik-clf"
    rows = query(
        tmp_path / "conflictlens.duckdb", "SELECT latency_ms, upstream FROM conflict_events"
    )
    assert rows == [(56.846528, "127.0.0.1:8081")]


PART_P_JSON = REAL / "corpus" / "part-P" / "nginx-json"


def layout_of(log: Path) -> str:
    return str(json.loads(log.with_suffix(".options.json").read_text())["log_format"])


def test_an_nginx_json_layout_given_as_log_format_reads_its_own_keys(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """An operator's ``log_format escape=json`` layout, keys named at will ("lan_ip":
    "$remote_addr", "http_code": "$status"), read by the variables its values name
    (goaccess issues 1196 and 2145: corpus/part-P/SOURCES.md)."""
    (tmp_path / "conflictlens.toml").write_text("[ingest]\nkeep_all = true\n")
    for name in ("goaccess-1196-json-custom-keys.log", "goaccess-2145-json-escape.log"):
        log = PART_P_JSON / name
        result = run_cli("ingest", "--log-format", layout_of(log), log, "--json")
        assert result.exit_code == 0, result.output
    rows = query(
        tmp_path / "conflictlens.duckdb",
        "SELECT method, path, status, client, bytes, latency_ms FROM conflict_events ORDER BY ts",
    )
    assert rows == [
        ("GET", "/common/js/index.js", 200, "192.168.120.1", 3230, 12.0),
        ("OPTIONS", "/api/example_services", 204, None, 0, 23.0),
    ]


def test_an_nginx_json_layout_without_status_imports_its_lines_as_rejects(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """A layout that logs no $status (goaccess issue 2127) is no error: the file is imported
    and every line is a reject that says the status is missing."""
    log = PART_P_JSON / "goaccess-2127-json-no-status.log"
    result = run_cli("ingest", "--log-format", layout_of(log), log, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["lines"], summary["rejected"]) == (9, 9)
    assert list(summary["reject_reasons"]) == ["custom: missing status"]
