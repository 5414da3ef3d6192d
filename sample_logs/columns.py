"""Typed request columns: random identifiers, rows for planted requests, and the per-request
details (ports, request ids, upstreams, If-Match, where the error code is carried) that the
gateway formats need. Everything is vectorized and driven by a numpy Generator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens.sample_logs.catalog import (
    CLIENTS,
    CONFLICT_STATUSES,
    CONSUMERS,
    REFERERS,
    SERVICES,
    USER_AGENTS,
    Endpoint,
    service_index,
    upstream,
)

CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

# Where a conflict's error code is written in formats that can put it in the body as well as in
# a header (kong-json, apipark-json); every other format uses the header (or nothing).
CARRIERS = ("header", "body:error.code", "body:code", "body:problem-type")

# The columns of a generated request, in order. ``ts`` is the instant each format writes as its
# main timestamp (request start for most gateways; see the formats).
BASE_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us", "UTC"),
    "method": pl.String(),
    "route": pl.String(),
    "path": pl.String(),
    "query": pl.String(),
    "status": pl.Int64(),
    "error_code": pl.String(),
    "client": pl.String(),
    "user_agent": pl.String(),
    "referer": pl.String(),
    "bytes": pl.Int64(),
    "latency_s": pl.Float64(),
}
EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "client_port": pl.Int64(),
    "request_id": pl.String(),  # 32 hex digits
    "req_bytes": pl.Int64(),  # request body bytes
    "http2": pl.Boolean(),
    "if_match": pl.String(),  # the If-Match header as sent (quotes included), or null
    "service": pl.Int64(),  # index into catalog.SERVICES
    "upstream": pl.String(),  # ip:port of the instance that answered
    "latency_ns": pl.Int64(),  # total time; whole milliseconds equal round(latency_s * 1000)
    "upstream_ms": pl.Int64(),  # time spent in the upstream
    "nanos": pl.Int64(),  # sub-microsecond part of the start time (RFC3339Nano formats)
    "carrier": pl.Int64(),  # conflicts: index into CARRIERS; null otherwise
    "consumer": pl.String(),  # authenticated API consumer (Kong), or null
    "seq": pl.Int64(),  # position in the whole log (0-based)
}
SCHEMA = {**BASE_SCHEMA, **EXTRA_SCHEMA}


def random_hex(rng: np.random.Generator, n: int, chars: int) -> pl.Series:
    """``n`` random lower-case hex tokens of ``chars`` characters, each starting with a digit."""
    raw = rng.integers(0, 256, size=n * ((chars + 1) // 2), dtype=np.uint8).tobytes()
    width = (chars + 1) // 2
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
    text = pl.Series(arr.cast(pa.binary())).bin.encode("hex").str.slice(0, chars)
    # A leading digit keeps every id recognisably an id (no all-letter "deadbeef").
    first = pl.Series(rng.integers(1, 10, size=n)).cast(pl.String)
    return first + text.str.slice(1)


def fixed_hex(values: np.ndarray, digits: int) -> pl.Series:
    """Non-negative integers as zero-padded lower-case hex of ``digits`` digits."""
    values = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    codes = HEX[((values[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]
    arr = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(digits), len(values), [None, pa.py_buffer(np.ascontiguousarray(codes).tobytes())]
    )
    return pl.Series(arr.cast(pa.binary())).cast(pl.String)


def uuid(rng: np.random.Generator, n: int) -> pl.Series:
    return uuid_from_hex(random_hex(rng, n, 32))


def uuid_from_hex(h: pl.Series) -> pl.Series:
    pieces = [
        h.str.slice(0, 8),
        h.str.slice(8, 4),
        h.str.slice(12, 4),
        h.str.slice(16, 4),
        h.str.slice(20, 12),
    ]
    return pl.select(pl.concat_str(pieces, separator="-")).to_series()


def ulid(rng: np.random.Generator, n: int) -> pl.Series:
    codes = CROCKFORD[rng.integers(0, 32, size=(n, 26))]
    codes[:, 0] = CROCKFORD[rng.integers(0, 8, size=n)]
    codes[:, 1] = CROCKFORD[rng.integers(0, 10, size=n)]  # a digit, as real ULIDs have
    arr = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(26), n, [None, pa.py_buffer(codes.tobytes())]
    )
    return pl.Series(arr.cast(pa.binary())).cast(pl.String)


def ids(rng: np.random.Generator, kind: str, n: int, hot: bool) -> pl.Series:
    if kind == "{id}":
        if hot:
            return pl.Series(rng.zipf(1.6, size=n) % 500 + 1).cast(pl.String)
        return pl.Series(rng.integers(1, 5_000_000, size=n)).cast(pl.String)
    if kind == "{uuid}":
        return uuid(rng, n)
    if kind == "{hex}":
        if hot:
            pool = random_hex(rng, 200, 24)
            return pool.gather(pl.Series(rng.zipf(1.5, size=n) % 200))
        return random_hex(rng, n, 24)
    if kind == "{ulid}":
        return ulid(rng, n)
    if kind == "{email}":
        return (
            "user" + pl.Series(rng.integers(1, 2_000_000, size=n)).cast(pl.String) + "@example.com"
        )
    if kind == "{date}":
        days = pl.Series(rng.integers(0, 365, size=n)) * 86_400_000_000
        return (
            (days + int(dt.datetime(2026, 1, 1).timestamp() * 1e6))
            .cast(pl.Datetime("us"))
            .dt.strftime("%Y-%m-%d")
        )
    raise ValueError(kind)


def paths(rng: np.random.Generator, endpoint: Endpoint, n: int) -> pl.Series:
    """Concrete paths for a route template, with random identifiers in its placeholders."""
    pieces: list[pl.Expr] = []
    columns: dict[str, pl.Series] = {}
    for index, piece in enumerate(endpoint.route.split("/")):
        if piece.startswith("{"):
            columns[f"p{index}"] = ids(rng, piece, n, endpoint.hot_ids)
            pieces.append(pl.col(f"p{index}"))
        else:
            pieces.append(pl.lit(piece, dtype=pl.String))
    if not columns:
        return repeat(endpoint.route, n)
    frame = pl.DataFrame(columns)
    return frame.select(pl.concat_str(pieces, separator="/").alias("path")).to_series()


def repeat(value: str, n: int) -> pl.Series:
    return pl.select(pl.repeat(value, n, dtype=pl.String)).to_series()


def empty(schema: dict[str, pl.DataType] = SCHEMA) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def requests(
    rng: np.random.Generator,
    endpoint: Endpoint,
    ts_us: np.ndarray,
    status: np.ndarray,
    error_code: Sequence[str | None],
    *,
    path: pl.Series | None = None,
    client: pl.Series | None = None,
    user_agent: pl.Series | None = None,
) -> pl.DataFrame:
    """Base columns of planted requests on one endpoint (random where not given)."""
    n = len(ts_us)
    if path is None:
        path = paths(rng, endpoint, n)
    if client is None:
        client = pl.Series(CLIENTS).gather(pl.Series(rng.integers(0, len(CLIENTS), size=n)))
    if user_agent is None:
        user_agent = pl.Series(USER_AGENTS).gather(
            pl.Series(rng.integers(0, len(USER_AGENTS), size=n))
        )
    frame = pl.DataFrame(
        {
            "ts": pl.Series(np.asarray(ts_us, dtype=np.int64)).cast(pl.Datetime("us", "UTC")),
            "method": [endpoint.method] * n,
            "route": [endpoint.route] * n,
            "path": path,
            "query": pl.Series([None] * n, dtype=pl.String),
            "status": pl.Series(np.asarray(status, dtype=np.int64)),
            "error_code": pl.Series(list(error_code), dtype=pl.String),
            "client": client,
            "user_agent": user_agent,
            "referer": pl.Series(REFERERS).gather(
                pl.Series(rng.integers(0, len(REFERERS), size=n))
            ),
            "bytes": pl.Series(rng.integers(40, 20_000, size=n)),
            "latency_s": pl.Series(np.round(rng.gamma(2.0, 0.03, size=n), 3)),
        }
    )
    empty_body = pl.col("status").is_in([204, 304])
    frame = frame.with_columns(bytes=pl.when(empty_body).then(0).otherwise(pl.col("bytes")))
    return conform(frame, BASE_SCHEMA)


def decorate(frame: pl.DataFrame, rng: np.random.Generator, seq_start: int = 0) -> pl.DataFrame:
    """Add the per-request details (EXTRA_SCHEMA) to base columns, and give conflict
    responses the small body of a JSON error document."""
    n = frame.height
    conflict = pl.col("status").is_in(CONFLICT_STATUSES)
    writes = pl.col("method").is_in(["PUT", "PATCH"])
    routes = frame["route"].unique().to_list()
    service_of = {route: service_index(route) for route in routes}
    service = frame["route"].replace_strict(service_of, return_dtype=pl.Int64)
    sizes = np.array([s.instances for s in SERVICES])
    instance = (rng.random(n) * sizes[service.to_numpy()]).astype(np.int64)
    addresses = {
        s * 8 + i: upstream(s, i) for s, svc in enumerate(SERVICES) for i in range(svc.instances)
    }
    ms = np.rint(frame["latency_s"].to_numpy() * 1000).astype(np.int64)
    jitter = rng.integers(0, 1_000_000, size=n)
    overhead = np.minimum(rng.integers(0, 3, size=n), ms)
    version = pl.Series(rng.integers(1, 400, size=n)).cast(pl.String)
    etag = random_hex(rng, n, 16)
    sends_if_match = pl.Series(rng.random(n) < 0.6)
    body_side = pl.Series(rng.random(n) < 0.5)
    body_shape = pl.Series(rng.integers(1, 4, size=n))
    consumer_pick = rng.integers(0, len(CONSUMERS) * 2, size=n)  # half the requests: none
    consumers = pl.Series([*CONSUMERS, *([None] * len(CONSUMERS))], dtype=pl.String)
    extra = pl.DataFrame(
        {
            "client_port": rng.integers(1024, 65536, size=n),
            "request_id": random_hex(rng, n, 32),
            "req_bytes": rng.integers(60, 2400, size=n),
            "http2": rng.random(n) < 0.3,
            "service": service,
            "_slot": service * 8 + instance,
            "latency_ns": ms * 1_000_000 + jitter,
            "upstream_ms": ms - overhead,
            "nanos": rng.integers(0, 1000, size=n),
            "consumer": consumers.gather(pl.Series(consumer_pick)),
            "_small": rng.integers(90, 400, size=n),
            "_version": version,
            "_etag": etag,
            "_if_match": sends_if_match,
            "_body_side": body_side,
            "_body_shape": body_shape,
        }
    )
    quoted = (
        pl.when(pl.col("route").str.starts_with("/api/v2/documents"))
        .then(pl.col("_etag"))
        .otherwise(pl.col("_version"))
    )
    if_match = (
        pl.when(writes & (pl.col("status") == 412))
        .then(quoted)  # a stale ETag was sent
        .when(writes & (pl.col("status") != 428) & pl.col("_if_match"))
        .then(quoted)  # 428 means the client sent none
    )
    carrier = pl.when(conflict).then(
        pl.when(pl.col("_body_side")).then(pl.col("_body_shape")).otherwise(0)
    )
    out = pl.concat([frame, extra], how="horizontal").with_columns(
        req_bytes=pl.when(pl.col("method").is_in(["POST", "PUT", "PATCH"]))
        .then(pl.col("req_bytes"))
        .otherwise(0),
        http2=pl.col("http2") & ~pl.col("user_agent").str.starts_with("curl"),
        upstream=pl.col("_slot").replace_strict(addresses, return_dtype=pl.String),
        if_match=pl.concat_str(pl.lit('"'), if_match, pl.lit('"')),
        carrier=carrier,
        bytes=pl.when(conflict).then(pl.col("_small")).otherwise(pl.col("bytes")),
        seq=pl.int_range(seq_start, seq_start + n, dtype=pl.Int64),
    )
    return conform(out, SCHEMA)
