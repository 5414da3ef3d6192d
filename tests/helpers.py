"""Small shared helpers for the test suite (plain functions, no fixtures)."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from conflictlens.store import connect

CLF_TS = "20/Nov/2026:10:00:00 +0000"


def clf_line(
    path: str = "/api/v1/users/1",
    *,
    status: int | str = 409,
    method: str = "PUT",
    ts: str = CLF_TS,
    client: str = "10.0.0.1",
    size: int | str = 12,
    user_agent: str = "curl/8.5.0",
) -> bytes:
    """One nginx "combined" line (no newline)."""
    return (
        f'{client} - - [{ts}] "{method} {path} HTTP/1.1" {status} {size} "-" "{user_agent}"'
    ).encode()


# A request that is no conflict: a file holding it shows in a follower's status once a scan
# has found it (an empty file is not followed), and it adds no conflict event.
MARKER = clf_line("/marker", status=200, method="GET") + b"\n"


def clf_ts(moment: dt.datetime) -> str:
    """A CLF ``$time_local`` value for an aware datetime, in that datetime's own offset."""
    return moment.strftime("%d/%b/%Y:%H:%M:%S %z")


def write_lines(path: Path, lines: list[bytes], *, trailing_newline: bool = True) -> bytes:
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    path.write_bytes(data)
    return data


def line_offsets(lines: list[bytes]) -> list[int]:
    """Byte offset of each line in ``b"\\n".join(lines)``."""
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    return offsets


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run SQL against the store through the project's own read-only open."""
    with closing(connect(db, read_only=True)) as con:
        return con.execute(sql, params or []).fetchall()


def store_counts(db: Path) -> dict[str, Any]:
    """Everything an import changes, in one comparable dict."""
    with closing(connect(db, read_only=True)) as con:
        one = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
        return {
            "events": one("SELECT count(*) FROM conflict_events"),
            "requests": one("SELECT coalesce(sum(requests), 0)::BIGINT FROM request_rollups"),
            "rollup_rows": one("SELECT count(*) FROM request_rollups"),
            "rejects": one("SELECT count(*) FROM rejects"),
            "sources": con.execute(
                'SELECT source_id, "offset", lines FROM sources ORDER BY 1'
            ).fetchall(),
        }


def cli_json(result: Any) -> Any:
    """The JSON a CLI command printed, after checking that it succeeded."""
    assert result.exception is None, f"{result.exception!r}\n{result.output}"
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def conflicts_by_cluster(records: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """(method, route, status, error_code) → conflicts, from clusters JSON or ground truth."""
    counts: Counter[tuple[Any, ...]] = Counter()
    for record in records:
        key = (record["method"], record["route"], record["status"], record["error_code"])
        counts[key] += record["conflicts"]
    return counts


def requests_by_route_from_clusters(records: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for record in records:
        key = (record["method"], record["route"])
        assert out.setdefault(key, record["requests"]) == record["requests"], key
    return out


def requests_by_route_from_store(db: Path) -> dict[tuple[str, str], int]:
    rows = query(
        db, "SELECT method, route, sum(requests)::BIGINT FROM request_rollups GROUP BY ALL"
    )
    return {(method, route): n for method, route, n in rows}


def truth_requests(truth: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(r["method"], r["route"]): r["requests"] for r in truth["requests_by_route"]}


def merge_truths(*truths: dict[str, Any]) -> dict[str, Any]:
    """The ground truth of several logs imported into one store."""
    conflicts: Counter[tuple[Any, ...]] = Counter()
    requests: Counter[tuple[str, str]] = Counter()
    for truth in truths:
        conflicts.update(conflicts_by_cluster(truth["conflicts_by_cluster"]))
        requests.update(truth_requests(truth))
    return {
        "lines": sum(t["lines"] for t in truths),
        "conflicts": sum(t["conflicts"] for t in truths),
        "conflicts_by_cluster": [
            {"method": k[0], "route": k[1], "status": k[2], "error_code": k[3], "conflicts": v}
            for k, v in conflicts.items()
        ],
        "requests_by_route": [
            {"method": k[0], "route": k[1], "requests": v} for k, v in requests.items()
        ],
    }


def assert_store_matches_truth(
    db: Path, clusters: list[dict[str, Any]], truth: dict[str, Any]
) -> None:
    """Conflicts per cluster and requests per route exactly as the generator wrote them."""
    assert conflicts_by_cluster(clusters) == conflicts_by_cluster(truth["conflicts_by_cluster"])
    assert sum(c["conflicts"] for c in clusters) == truth["conflicts"]
    expected_requests = truth_requests(truth)
    clustered = requests_by_route_from_clusters(clusters)
    assert clustered == {key: expected_requests[key] for key in clustered}
    assert requests_by_route_from_store(db) == expected_requests
    for record in clusters:
        assert record["ratio"] == record["conflicts"] / record["requests"]


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, every: float = 0.2
) -> None:
    """Wait for a positive signal; ``timeout`` is a generous ceiling, never a speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def post_json(url: str, body: Any = None, *, timeout: float = 30) -> tuple[int, Any]:
    """POST ``body`` as JSON; the status and the JSON answer, an HTTP error's included."""
    request = urllib.request.Request(
        url,
        data=json.dumps({} if body is None else body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
