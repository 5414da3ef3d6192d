"""serve's local HTTP API: health, status, the named queries of the catalog, Prometheus metrics.

Every other process reads the store through here while serve owns the database file. No
endpoint runs SQL sent by a client: a query is named, and its parameters are typed and bound.
"""

from __future__ import annotations

import hmac
import io
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import duckdb
import polars as pl
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from conflictlens import __version__
from conflictlens._errors import ConflictlensError, InvalidValue, first_line
from conflictlens.analysis import PARAM_TYPES, QUERIES, AnalysisError, TimeRange, run_query
from conflictlens.output import records
from conflictlens.store import SCHEMA_VERSION
from conflictlens.store.engine import Store
from conflictlens.timeparse import parse_time

ARROW_STREAM = "application/vnd.apache.arrow.stream"
StatusProvider = Callable[[], list[dict[str, Any]]]
TIME_PARAMS = {"since", "until"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_BYTES = 1024 * 1024  # a rule or a silence is a few hundred bytes
# OTLP/HTTP log intake (api_otlp): protobuf too, which no page of another site can send
# without a preflight either, and batches of many records.
OTLP_PATH = "/v1/logs"
OTLP_TYPES = frozenset({"application/x-protobuf", "application/json"})
MAX_OTLP_BYTES = 32 << 20
QUERY_SECONDS = 20.0  # the longest one named query may run before it is interrupted


def create_app(
    cursor: Callable[[], AbstractContextManager[Store]],
    *,
    db_path: str,
    token: str | Callable[[], str | None] | None = None,
    source_status: StatusProvider = list,
    hosts: frozenset[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The API over a store. ``cursor()`` gives a fresh cursor of serve's own connection (a
    context manager; on ClickHouse, one holding the shared engine).
    ``hosts`` are the names it answers to (a DNS-rebinding page's Host is refused)."""
    app = FastAPI(title="conflictlens", version=__version__)
    allowed = LOOPBACK_HOSTS | hosts

    @app.exception_handler(ConflictlensError)
    async def one_line_error(request: Request, exc: Exception) -> JSONResponse:
        # Every error of the project, raised by any endpoint: its first line, with the status
        # its class declares (400 unless it says otherwise).
        status = exc.status_code if isinstance(exc, ConflictlensError) else 400
        return JSONResponse({"detail": first_line(exc)}, status_code=status)

    @app.middleware("http")
    async def guard_requests(request: Request, call_next: Any) -> Any:
        refusal = refuse(request, allowed)
        if refusal is not None:
            return JSONResponse({"detail": refusal[1]}, status_code=refusal[0])
        return await call_next(request)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        # (a callable: the token of the config in force, which a reload may change)
        wanted = token() if callable(token) else token
        if wanted is not None and request.url.path not in ("/api/health",):
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), wanted.encode()):
                return JSONResponse({"detail": "missing or wrong token"}, status_code=401)
        return await call_next(request)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Liveness: the version and the store's schema version. Needs no token."""
        return {"status": "ok", "version": __version__, "schema": SCHEMA_VERSION}

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        """The store (path, size, counts, span) and every source: where it is read to, its lag."""
        with cursor() as con:
            store = records(run_query(con, "store_status"))[0]
            sources = records(run_query(con, "sources"))
        live = {s["source_id"]: s for s in source_status() if "source_id" in s}
        for row in sources:
            row.update(live.get(row["source_id"], {}))
        store["path"] = db_path
        store["size_bytes"] = _file_size(db_path) + _file_size(db_path + ".wal")
        return {"store": store, "sources": sources, "following": source_status()}

    @app.get("/api/queries")
    def catalog() -> list[dict[str, Any]]:
        """The query catalog: every named query with its description and parameters."""
        return [
            {"name": q.name, "description": q.description, "params": list(q.params)}
            for q in QUERIES.values()
        ]

    @app.get("/api/queries/{name}")
    def query(name: str, request: Request) -> Response:
        """Run catalog query NAME with its parameters from the query string (since, until, filters,
        options); JSON rows, or an Arrow stream with `format=arrow` or `Accept:
        application/vnd.apache.arrow.stream`."""
        if name not in QUERIES:
            raise HTTPException(404, f"no query named {name!r}; known: {', '.join(QUERIES)}")
        params = dict(request.query_params)
        wants_arrow = params.pop(
            "format", "json"
        ) == "arrow" or ARROW_STREAM in request.headers.get("accept", "")
        time_range, values = _typed_params(name, params)
        with cursor() as con:
            frame = _within_time_limit(con, lambda: run_query(con, name, time_range, **values))
        if wants_arrow:
            return Response(_arrow_ipc(frame), media_type=ARROW_STREAM)
        return JSONResponse(records(frame))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus metrics: stored events and requests, sources and their lag."""
        with cursor() as con:
            frame = run_query(con, "metrics")
        return prometheus_text(frame, source_status())

    return app


def refuse(request: Request, allowed: frozenset[str]) -> tuple[int, str] | None:
    """Why a request is refused (status and reason), or None. Browsers on other sites can
    reach a loopback address: a rebinding name is refused by its Host, a cross-site write by
    its Origin or Sec-Fetch-Site, and a write must be JSON (which a page cannot send to
    another origin without a preflight that serve never grants)."""
    host = _hostname(request.headers.get("host", ""))
    if host not in allowed and "*" not in allowed:
        return 400, f"host {host!r} is not served here (allowed: {', '.join(sorted(allowed))})"
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return 403, f"refused a {site} request that changes state"
    origin = request.headers.get("origin")
    if origin is not None and _hostname(origin.split("://", 1)[-1]) not in allowed:
        return 403, f"refused a request from origin {origin!r} that changes state"
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    otlp = request.url.path == OTLP_PATH
    if otlp and kind not in OTLP_TYPES:
        return (
            415,
            "an OTLP request must send Content-Type: application/x-protobuf or application/json",
        )
    if not otlp and kind != "application/json":
        return 415, "a request that changes state must send Content-Type: application/json"
    length = request.headers.get("content-length")
    if length is None:
        return 411, "a request that changes state must give its Content-Length"
    limit = MAX_OTLP_BYTES if otlp else MAX_BODY_BYTES
    if not length.isdigit() or int(length) > limit:
        return 413, f"request body over {limit:,} bytes"
    return None


def _hostname(host: str) -> str:
    """``127.0.0.1:8409`` → ``127.0.0.1``, ``[::1]:80`` → ``::1``, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _within_time_limit(con: Store, run: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Run a query, interrupting it after QUERY_SECONDS: one request never holds serve.
    (A ClickHouse server bounds its queries with its own max_execution_time.)"""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return run()
    timer = threading.Timer(QUERY_SECONDS, con.interrupt)
    timer.start()
    try:
        return run()
    except duckdb.InterruptException:
        raise AnalysisError(
            f"the query ran longer than {QUERY_SECONDS:g} s, serve's limit per request: "
            "ask for a shorter range"
        ) from None
    finally:
        timer.cancel()


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _typed_params(name: str, params: dict[str, str]) -> tuple[TimeRange, dict[str, Any]]:
    allowed = set(QUERIES[name].params)
    unknown = set(params) - allowed
    if unknown:
        raise AnalysisError(f"query {name!r} takes no parameter(s) {', '.join(sorted(unknown))}")
    since = parse_time(params.pop("since")) if "since" in params else None
    until = parse_time(params.pop("until")) if "until" in params else None
    return TimeRange(since, until), {key: _typed(key, value) for key, value in params.items()}


def _typed(key: str, value: str) -> Any:
    """A query-string value as its parameter's type (``int("x")`` says why it is not one)."""
    try:
        return PARAM_TYPES.get(key, str)(value)
    except ValueError as exc:
        raise InvalidValue(first_line(exc)) from None


def _arrow_ipc(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc_stream(sink)
    return sink.getvalue()


def _label(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(frame: pl.DataFrame, following: list[dict[str, Any]]) -> str:
    """Metrics in the Prometheus text format; route labels are bounded by the query."""
    lines = [
        "# HELP conflictlens_lines_total Lines read per source.",
        "# TYPE conflictlens_lines_total counter",
    ]
    sources = frame.filter(pl.col("metric") == "source")
    for row in sources.iter_rows(named=True):
        lines.append(f'conflictlens_lines_total{{source="{_label(row["label"])}"}} {row["lines"]}')
    lines += [
        "# HELP conflictlens_rejects_total Rejected lines per source.",
        "# TYPE conflictlens_rejects_total counter",
    ]
    for row in sources.iter_rows(named=True):
        lines.append(
            f'conflictlens_rejects_total{{source="{_label(row["label"])}"}} {row["rejects"]}'
        )
    lines += [
        "# HELP conflictlens_conflicts_total Conflict-family responses by route and status (top routes, rest as other).",
        "# TYPE conflictlens_conflicts_total counter",
    ]
    for row in frame.filter(pl.col("metric") == "conflicts").iter_rows(named=True):
        lines.append(
            f'conflictlens_conflicts_total{{route="{_label(row["label"])}",status="{row["status"]}"}} {row["lines"]}'
        )
    lines += [
        "# HELP conflictlens_tail_lag_bytes Bytes not yet read per followed file.",
        "# TYPE conflictlens_tail_lag_bytes gauge",
    ]
    for status in following:
        if "path" in status and "lag_bytes" in status:
            lines.append(
                f'conflictlens_tail_lag_bytes{{source="{_label(status["path"])}"}} {status["lag_bytes"]}'
            )
    return "\n".join(lines) + "\n"
