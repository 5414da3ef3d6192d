"""What every format's renderer shares: a line as a template of ``$name`` fields (as nginx's
log_format writes it), the fields most gateways log, and the helpers that write times, JSON
strings and numbers the way each gateway does.

A template is literal text with ``$name`` (or ``${name}`` where a letter follows) for a field;
``layout`` fills the fields from FIELDS and the renderer's own, row by row, in Polars.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import polars as pl

from conflictlens.sample_logs.catalog import (
    CONFLICT_STATUSES,
    ENDPOINTS,
    ERROR_MESSAGES,
    SERVICES,
    problem_type,
    upstream,
)

Formatter = Callable[[pl.DataFrame, str], pl.Series]

C = pl.col
CONFLICT = C("status").is_in(CONFLICT_STATUSES)
TARGET = pl.when(C("query").is_null()).then(C("path")).otherwise(C("path") + "?" + C("query"))
MS = C("latency_ns") // 1_000_000


def s(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def lit(text: str) -> pl.Expr:
    return pl.lit(text, dtype=pl.String)


def by_service(values: dict[int, str]) -> pl.Expr:
    return C("service").replace_strict(values, return_dtype=pl.String)


def by_upstream(values: dict[str, str]) -> pl.Expr:
    return C("upstream").replace_strict(values, return_dtype=pl.String)


HOST = by_service({i: svc.host for i, svc in enumerate(SERVICES)})
SERVICE_NAME = by_service({i: svc.name for i, svc in enumerate(SERVICES)})
INSTANCES = [(i, k, upstream(i, k)) for i, svc in enumerate(SERVICES) for k in range(svc.instances)]
HEADER_CODE = pl.when(CONFLICT & (C("carrier") == 0)).then(C("error_code"))
BODY_CODE = pl.when(CONFLICT & (C("carrier") > 0)).then(C("error_code"))
CONTENT_TYPE = (
    pl.when(CONFLICT & (C("carrier") == 3))
    .then(pl.lit("application/problem+json"))
    .when(C("path").str.ends_with(".js"))
    .then(pl.lit("application/javascript"))
    .when(C("path").str.ends_with(".ico"))
    .then(pl.lit("image/x-icon"))
    .otherwise(pl.lit("application/json"))
)


# --- values written the way a gateway writes them -----------------------------------------------


def js(expr: pl.Expr, escape: bool = True) -> pl.Expr:
    """A JSON string literal (quotes included) for a string value; ``escape=False`` when the
    values are known to hold no ``"`` or ``\\`` (see ``dirty``), which saves two passes."""
    if escape:
        expr = expr.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
            '"', '\\"', literal=True
        )
    return pl.concat_str(lit('"'), expr, lit('"'))


def dirty(frame: pl.DataFrame, *columns: str) -> bool:
    """Does any value in these columns need JSON escaping?"""
    if frame.height == 0:
        return False
    found = frame.select(
        pl.any_horizontal(C(c).str.contains(r'["\\]').fill_null(False) for c in columns).any()
    )
    return bool(found.item())


def json_values(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """The request target and user agent as JSON strings, escaped only where this frame needs
    it (the fields ``target_js`` and ``user_agent_js``)."""
    return {
        "target_js": js(TARGET, dirty(frame, "path", "query")),
        "user_agent_js": js(C("user_agent"), dirty(frame, "user_agent")),
    }


def js_or_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_null()).then(lit("null")).otherwise(js(expr, False))


def optional(expr: pl.Expr, before: str, after: str = "") -> pl.Expr:
    """``before + expr + after`` when expr is not null, else the empty string."""
    return pl.concat_str(lit(before), expr, lit(after)).fill_null("")


def seconds3(ms: pl.Expr) -> pl.Expr:
    """Milliseconds as seconds with three decimals, as nginx writes $request_time."""
    return pl.concat_str(s(ms // 1000), lit("."), s(ms % 1000).str.zfill(3))


def local(tz: str) -> pl.Expr:
    return C("ts").dt.convert_time_zone(tz)


def clf_time(tz: str) -> pl.Expr:
    return local(tz).dt.strftime("%d/%b/%Y:%H:%M:%S %z")


def iso_offset(expr: pl.Expr) -> pl.Expr:
    """``2026-11-19T10:00:00+00:00`` (nginx $time_iso8601)."""
    return expr.dt.strftime("%Y-%m-%dT%H:%M:%S%:z")


def rfc3339(expr: pl.Expr, tz: str) -> pl.Expr:
    """Go's RFC3339 (whole seconds): ``Z`` for UTC, else the numeric offset."""
    text = expr.dt.convert_time_zone(tz).dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
    return text.str.replace(r"\+00:00$", "Z") if tz == "UTC" else text


def rfc3339_nano(tz: str) -> pl.Expr:
    """The start time as Go's RFC3339Nano writes it: nanoseconds with trailing zeros trimmed
    (no fraction at all when it is zero), ``Z`` for UTC."""
    fraction = s((C("ts").dt.epoch("us") % 1_000_000) * 1000 + C("nanos")).str.zfill(9)
    fraction = fraction.str.strip_chars_end("0")
    dot = pl.when(fraction == "").then(lit("")).otherwise(lit("."))
    stamp = local(tz)
    offset = lit("Z") if tz == "UTC" else stamp.dt.strftime("%:z")
    return pl.concat_str(stamp.dt.strftime("%Y-%m-%dT%H:%M:%S"), dot, fraction, offset)


def go_float(ns: pl.Expr, scale: int) -> pl.Expr:
    """An integer count of 1/scale units as Go's strconv 'f', -1 prints it (seconds)."""
    digits = len(str(scale)) - 1
    frac = s(ns % scale).str.zfill(digits).str.strip_chars_end("0")
    return pl.concat_str(s(ns // scale), pl.when(frac == "").then(lit("")).otherwise("." + frac))


def http_version(h2: str, h1: str = "HTTP/1.1") -> pl.Expr:
    return pl.when(C("http2")).then(lit(h2)).otherwise(lit(h1))


def request_id_uuid() -> pl.Expr:
    h = C("request_id")
    pieces = ((0, 8, ""), (8, 4, "-"), (13, 3, "-4"), (17, 3, "-a"), (20, 12, "-"))
    return pl.concat_str([p for at, n, sep in pieces for p in (lit(sep), h.str.slice(at, n))])


def _error_documents() -> tuple[dict[str, str], dict[str, int]]:
    """Key "<carrier>|<code>" → the JSON error document a service returns, as a JSON string
    literal, and the document's length in bytes."""
    docs: dict[str, str] = {}
    lengths: dict[str, int] = {}
    for ep in ENDPOINTS:
        for status, code, _, _ in ep.conflicts:
            message = ERROR_MESSAGES[code]
            title = code.replace("_", " ").capitalize()
            shapes = {
                1: {"error": {"code": code, "message": message}},
                2: {"code": code, "message": message},
                3: {"type": problem_type(code), "title": title, "status": status},
            }
            for carrier, doc in shapes.items():
                text = json.dumps(doc, separators=(",", ":"))
                docs[f"{carrier}|{code}"] = json.dumps(text)
                lengths[f"{carrier}|{code}"] = len(text.encode())
    return docs, lengths


ERROR_DOCUMENTS, ERROR_DOCUMENT_LENGTHS = _error_documents()
BODY_KEY = pl.concat_str(s(C("carrier")), lit("|"), BODY_CODE)
BODY = BODY_KEY.replace_strict(ERROR_DOCUMENTS, default=None, return_dtype=pl.String)
BODY_LENGTH = BODY_KEY.replace_strict(ERROR_DOCUMENT_LENGTHS, default=None, return_dtype=pl.Int64)


# --- templates ------------------------------------------------------------------------------------

# The fields most formats log; a renderer adds its own (times in its time zone, its extras).
FIELDS: dict[str, pl.Expr] = {
    "client": C("client"),
    "port": s(C("client_port")),
    "method": C("method"),
    "target": TARGET,
    "proto": http_version("HTTP/2.0"),
    "envoy_proto": http_version("HTTP/2"),
    "status": s(C("status")),
    "bytes": s(C("bytes")),
    "req_bytes": s(C("req_bytes")),
    "referer": C("referer"),
    "user_agent": C("user_agent"),
    "host": HOST,
    "service": SERVICE_NAME,
    "upstream": C("upstream"),
    "ms": s(MS),
    "upstream_ms": s(C("upstream_ms")),
    "request_time": seconds3(MS),
    "latency_ns": s(C("latency_ns")),
    "request_id": C("request_id"),
    "request_uuid": request_id_uuid(),
    "code_or_dash": C("error_code").fill_null("-"),
    "content_type": CONTENT_TYPE,
    "header_code": optional(js(HEADER_CODE, False), ',"x-error-code":'),
}
# nginx "combined" with the protocol logged as sent (HTTP/1.1 or HTTP/2.0): the start of
# ingress-nginx's and Traefik's text lines.
COMBINED = '$client - - [$time] "$method $target $proto" $status $bytes "$referer" "$user_agent"'
PLACEHOLDER = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def template_parts(template: str, fields: dict[str, pl.Expr]) -> list[pl.Expr]:
    """The template's literal text and its fields' expressions, in order."""
    known = {**FIELDS, **fields}
    parts: list[pl.Expr] = []
    at = 0
    for found in PLACEHOLDER.finditer(template):
        if found.start() > at:
            parts.append(lit(template[at : found.start()]))
        parts.append(known[found.group(1) or found.group(2)])
        at = found.end()
    if at < len(template):
        parts.append(lit(template[at:]))
    return parts


def layout(frame: pl.DataFrame, template: str, **fields: pl.Expr) -> pl.Series:
    """The frame's rows written as ``template`` (fields from FIELDS and ``fields``)."""
    return lines(frame, template_parts(template, fields))


def lines(frame: pl.DataFrame, parts: list[pl.Expr]) -> pl.Series:
    """Concatenate the parts row by row (in two halves, which Polars builds in parallel)."""
    half = len(parts) // 2
    if half < 4:
        return frame.select(pl.concat_str(parts).alias("line")).to_series()
    return (
        frame.lazy()
        .select(pl.concat_str(parts[:half]).alias("a"), pl.concat_str(parts[half:]).alias("b"))
        .select(pl.concat_str("a", "b").alias("line"))
        .collect()
        .to_series()
    )
