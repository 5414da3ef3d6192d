"""Access logs inside container-runtime envelopes (Docker json-file, CRI) import like bare ones."""

from __future__ import annotations

import json

import pytest

from conflictlens.analysis import run_query
from conflictlens.ingest import IngestOptions, import_source
from conflictlens.sample_logs.generator import format_lines, traffic
from conflictlens.store import Writer, connect


def bare_lines(style: str, count: int = 300) -> list[str]:
    return format_lines(traffic(count, seed=41), style).to_list()


def docker(line: str) -> str:
    return json.dumps(
        {"log": line + "\n", "stream": "stdout", "time": "2026-11-19T10:00:00.000000001Z"}
    )


def cri(line: str) -> str:
    return f"2026-11-19T10:00:00.123456789Z stdout F {line}"


def compose(line: str) -> str:
    """As `docker compose logs` prints a service's line (names padded to the longest)."""
    return f"gateway-1  | {line}"


def kubectl(line: str) -> str:
    """As `kubectl logs --prefix` prints a container's line."""
    return f"[pod/gateway-7c9f5d6b8-x2x9p/proxy] {line}"


def compose_timed(line: str) -> str:
    """As `docker compose logs -t` prints it: the time docker received the line comes first."""
    return f"gateway-1  | 2026-11-19T10:00:00.670998585Z {line}"


def stern(line: str) -> str:
    """As stern prints a pod's line: pod and container names first."""
    return f"gateway-7c9f5d6b8-x2x9p envoy {line}"


def clusters_of(tmp_path, name: str, lines: list[str]) -> tuple[object, list[dict[str, object]]]:
    log = tmp_path / name
    log.write_text("\n".join(lines) + "\n")
    with connect(tmp_path / f"{name}.duckdb") as con:
        summary = import_source(str(log), Writer(con), IngestOptions())
        rows = run_query(con, "clusters").to_dicts()
    return summary, rows


@pytest.mark.parametrize("style", ["nginx-extended", "kong-json", "envoy-text"])
@pytest.mark.parametrize(
    "wrap",
    [docker, cri, compose, compose_timed, kubectl],
    ids=["docker", "cri", "compose", "compose-t", "kubectl"],
)
def test_wrapped_logs_give_the_same_clusters_as_bare_ones(tmp_path, style, wrap):
    lines = bare_lines(style)
    bare_summary, bare = clusters_of(tmp_path, "bare.log", lines)
    wrapped_summary, wrapped = clusters_of(tmp_path, "wrapped.log", [wrap(line) for line in lines])
    assert (wrapped_summary.format, wrapped_summary.rejected) == (bare_summary.format, 0)
    assert wrapped == bare and bare


def test_a_broken_envelope_is_a_reject_and_the_rest_goes_on(tmp_path):
    lines = [docker(line) for line in bare_lines("nginx-combined", 20)]
    lines.insert(5, '{"log": "unterminated')
    summary, rows = clusters_of(tmp_path, "broken.log", lines)
    assert (summary.lines, summary.rejected, summary.parsed) == (21, 1, 20)
    assert sum(int(r["conflicts"]) for r in rows) == summary.conflicts


def test_compose_logs_with_the_gateways_own_messages_import_the_access_lines(tmp_path):
    """`docker compose logs caddy` mixes Caddy's own JSON messages with its access lines:
    the access lines are stored, the rest are rejects, and the format is still detected."""
    access = bare_lines("caddy-json", 40)
    own = [
        '{"level":"info","ts":1763200000.1,"msg":"using config from file","file":"/etc/caddy/Caddyfile"}',
        '{"level":"info","ts":1763200000.2,"logger":"tls","msg":"cleaning storage unit"}',
    ]
    lines = [f"caddy-1  | {line}" for line in [*own, *access[:20], own[0], *access[20:]]]
    summary, rows = clusters_of(tmp_path, "compose.log", lines)
    assert summary.format == "caddy-json"
    assert (summary.lines, summary.parsed, summary.rejected) == (43, 40, 3)
    bare_summary, bare = clusters_of(tmp_path, "bare.log", access)
    assert rows == bare and bare_summary.rejected == 0


@pytest.mark.parametrize("style", ["kong-json", "envoy-gateway-json"])
def test_stern_prefixed_json_lines_give_the_same_clusters_as_bare_ones(tmp_path, style):
    """stern's prefix is removed before JSON lines only (before a text line, two words could
    be the line's own fields)."""
    lines = bare_lines(style)
    bare_summary, bare = clusters_of(tmp_path, "bare.log", lines)
    wrapped_summary, wrapped = clusters_of(tmp_path, "stern.log", [stern(line) for line in lines])
    assert (wrapped_summary.format, wrapped_summary.rejected) == (bare_summary.format, 0)
    assert wrapped == bare and bare
