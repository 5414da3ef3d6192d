"""Realistic gateway traffic with known ground truth, written as access-log lines.

Vectorized (numpy + Polars), so that the benchmark's 8M-line logs take seconds to write. The
ground truth returned (and written beside the log as JSON) is computed from the very columns
the lines were formatted from: conflicts per (method, route, status, error code) and requests
per (method, route), with routes as conflictlens should template them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ingest.formats.clf import NGINX_EXTENDED as EXTENDED_LOG_FORMAT

LINE_STYLES = (
    "nginx-extended",
    "nginx-combined",
    "nginx-common",
    "apache-combined",
    "apache-common",
)
__all__ = [
    "EXTENDED_LOG_FORMAT",
    "LINE_STYLES",
    "format_lines",
    "ground_truth",
    "traffic",
    "write_log",
]


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # the template conflictlens should produce
    weight: float  # share of all traffic
    conflict_rate: float  # share of this endpoint's requests answered with a conflict
    conflicts: tuple[tuple[int, str, float], ...] = ()  # (status, error code, weight)
    hot_ids: bool = False  # ids drawn from a few hot resources (contention)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/users/{id}", 0.16, 0.0),
    Endpoint(
        "PUT",
        "/api/v1/users/{id}",
        0.05,
        0.08,
        ((409, "VERSION_MISMATCH", 0.9), (428, "PRECONDITION_REQUIRED", 0.1)),
    ),
    Endpoint(
        "POST",
        "/api/v1/users",
        0.04,
        0.12,
        ((409, "EMAIL_TAKEN", 0.8), (409, "USERNAME_ALREADY_EXISTS", 0.2)),
    ),
    Endpoint("GET", "/api/v1/orders/{uuid}", 0.12, 0.0),
    Endpoint(
        "POST",
        "/api/v1/orders/{uuid}/cancel",
        0.03,
        0.25,
        ((409, "ORDER_ALREADY_SHIPPED", 0.7), (409, "INVALID_STATE_TRANSITION", 0.3)),
    ),
    Endpoint(
        "PATCH",
        "/api/v2/documents/{hex}",
        0.05,
        0.15,
        ((409, "VERSION_MISMATCH", 0.7), (412, "ETAG_MISMATCH", 0.3)),
        hot_ids=True,
    ),
    Endpoint(
        "PUT", "/api/v2/carts/{id}/items/{id}", 0.06, 0.05, ((409, "CART_VERSION_CONFLICT", 1.0),)
    ),
    Endpoint(
        "DELETE",
        "/api/v1/projects/{id}",
        0.01,
        0.2,
        ((409, "PROJECT_HAS_CHILDREN", 0.6), (409, "RESOURCE_IN_USE", 0.4)),
    ),
    Endpoint("POST", "/api/v1/locks/{ulid}", 0.01, 0.2, ((423, "RESOURCE_LOCKED", 1.0),)),
    Endpoint("GET", "/api/v1/accounts/{email}/settings", 0.03, 0.0),
    Endpoint(
        "POST",
        "/api/v1/payments/{id}/capture",
        0.02,
        0.06,
        ((409, "PAYMENT_ALREADY_CAPTURED", 1.0),),
    ),
    Endpoint("GET", "/api/v1/reports/{date}", 0.02, 0.0),
    Endpoint("GET", "/api/v1/search", 0.10, 0.0),
    Endpoint("GET", "/static/app.js", 0.08, 0.0),
    Endpoint("GET", "/health", 0.12, 0.0),
    Endpoint("GET", "/favicon.ico", 0.10, 0.0),
)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "axios/1.7.7",
    "Apache-HttpClient/5.3.1 (Java/21.0.5)",
    "PostmanRuntime/7.42.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)",
    "MyShopApp/5.12.1 (iOS 17.6; iPhone15,2)",
)
REFERERS = (
    "-",
    "-",
    "-",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://app.example.com/projects",
)
OK_STATUSES = {
    "GET": (200, 304, 404),
    "POST": (201, 200, 400),
    "PUT": (200, 204, 404),
    "PATCH": (200, 204, 404),
    "DELETE": (204, 404, 403),
}
OK_WEIGHTS = (0.93, 0.04, 0.03)
CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)


def _random_hex(rng: np.random.Generator, n: int, chars: int) -> pl.Series:
    raw = rng.integers(0, 256, size=n * ((chars + 1) // 2), dtype=np.uint8).tobytes()
    width = (chars + 1) // 2
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
    text = pl.Series(arr.cast(pa.binary())).bin.encode("hex").str.slice(0, chars)
    # A leading digit keeps every id recognisably an id (no all-letter "deadbeef").
    first = pl.Series(rng.integers(1, 10, size=n)).cast(pl.String)
    return first + text.str.slice(1)


def _uuid(rng: np.random.Generator, n: int) -> pl.Series:
    h = _random_hex(rng, n, 32)
    pieces = [
        h.str.slice(0, 8),
        h.str.slice(8, 4),
        h.str.slice(12, 4),
        h.str.slice(16, 4),
        h.str.slice(20, 12),
    ]
    return pl.select(pl.concat_str(pieces, separator="-")).to_series()


def _ulid(rng: np.random.Generator, n: int) -> pl.Series:
    codes = CROCKFORD[rng.integers(0, 32, size=(n, 26))]
    codes[:, 0] = CROCKFORD[rng.integers(0, 8, size=n)]
    codes[:, 1] = CROCKFORD[rng.integers(0, 10, size=n)]  # a digit, as real ULIDs have
    arr = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(26), n, [None, pa.py_buffer(codes.tobytes())]
    )
    return pl.Series(arr.cast(pa.binary())).cast(pl.String)


def _ids(rng: np.random.Generator, kind: str, n: int, hot: bool) -> pl.Series:
    if kind == "{id}":
        if hot:
            return pl.Series(rng.zipf(1.6, size=n) % 500 + 1).cast(pl.String)
        return pl.Series(rng.integers(1, 5_000_000, size=n)).cast(pl.String)
    if kind == "{uuid}":
        return _uuid(rng, n)
    if kind == "{hex}":
        if hot:
            pool = _random_hex(rng, 200, 24)
            return pool.gather(pl.Series(rng.zipf(1.5, size=n) % 200))
        return _random_hex(rng, n, 24)
    if kind == "{ulid}":
        return _ulid(rng, n)
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


def _paths(rng: np.random.Generator, endpoint: Endpoint, n: int) -> pl.Series:
    pieces = endpoint.route.split("/")
    columns: list[pl.Series] = []
    for piece in pieces:
        if piece.startswith("{"):
            columns.append(_ids(rng, piece, n, endpoint.hot_ids))
        else:
            columns.append(pl.Series([piece] * n) if n else pl.Series([], dtype=pl.String))
    frame = pl.DataFrame({f"p{i}": c for i, c in enumerate(columns)})
    return frame.select(pl.concat_str(pl.all(), separator="/")).to_series()


def traffic(
    lines: int, *, seed: int = 7, end: dt.datetime | None = None, hours: float = 24.0
) -> pl.DataFrame:
    """The generated requests as typed columns (one row per log line, in time order)."""
    rng = np.random.default_rng(seed)
    end = end or dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    weights = np.array([e.weight for e in ENDPOINTS])
    which = rng.choice(len(ENDPOINTS), size=lines, p=weights / weights.sum())
    parts: list[pl.DataFrame] = []
    for index, endpoint in enumerate(ENDPOINTS):
        rows = np.flatnonzero(which == index)
        n = len(rows)
        if not n:
            continue
        ok = np.asarray(OK_STATUSES[endpoint.method])[rng.choice(3, size=n, p=OK_WEIGHTS)]
        status = ok.astype(np.int64)
        code = np.full(n, None, dtype=object)
        if endpoint.conflicts:
            conflict = rng.random(n) < endpoint.conflict_rate
            kinds = rng.choice(
                len(endpoint.conflicts), size=n, p=[c[2] for c in endpoint.conflicts]
            )
            for k, (st, err, _) in enumerate(endpoint.conflicts):
                pick = conflict & (kinds == k)
                status[pick] = st
                code[pick] = err
        paths = _paths(rng, endpoint, n)
        query = None
        if endpoint.route == "/api/v1/search":
            query = (
                "q=" + pl.Series(rng.integers(1, 10_000, size=n)).cast(pl.String) + "&token=secret"
            )
        parts.append(
            pl.DataFrame(
                {
                    "row": rows,
                    "method": [endpoint.method] * n,
                    "route": [endpoint.route] * n,
                    "path": paths,
                    "query": query if query is not None else pl.Series([None] * n, dtype=pl.String),
                    "status": status,
                    "error_code": pl.Series(code.tolist(), dtype=pl.String),
                }
            )
        )
    frame = pl.concat(parts).sort("row")
    empty_body = pl.col("status").is_in([204, 304])
    start_us = int((end.timestamp() - hours * 3600) * 1e6)
    offsets = np.sort(rng.integers(0, int(hours * 3600 * 1e6), size=lines))
    ips = rng.integers(0, 6000, size=lines)
    return frame.with_columns(
        ts=pl.Series(start_us + offsets).cast(pl.Datetime("us", "UTC")),
        client=pl.Series(
            [f"10.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 250 + 1}" for i in range(6000)]
        ).gather(pl.Series(ips)),
        user_agent=pl.Series(USER_AGENTS).gather(
            pl.Series(rng.integers(0, len(USER_AGENTS), size=lines))
        ),
        referer=pl.Series(REFERERS).gather(pl.Series(rng.integers(0, len(REFERERS), size=lines))),
        bytes=pl.Series(rng.integers(40, 20_000, size=lines)),
        latency_s=pl.Series(np.round(rng.gamma(2.0, 0.03, size=lines), 3)),
    ).with_columns(bytes=pl.when(empty_body).then(0).otherwise(pl.col("bytes")))


def format_lines(frame: pl.DataFrame, style: str = "nginx-combined", tz: str = "UTC") -> pl.Series:
    """Format generated requests as access-log lines (without newlines)."""
    if style not in LINE_STYLES:
        raise ValueError(f"unknown line style {style!r}; known: {', '.join(LINE_STYLES)}")
    apache = style.startswith("apache")
    target = (
        pl.when(pl.col("query").is_null())
        .then(pl.col("path"))
        .otherwise(pl.col("path") + "?" + pl.col("query"))
    )
    size = pl.col("bytes").cast(pl.String)
    if apache:  # Apache's %b writes "-" for an empty body
        size = pl.when(pl.col("bytes") == 0).then(pl.lit("-")).otherwise(size)
    parts = [
        pl.col("client"),
        pl.lit(" - - ["),
        pl.col("ts").dt.convert_time_zone(tz).dt.strftime("%d/%b/%Y:%H:%M:%S %z"),
        pl.lit('] "'),
        pl.col("method"),
        pl.lit(" "),
        target,
        pl.lit(' HTTP/1.1" '),
        pl.col("status").cast(pl.String),
        pl.lit(" "),
        size,
    ]
    if not style.endswith("common"):
        parts += [pl.lit(' "'), pl.col("referer"), pl.lit('" "'), pl.col("user_agent"), pl.lit('"')]
    if style == "nginx-extended":
        parts += [
            pl.lit(" "),
            pl.col("latency_s").round(3).cast(pl.String),
            pl.lit(' "'),
            pl.col("error_code").fill_null("-"),
            pl.lit('"'),
        ]
    return frame.select(pl.concat_str(parts).alias("line")).to_series()


def ground_truth(frame: pl.DataFrame, style: str) -> dict[str, Any]:
    conflicts = (
        frame.filter(pl.col("status").is_in([409, 412, 423, 428]))
        .group_by("method", "route", "status", "error_code")
        .agg(pl.len().alias("conflicts"))
        .sort("method", "route", "status", "error_code")
    )
    if style != "nginx-extended":  # only the extended format carries the error code
        conflicts = (
            conflicts.group_by("method", "route", "status")
            .agg(pl.col("conflicts").sum())
            .with_columns(error_code=pl.lit(None, pl.String))
            .sort("method", "route", "status")
        )
    requests = (
        frame.group_by("method", "route").agg(pl.len().alias("requests")).sort("method", "route")
    )
    return {
        "lines": frame.height,
        "from": frame["ts"].min().isoformat() if frame.height else None,  # type: ignore[union-attr]
        "to": frame["ts"].max().isoformat() if frame.height else None,  # type: ignore[union-attr]
        "conflicts": int(conflicts["conflicts"].sum()),
        "conflicts_by_cluster": conflicts.to_dicts(),
        "requests_by_route": requests.to_dicts(),
    }


def write_log(
    out: str | Path,
    lines: int,
    *,
    style: str = "nginx-combined",
    seed: int = 7,
    tz: str = "UTC",
    end: dt.datetime | None = None,
    hours: float = 24.0,
    batch: int = 500_000,
) -> dict[str, Any]:
    """Write ``lines`` lines to ``out`` and ``out``.truth.json; return the ground truth."""
    out = Path(out)
    truth_parts: list[pl.DataFrame] = []
    span = hours / max(1, -(-lines // batch))
    end = end or dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    batches = max(1, -(-lines // batch))
    with out.open("wb") as handle:
        for number in range(batches):
            n = min(batch, lines - number * batch)
            if n <= 0:
                break
            batch_end = end - dt.timedelta(hours=span * (batches - number - 1))
            frame = traffic(n, seed=seed + number, end=batch_end, hours=span)
            text = format_lines(frame, style, tz).str.join("\n").item() + "\n"
            handle.write(text.encode())
            truth_parts.append(frame.select("method", "route", "status", "error_code", "ts"))
    truth = ground_truth(pl.concat(truth_parts), style)
    truth["style"] = style
    Path(f"{out}.truth.json").write_text(json.dumps(truth, indent=1, default=str) + os.linesep)
    return truth


def write_samples(folder: str | Path, lines: int = 400) -> list[Path]:
    """The small per-format samples kept in sample_logs/ (regenerate with `make samples`)."""
    folder = Path(folder)
    written = []
    for number, style in enumerate(LINE_STYLES):
        out = folder / f"{style}.log"
        tz = "Europe/Berlin" if style.startswith("apache") else "UTC"
        write_log(out, lines, style=style, seed=100 + number, tz=tz)
        written.append(out)
    return written


if __name__ == "__main__":
    for path in write_samples(Path(__file__).parent):
        print(f"wrote {path}")
