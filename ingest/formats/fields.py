"""Turning raw captured strings into the canonical event columns, as Polars expressions.

Every format captures strings into *canonical raw fields* (``client``, ``time_clf``,
``request``, ``status`` ...); this module converts them, whatever format they came from, into
the typed columns of a parsed line. Conversions never raise: a value that does not convert
becomes null and the line gets a reject reason.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Set as AbstractSet

import numpy as np
import polars as pl

from conflictlens.ingest.formats.clients import (
    absent,
    client_expression,
    client_hosts,
    normalise_clients,
    pick_clients,
)
from conflictlens.ingest.formats.scan import (
    REQUEST_PARTS,
    REQUEST_SPLIT,
    byte_set,
    split_once,
    with_bytes,
)
from conflictlens.ingest.formats.times import clf_times, iso_times

_BACKSLASH = byte_set(b"\\")
_PERCENT = byte_set(b"%")

# Canonical raw fields a format may capture.
RAW_FIELDS = frozenset(
    {
        "client",
        "client_hostport",  # "ip:port" or "[v6]:port" (Envoy, HAProxy, ELB)
        "forwarded_for",
        "time_clf",  # 10/Oct/2000:13:55:36 -0700
        "time_nozone",  # 10/Oct/2000:13:55:36.123, taken as UTC (HAProxy accept date)
        "time_iso",  # ISO-8601 / RFC 3339 with offset or Z
        "time_epoch",  # seconds since the epoch, maybe fractional
        "time_epoch_ms",  # milliseconds since the epoch (Kong)
        "request",
        "method",
        "target",
        "path",
        "query",
        "status",
        "bytes",
        "user_agent",
        "latency_s",
        "latency_ms",
        "latency_us",
        "latency_ns",
        "upstream",
        "service",
        "host",
        "request_id",
        "error_code",
        "if_match",
        "if_unmodified_since",
    }
)

PARSED_COLUMNS: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us"),
    "method": pl.String(),
    "path": pl.String(),
    "query": pl.String(),
    "status": pl.Int16(),
    "bytes": pl.Int64(),
    "latency_ms": pl.Float64(),
    "client": pl.String(),
    "user_agent": pl.String(),
    "error_code": pl.String(),
    "service": pl.String(),
    "upstream": pl.String(),
    "request_id": pl.String(),
    "if_match": pl.String(),
}

# A request line split only at its outer spaces: targets may contain spaces, and a line may
# hold no request at all ("", "-", "hello", TLS bytes), which is not a reason to drop it.
METHOD = r"^[A-Za-z][A-Za-z0-9_-]*$"
# HTTP/1.1, and the bare scheme some proxies write instead (Traefik: "GET /foo http").
_PROTOCOL = r"(?:[A-Za-z]+/[0-9.]+|(?i:https?))"
PROTOCOL = rf"^{_PROTOCOL}$"
# The slower fallback for the rare target with spaces in it (ALB "SpaceInUri"), and for a
# protocol the compiled scanner does not take (it reads NAME/VERSION only).
REQUEST_LINE_SPACES = rf"^(?P<method>[A-Za-z][A-Za-z0-9_-]*) (?P<target>.+?)(?: {_PROTOCOL})?$"
PROXY_PROTOCOL = r"^PROXY (?:TCP4|TCP6|UNKNOWN)(?: |$)"
ABSOLUTE_URI_PREFIX = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*"
# The same with its host gone and one slash left ("https:/vent", as a reporter's redaction left
# an ALB line): the rest is the path.
SCHEME_BEFORE_PATH = r"^(?i:https?):/"
# CONNECT's target: a host (or a bracketed IPv6 address) and a port.
AUTHORITY_FORM = r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$"

# One pass over both dialects, so that an escaped backslash is never read as the start of
# another escape: nginx \xHH (\x5C is a backslash), Apache \xhh, \" and \\.
_ESCAPE = re.compile(rb'\\(?:x([0-9A-Fa-f]{2})|(["\\nrt]))')
_C_ESCAPES = {b'"': b'"', b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def unescape_log_value(value: str) -> str:
    """Undo nginx (``\\xHH``) and Apache (``\\xhh``, ``\\"``, ``\\\\``) escaping of one value.

    Escaped bytes are re-assembled first, so an escaped UTF-8 sequence becomes its character;
    bytes that are still not UTF-8 become U+FFFD.
    """
    raw = _ESCAPE.sub(_unescape_match, value.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def _unescape_match(match: re.Match[bytes]) -> bytes:
    if match.group(1) is not None:
        return bytes([int(match.group(1), 16)])
    return _C_ESCAPES[match.group(2)]


def unescape_columns(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Unescape the few values that hold a backslash; the rest pass through untouched."""
    if not columns:
        return frame
    if "line" in frame.columns and not with_bytes(frame["line"], _BACKSLASH).any():
        return frame  # one pass over the lines instead of one per column (the usual case)
    for name in columns:
        if name not in frame.columns:
            continue
        column = frame[name]
        rows = np.flatnonzero(with_bytes(column, _BACKSLASH))
        if not len(rows):
            continue
        fixed = [unescape_log_value(v) for v in column.gather(rows).to_list()]
        frame = frame.with_columns(column.scatter(rows, fixed))
    return frame


def split_request_line(frame: pl.DataFrame) -> pl.DataFrame:
    """``request`` → ``_rq_method``, ``_rq_target``, except on the lines the compiled scanner
    already split (``_rq_split``, see scan.scan)."""
    if REQUEST_SPLIT not in frame.columns:
        return _split_request_lines(frame)
    rows = (~frame[REQUEST_SPLIT]).arg_true()
    if not len(rows):
        return frame
    rest = _split_request_lines(frame.select("request").gather(rows))
    return frame.with_columns([frame[name].scatter(rows, rest[name]) for name in REQUEST_PARTS])


def _split_request_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """``request`` → ``_rq_method``, ``_rq_target``.

    Split at the first two spaces (2-3x faster than a regex); the rare line that does not
    come out as METHOD TARGET [PROTOCOL] (a target with spaces, "-", TLS bytes) is retried
    with the full regex, which leaves the method and target null when there is no request.
    """
    frame = frame.with_columns(pl.col("request").str.splitn(" ", 3).alias("_rq"))
    method, target, protocol = (pl.col("_rq").struct.field(f"field_{i}") for i in range(3))
    well_formed = (
        method.str.contains(METHOD)
        & target.is_not_null()
        & (protocol.is_null() | protocol.str.contains(PROTOCOL))
    ).fill_null(False)
    frame = frame.with_columns(
        pl.when(well_formed).then(method).alias("_rq_method"),
        pl.when(well_formed).then(target).alias("_rq_target"),
    )
    # (a PROXY protocol header logged as the request, "PROXY TCP4 a b c d", is no request)
    request = frame["request"]
    retry = (
        frame["_rq_method"].is_null()
        & request.str.contains(" ", literal=True)
        & ~request.str.contains(PROXY_PROTOCOL)
    ).fill_null(False)
    if retry.any():
        rows = retry.arg_true()
        groups = frame["request"].gather(rows).str.extract_groups(REQUEST_LINE_SPACES).struct
        frame = frame.with_columns(
            frame["_rq_method"].scatter(rows, groups.field("method")),
            frame["_rq_target"].scatter(rows, groups.field("target")),
        )
    return frame


def _relative_paths(frame: pl.DataFrame) -> pl.DataFrame:
    """``http://host/x`` → ``/x``, an empty path → ``/`` and ``host:443`` → none, only on the
    rows that need it."""
    paths = frame["_path"]
    odd = ~paths.str.starts_with("/").fill_null(True)
    if not odd.any():
        return frame
    rows = odd.arg_true()
    fixed = paths.gather(rows).str.replace(ABSOLUTE_URI_PREFIX, "")
    fixed = fixed.str.replace(SCHEME_BEFORE_PATH, "/")
    fixed = pl.select(
        # CONNECT's target is a host and port (authority-form, RFC 9110 9.3.6): no path.
        pl.when(fixed.str.contains(AUTHORITY_FORM))
        .then(pl.lit(None, dtype=pl.String))
        .when(fixed == "")
        .then(pl.lit("/"))
        .otherwise(fixed)
    ).to_series()
    return frame.with_columns(paths.scatter(rows, fixed))


def _text(raw: AbstractSet[str], name: str) -> pl.Expr:
    return absent(pl.col(name)) if name in raw else pl.lit(None, dtype=pl.String)


def _timestamp(raw: AbstractSet[str]) -> pl.Expr:
    candidates: list[pl.Expr] = []
    if "time_clf" in raw:
        candidates.append(pl.col("_time_clf"))  # see convert
    if "time_iso" in raw:
        candidates.append(pl.col("_time_iso"))
    if "time_nozone" in raw:
        candidates.append(
            pl.col("time_nozone").str.strptime(
                pl.Datetime("us"), "%d/%b/%Y:%H:%M:%S%.f", strict=False
            )
        )
    for name, digits in (("time_epoch", 6), ("time_epoch_ms", 3)):
        if name in raw:
            candidates.append(_epoch_micros(pl.col(name), digits).cast(pl.Datetime("us")))
    if not candidates:
        return pl.lit(None, dtype=pl.Datetime("us"))
    return pl.coalesce(candidates)


def _epoch_micros(text: pl.Expr, digits: int) -> pl.Expr:
    """Microseconds from a decimal count of seconds (``digits`` = 6) or milliseconds (3), cut,
    not rounded, to the microsecond. Through a double, which holds a time of the epoch with
    six decimals to 0.2 µs, so rounding gives the exact microsecond; longer fractions
    (Caddy's ``1629470295.0802214``) are cut to six decimals first, where no exponent says
    the digits mean something else. (String lengths and a slice: this runs on every line.)"""
    point = text.str.find(".", literal=True)
    long = (text.str.len_bytes() - point - 1 > digits) & ~text.str.contains("e", literal=True)
    cut = pl.when(long.fill_null(False)).then(text.str.slice(0, point + 1 + digits))
    number: pl.Expr = pl.coalesce(cut, text).cast(pl.Float64, strict=False) * 10**digits
    return number.round().cast(pl.Int64, strict=False)


LATENCY_FIELDS = frozenset({"latency_ms", "latency_s", "latency_us", "latency_ns"})


def _latency_ms(raw: AbstractSet[str]) -> pl.Expr:
    parts: list[pl.Expr] = []
    scale = {"latency_ms": 1.0, "latency_s": 1000.0, "latency_us": 0.001, "latency_ns": 1e-6}
    for name, factor in scale.items():
        if name in raw:
            # (only the first of nginx's times per upstream try is left: see convert)
            first = pl.col(name).str.strip_chars()
            parts.append(first.cast(pl.Float64, strict=False) * factor)
    return pl.coalesce(parts) if parts else pl.lit(None, dtype=pl.Float64)


# X-Forwarded-For names the client behind the proxies; remote_addr is the last hop.
def decode_paths(frame: pl.DataFrame) -> pl.DataFrame:
    """Percent-decode the paths that hold a %, as Filebeat and most log tools show them."""
    paths = frame["_path"]
    rows = np.flatnonzero(with_bytes(paths, _PERCENT))
    if not len(rows):
        return frame
    decoded = [urllib.parse.unquote(v, errors="replace") for v in paths.gather(rows).to_list()]
    return frame.with_columns(paths.scatter(rows, pl.Series(decoded, dtype=pl.String)))


def convert(frame: pl.DataFrame, raw: set[str], unescape: list[str]) -> pl.DataFrame:
    """Canonical raw strings → typed parsed columns (see PARSED_COLUMNS)."""
    raw = present(frame, raw)
    frame = unescape_columns(frame, [c for c in unescape if c in raw])
    if "request" in raw:
        frame = split_request_line(frame)
    target = _text(raw, "target")
    if "request" in raw:
        target = pl.coalesce(target, pl.col("_rq_target"))
    # Eager Polars evaluates a reused expression once per use: intermediate results that are
    # used twice are materialised as columns.
    # (with_columns: a target that is a null literal still gives one value per line)
    target_path, target_query = split_once(frame.with_columns(_target=target)["_target"], "?")
    frame = frame.with_columns(
        target_path.alias("_target_path"), target_query.alias("_target_query")
    )
    frame = frame.with_columns(
        pl.coalesce(_text(raw, "path"), pl.col("_target_path")).alias("_path")
    )
    frame = decode_paths(_relative_paths(frame))
    frame = normalise_clients(client_hosts(pick_clients(frame, raw), raw), raw)
    if "time_iso" in raw:
        frame = frame.with_columns(iso_times(frame["time_iso"]).alias("_time_iso"))
    if "time_clf" in raw:
        frame = frame.with_columns(clf_times(frame["time_clf"]).alias("_time_clf"))
    # nginx lists one time per upstream try ("0.001, 0.002"); the first is the client's.
    for name in LATENCY_FIELDS & raw:
        frame = frame.with_columns(split_once(frame[name], ",")[0].alias(name))
    # Methods stay as logged: HTTP methods are case-sensitive, and "geti" or "PATCHp" is a
    # client's mistake the server answered (400), not a GET or a PATCH.
    return frame.with_columns(**_parsed_columns(frozenset(raw)))


@functools.cache
def _parsed_columns(raw: frozenset[str]) -> dict[str, pl.Expr]:
    """The parsed columns' expressions over the raw fields present: built once per set of
    fields (building them took a few milliseconds of every chunk)."""
    method = _text(raw, "method")
    if "request" in raw:
        method = pl.coalesce(method, pl.col("_rq_method"))
    path = pl.col("_path")
    query = pl.coalesce(_text(raw, "query").str.strip_prefix("?"), pl.col("_target_query"))
    # "-" means no response was sent (Apache, aborted requests): 0, as Envoy logs it, which
    # reject_reason turns into a reject that says so.
    status = (
        pl.when(pl.col("status") == "-")
        .then(pl.lit(0, pl.Int16))
        .otherwise(pl.col("status").cast(pl.Int16, strict=False))
        if "status" in raw
        else pl.lit(None, pl.Int16)
    )
    size = (
        pl.when(pl.col("bytes") == "-")
        .then(pl.lit("0"))
        .otherwise(pl.col("bytes"))
        .cast(pl.Int64, strict=False)
        if "bytes" in raw
        else pl.lit(None, pl.Int64)
    )
    service = pl.coalesce(_text(raw, "service"), _text(raw, "host"))
    columns: dict[str, pl.Expr] = {
        "ts": _timestamp(raw),
        "method": method,  # in capitals: see capital_methods
        "path": path,
        "query": query,
        "status": status,
        "bytes": size,
        "latency_ms": _latency_ms(raw),
        "client": client_expression(raw),
        "user_agent": _text(raw, "user_agent"),
        "error_code": _text(raw, "error_code"),
        "service": service,
        "upstream": _text(raw, "upstream"),
        "request_id": _text(raw, "request_id"),
        "if_match": pl.coalesce(_text(raw, "if_match"), _text(raw, "if_unmodified_since")),
    }
    return {k: v.cast(PARSED_COLUMNS[k]) for k, v in columns.items()}


def present(frame: pl.DataFrame, raw: set[str]) -> set[str]:
    """The raw fields with a value on some line. A field without any converts exactly as an
    absent one (null, or skipped by a coalesce), so it is left out: JSON formats list many
    alternative fields, of which a chunk usually has one, and converting nulls still costs
    a pass over the chunk (two regex passes for client_hostport)."""
    columns = set(frame.columns)
    return {n for n in raw if n not in columns or frame[n].null_count() < frame.height}


EMPTY_LINE = "empty line"
# Reasons for a line that is the format's own, but holds no HTTP request: detection counts
# such lines as recognised (a TCP listener's log is still a classic ELB log).
TCP_LISTENER = "TCP/SSL listener entry, no HTTP request"
# Status "-" (Apache, Traefik, ALB), 0 (Envoy) or -1 (HAProxy): the connection ended before
# any response was sent, so there is no status to count or classify.
NO_RESPONSE = "no response status: the connection ended before a response was sent"
NO_REQUEST = "connection entry without an HTTP request or response"
RECOGNISED_REJECTS = (TCP_LISTENER, NO_RESPONSE, NO_REQUEST)


NOT_RECOGNISED = "not an access-log entry of any known format (pass --format or --log-format)"

# Lines that are a gateway's or a server's own messages, not access entries: their reject
# says what they are, so that a user knows the file is right and the line is not lost.
KNOWN_OTHER_LINES: tuple[tuple[str, str], ...] = (
    (r"^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+\]\[[0-9]+\]\[[a-z]+\]", "Envoy's own log line"),
    (
        r"haproxy\[[0-9]+\]: (?:Proxy|Stopping|Pausing|Server|Backend|Health check) ",
        "HAProxy message",
    ),
    (
        r"\] \S+: (?:Connection closed|SSL handshake failure|Timeout during SSL handshake)",
        "HAProxy connection error",
    ),
    (
        r"^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} \[(?:emerg|alert|crit|error|warn|notice|info|debug)\]",
        "nginx error-log line",
    ),
    (
        r"^\[[^\]]+\] \[(?:[a-z_0-9]+:)?(?:emerg|alert|crit|error|warn|notice|info|debug|trace[1-8])\]",
        "Apache error-log line",
    ),
    (r'^time="[^"]*" level=[a-z]+ ', "Traefik's own log line"),
    (
        r'^\{.*"level":"[a-z]+".*"(?:msg|message)":',
        "the gateway's own log line (JSON with a level)",
    ),
    (r"^(?:nginx|/docker-entrypoint)[^ ]*: ", "container start-up message"),
)


def named_rejects(frame: pl.DataFrame) -> pl.DataFrame:
    """Give the lines no format took (NOT_RECOGNISED, "does not match ...") the name of what
    they are, where KNOWN_OTHER_LINES knows it; only those lines are looked at."""
    reject = frame["reject"]
    unmatched = (reject.str.starts_with("does not match") | (reject == NOT_RECOGNISED)).fill_null(
        False
    )
    if not unmatched.any():
        return frame
    rows = unmatched.arg_true()
    lines = frame["line"].gather(rows)
    named = pl.select(
        pl.coalesce([pl.when(lines.str.contains(p)).then(pl.lit(r)) for p, r in KNOWN_OTHER_LINES])
    ).to_series()
    reasons = pl.Series(
        [
            f"{what}, not an access entry" if what else old
            for what, old in zip(named.to_list(), reject.gather(rows).to_list(), strict=True)
        ],
        dtype=pl.String,
    )
    return frame.with_columns(reject.scatter(rows, reasons))


def reject_reason(matched: pl.Expr, format_name: str) -> pl.Expr:
    """The first reason a line cannot become an event, or null when it can."""
    return (
        pl.when((pl.col("line").str.len_bytes() <= 2) & pl.col("line").str.contains(r"^\r?\n?$"))
        .then(pl.lit(EMPTY_LINE))
        .when(~matched)
        .then(pl.lit(f"does not match the {format_name} format"))
        .when(pl.col("ts").is_null())
        .then(pl.lit("invalid timestamp"))
        .when((pl.col("status") == 0) & pl.col("method").is_null())
        .then(pl.lit(NO_REQUEST))
        .when(pl.col("status") == 0)
        .then(pl.lit(NO_RESPONSE))
        .when(pl.col("status").is_null() | (pl.col("status") < 100) | (pl.col("status") > 599))
        .then(pl.lit("invalid status"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
