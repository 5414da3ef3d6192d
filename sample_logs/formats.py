"""Generated requests written as each gateway writes its access log (one line per request).

Every formatter takes the typed frame of sample_logs.columns and a time zone, and returns the
lines without newlines. Layouts follow the gateways' own formats as described in
shared/reference/gateway-log-formats.md, section 1; where a format can carry the service's error
code (a logged response header, or a logged body), every conflict response carries it.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sample_logs.catalog import (
    CONFLICT_STATUSES,
    ENDPOINTS,
    ERROR_MESSAGES,
    SERVICES,
    problem_type,
    upstream,
)
from sample_logs.columns import fixed_hex

Formatter = Callable[[pl.DataFrame, str], pl.Series]


@dataclass(frozen=True)
class Format:
    name: str
    carries_code: bool  # can a line hold the service's error code?
    body_codes: bool  # are some codes written in a logged body instead of a header?
    render: Formatter
    summary: str


# --- shared expressions ------------------------------------------------------------------------

C = pl.col
CONFLICT = C("status").is_in(CONFLICT_STATUSES)
TARGET = pl.when(C("query").is_null()).then(C("path")).otherwise(C("path") + "?" + C("query"))
MS = C("latency_ns") // 1_000_000
HOST = C("service").replace_strict(
    {i: svc.host for i, svc in enumerate(SERVICES)}, return_dtype=pl.String
)
SERVICE_NAME = C("service").replace_strict(
    {i: svc.name for i, svc in enumerate(SERVICES)}, return_dtype=pl.String
)
_INSTANCES = [
    (i, k, upstream(i, k)) for i, svc in enumerate(SERVICES) for k in range(svc.instances)
]
UPSTREAM_IP = C("upstream").replace_strict(
    {address: address.rsplit(":", 1)[0] for _, _, address in _INSTANCES}, return_dtype=pl.String
)
UPSTREAM_PORT = C("upstream").replace_strict(
    {address: address.rsplit(":", 1)[1] for _, _, address in _INSTANCES}, return_dtype=pl.String
)
SERVER_NAME = C("upstream").replace_strict(
    {address: f"{SERVICES[i].name}-{k + 1}" for i, k, address in _INSTANCES},
    return_dtype=pl.String,
)
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


def s(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def lit(text: str) -> pl.Expr:
    return pl.lit(text, dtype=pl.String)


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
    return pl.concat_str(
        h.str.slice(0, 8),
        lit("-"),
        h.str.slice(8, 4),
        lit("-4"),
        h.str.slice(13, 3),
        lit("-a"),
        h.str.slice(17, 3),
        lit("-"),
        h.str.slice(20, 12),
    )


def by_service(values: dict[int, str]) -> pl.Expr:
    return C("service").replace_strict(values, return_dtype=pl.String)


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


# --- nginx / Apache (CLF family) ---------------------------------------------------------------


def clf(style: str) -> Formatter:
    apache = style.startswith("apache")

    def render(frame: pl.DataFrame, tz: str) -> pl.Series:
        size = s(C("bytes"))
        if apache:  # Apache's %b writes "-" for an empty body
            size = pl.when(C("bytes") == 0).then(lit("-")).otherwise(size)
        # nginx "main" sits behind a proxy: remote_addr is the proxy, X-Forwarded-For the client
        parts = [
            lit(PROXY) if style == "nginx-main" else C("client"),
            lit(" - - ["),
            clf_time(tz),
            lit('] "'),
            C("method"),
            lit(" "),
            TARGET,
            lit(' HTTP/1.1" '),
            s(C("status")),
            lit(" "),
            size,
        ]
        if not style.endswith("common"):
            parts += [lit(' "'), C("referer"), lit('" "'), C("user_agent"), lit('"')]
        if style == "nginx-extended":
            parts += [
                lit(" "),
                s(C("latency_s").round(3)),
                lit(' "'),
                C("error_code").fill_null("-"),
                lit('"'),
            ]
        if style == "nginx-main":
            parts += [lit(' "'), C("client"), lit('"')]
        return lines(frame, parts)

    return render


PROXY = "172.31.0.2"


def ingress_nginx(frame: pl.DataFrame, tz: str) -> pl.Series:
    """The ingress-nginx controller's default upstreaminfo format."""
    return lines(
        frame,
        [
            C("client"),
            lit(" - - ["),
            clf_time(tz),
            lit('] "'),
            C("method"),
            lit(" "),
            TARGET,
            lit(" "),
            http_version("HTTP/2.0"),
            lit('" '),
            s(C("status")),
            lit(" "),
            s(C("bytes")),
            lit(' "'),
            C("referer"),
            lit('" "'),
            C("user_agent"),
            lit('" '),
            s(C("req_bytes") + 300),
            lit(" "),
            seconds3(MS),
            lit(" [default-"),
            SERVICE_NAME,
            lit("-8080] [] "),
            C("upstream"),
            lit(" "),
            s(C("bytes")),
            lit(" "),
            seconds3(C("upstream_ms")),
            lit(" "),
            s(C("status")),
            lit(" "),
            C("request_id"),
        ],
    )


def nginx_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """log_format json escape=json '{"time_iso8601":"$time_iso8601",…}': every value a string,
    an absent value an empty string."""
    referer = pl.when(C("referer") == "-").then(lit("")).otherwise(C("referer"))
    esc_ua, esc_target = dirty(frame, "user_agent", "referer"), dirty(frame, "path", "query")
    fields = [
        ("time_iso8601", iso_offset(local(tz))),
        ("remote_addr", C("client")),
        ("request_method", C("method")),
        ("request_uri", TARGET),
        ("status", s(C("status"))),
        ("body_bytes_sent", s(C("bytes"))),
        ("request_time", seconds3(MS)),
        ("http_referer", referer),
        ("http_user_agent", C("user_agent")),
        ("request_id", C("request_id")),
        ("upstream_addr", C("upstream")),
        ("sent_http_x_error_code", C("error_code").fill_null("")),
    ]
    escaped = {"request_uri": esc_target, "http_referer": esc_ua, "http_user_agent": esc_ua}
    parts: list[pl.Expr] = []
    for index, (key, value) in enumerate(fields):
        key_text = ("{" if index == 0 else ",") + f'"{key}":'
        parts += [lit(key_text), js(value, escaped.get(key, False))]
    return lines(frame, [*parts, lit("}")])


# --- Traefik -----------------------------------------------------------------------------------

ROUTER = by_service({i: f"{svc.name}@docker" for i, svc in enumerate(SERVICES)})
TRAEFIK_SERVICE = by_service({i: f"{svc.name}-svc@docker" for i, svc in enumerate(SERVICES)})
REQUEST_COUNT = C("seq") + 1


def traefik_clf(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Traefik "common": CLF + ` <count> "<router>" "<server URL>" <ms>ms` (DownstreamStatus)."""
    return lines(
        frame,
        [
            C("client"),
            lit(" - - ["),
            clf_time(tz),
            lit('] "'),
            C("method"),
            lit(" "),
            TARGET,
            lit(" "),
            http_version("HTTP/2.0"),
            lit('" '),
            s(C("status")),
            lit(" "),
            s(C("bytes")),
            lit(' "'),
            C("referer"),
            lit('" "'),
            C("user_agent"),
            lit('" '),
            s(REQUEST_COUNT),
            lit(' "'),
            ROUTER,
            lit('" "http://'),
            C("upstream"),
            lit('" '),
            s(MS),
            lit("ms"),
        ],
    )


def traefik_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Traefik JSON access log (keys sorted as Go's encoding/json writes a map); headers kept:
    User-Agent (request) and X-Error-Code (downstream)."""
    esc_ua, esc_target = dirty(frame, "user_agent"), dirty(frame, "path", "query")
    origin_ns = C("upstream_ms") * 1_000_000 + (C("latency_ns") % 1_000_000) // 2
    service_url = pl.concat_str(
        lit('{"Scheme":"http","Opaque":"","User":null,"Host":"'),
        C("upstream"),
        lit(
            '","Path":"","RawPath":"","OmitHost":false,"ForceQuery":false,"RawQuery":"",'
            '"Fragment":"","RawFragment":""}'
        ),
    )
    parts = [
        lit('{"ClientAddr":"'),
        C("client"),
        lit(":"),
        s(C("client_port")),
        lit('","ClientHost":"'),
        C("client"),
        lit('","ClientPort":"'),
        s(C("client_port")),
        lit('","ClientUsername":"-","DownstreamContentSize":'),
        s(C("bytes")),
        lit(',"DownstreamStatus":'),
        s(C("status")),
        lit(',"Duration":'),
        s(C("latency_ns")),
        lit(',"OriginContentSize":'),
        s(C("bytes")),
        lit(',"OriginDuration":'),
        s(origin_ns),
        lit(',"OriginStatus":'),
        s(C("status")),
        lit(',"Overhead":'),
        s(C("latency_ns") - origin_ns),
        lit(',"RequestAddr":"'),
        HOST,
        lit('","RequestContentSize":'),
        s(C("req_bytes")),
        lit(',"RequestCount":'),
        s(REQUEST_COUNT),
        lit(',"RequestHost":"'),
        HOST,
        lit('","RequestMethod":"'),
        C("method"),
        lit('","RequestPath":'),
        js(TARGET, esc_target),
        lit(',"RequestPort":"-","RequestProtocol":"'),
        http_version("HTTP/2.0"),
        lit('","RequestScheme":"https","RetryAttempts":0,"RouterName":"'),
        ROUTER,
        lit('","ServiceAddr":"'),
        C("upstream"),
        lit('","ServiceName":"'),
        TRAEFIK_SERVICE,
        lit('","ServiceURL":'),
        service_url,
        lit(',"StartLocal":"'),
        rfc3339_nano(tz),
        lit('","StartUTC":"'),
        rfc3339_nano("UTC"),
        lit('",'),
        optional(js(C("error_code"), False), '"downstream_X-Error-Code":', ","),
        lit('"entryPointName":"websecure","level":"info","msg":"","request_User-Agent":'),
        js(C("user_agent"), esc_ua),
        lit(',"time":"'),
        rfc3339(C("ts") + pl.duration(microseconds=C("latency_ns") // 1000), tz),
        lit('"}'),
    ]
    return lines(frame, parts)


# --- Envoy -------------------------------------------------------------------------------------

ENVOY_START = C("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
UPSTREAM_CLUSTER = by_service(
    {
        i: f"outbound|{svc.port}||{svc.name}.default.svc.cluster.local"
        for i, svc in enumerate(SERVICES)
    }
)


def envoy_text(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy's default format plus `` "%RESP(X-ERROR-CODE)%"`` at the end."""
    return lines(
        frame,
        [
            lit("["),
            ENVOY_START,
            lit('] "'),
            C("method"),
            lit(" "),
            TARGET,
            lit(" "),
            http_version("HTTP/2"),
            lit('" '),
            s(C("status")),
            lit(" - "),
            s(C("req_bytes")),
            lit(" "),
            s(C("bytes")),
            lit(" "),
            s(MS),
            lit(" "),
            s(C("upstream_ms")),
            lit(' "'),
            C("client"),
            lit('" "'),
            C("user_agent"),
            lit('" "'),
            request_id_uuid(),
            lit('" "'),
            HOST,
            lit('" "'),
            C("upstream"),
            lit('" "'),
            C("error_code").fill_null("-"),
            lit('"'),
        ],
    )


def envoy_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy typed_json_format with Istio's key names (sorted, as Envoy writes a Struct)."""
    esc_ua, esc_target = dirty(frame, "user_agent"), dirty(frame, "path", "query")
    return lines(
        frame,
        [
            lit('{"authority":"'),
            HOST,
            lit('","bytes_received":'),
            s(C("req_bytes")),
            lit(',"bytes_sent":'),
            s(C("bytes")),
            lit(',"duration":'),
            s(MS),
            lit(',"method":"'),
            C("method"),
            lit('","path":'),
            js(TARGET, esc_target),
            lit(',"protocol":"'),
            http_version("HTTP/2"),
            lit('","request_id":"'),
            request_id_uuid(),
            lit('","response_code":'),
            s(C("status")),
            lit(',"response_flags":"-","start_time":"'),
            ENVOY_START,
            lit('","upstream_cluster":"'),
            UPSTREAM_CLUSTER,
            lit('","upstream_host":"'),
            C("upstream"),
            lit('","upstream_service_time":"'),
            s(C("upstream_ms")),
            lit('","user_agent":'),
            js(C("user_agent"), esc_ua),
            lit(',"x_error_code":'),
            js_or_null(C("error_code")),
            lit(',"x_forwarded_for":"'),
            C("client"),
            lit('"}'),
        ],
    )


def istio_text(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Istio's default text format (1.9+): X-Forwarded-For "-", the client in
    %DOWNSTREAM_REMOTE_ADDRESS% with its port."""
    return lines(
        frame,
        [
            lit("["),
            ENVOY_START,
            lit('] "'),
            C("method"),
            lit(" "),
            TARGET,
            lit(" "),
            http_version("HTTP/2"),
            lit('" '),
            s(C("status")),
            lit(' - via_upstream - "-" '),
            s(C("req_bytes")),
            lit(" "),
            s(C("bytes")),
            lit(" "),
            s(MS),
            lit(" "),
            s(C("upstream_ms")),
            lit(' "-" "'),
            C("user_agent"),
            lit('" "'),
            request_id_uuid(),
            lit('" "'),
            HOST,
            lit('" "'),
            C("upstream"),
            lit('" '),
            UPSTREAM_CLUSTER,
            lit(" 10.44.1.23:37652 10.44.1.27:80 "),
            C("client"),
            lit(":"),
            s(C("client_port")),
            lit(" - default"),
        ],
    )


def envoy_gateway_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy Gateway's default JSON access log (its key names and order; numbers as Envoy's
    JSON formatter writes them)."""
    esc_ua, esc_target = dirty(frame, "user_agent"), dirty(frame, "path", "query")
    return lines(
        frame,
        [
            lit('{"start_time":"'),
            ENVOY_START,
            lit('","method":"'),
            C("method"),
            lit('","x-envoy-origin-path":'),
            js(TARGET, esc_target),
            lit(',"protocol":"'),
            http_version("HTTP/2"),
            lit('","response_code":'),
            s(C("status")),
            lit(',"response_flags":"-","response_code_details":"via_upstream",'),
            lit('"connection_termination_details":null,"upstream_transport_failure_reason":null,'),
            lit('"bytes_received":'),
            s(C("req_bytes")),
            lit(',"bytes_sent":'),
            s(C("bytes")),
            lit(',"duration":'),
            s(MS),
            lit(',"x-envoy-upstream-service-time":"'),
            s(C("upstream_ms")),
            lit('","x-forwarded-for":"'),
            C("client"),
            lit('","user-agent":'),
            js(C("user_agent"), esc_ua),
            lit(',"x-request-id":"'),
            request_id_uuid(),
            lit('",":authority":"'),
            HOST,
            lit('","upstream_host":"'),
            C("upstream"),
            lit('","upstream_cluster":"httproute/default/'),
            SERVICE_NAME,
            lit('/rule/0","upstream_local_address":"10.244.0.30:48658",'),
            lit('"downstream_local_address":"10.244.0.30:10080","downstream_remote_address":"'),
            C("client"),
            lit(":"),
            s(C("client_port")),
            lit('","requested_server_name":null,"route_name":"httproute/default/'),
            SERVICE_NAME,
            lit('/rule/0/match/0/*"}'),
        ],
    )


# --- Kong --------------------------------------------------------------------------------------


def _kong_service(index: int) -> str:
    svc = SERVICES[index]
    return json.dumps(
        {
            "id": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{svc.name}.service.kong")),
            "name": f"{svc.name}-svc",
            "host": f"{svc.name}-svc.internal",
            "port": svc.port,
            "protocol": "http",
            "path": "/",
            "retries": 5,
            "connect_timeout": 60000,
            "read_timeout": 60000,
            "write_timeout": 60000,
        },
        separators=(",", ":"),
    )


def _kong_route(index: int) -> str:
    svc = SERVICES[index]
    return json.dumps(
        {
            "id": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{svc.name}.route.kong")),
            "name": svc.name,
            "paths": list(svc.prefixes),
            "protocols": ["https"],
            "strip_path": False,
            "preserve_host": True,
        },
        separators=(",", ":"),
    )


KONG_SERVICE = by_service({i: _kong_service(i) for i in range(len(SERVICES))})
KONG_ROUTE = by_service({i: _kong_route(i) for i in range(len(SERVICES))})
KONG_WORKSPACE = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, "default.workspace.kong"))


def kong_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Kong file-log JSON, one object per line. Conflicts carry the code either in the
    ``x-error-code`` response header or (the other half) in a logged JSON ``body``."""
    esc_ua, esc_target = dirty(frame, "user_agent"), dirty(frame, "path", "query")
    querystring = (
        pl.when(C("query").is_null())
        .then(lit("{}"))
        .otherwise(
            pl.concat_str(
                lit('{"'),
                C("query")
                .str.replace_all("&", '","', literal=True)
                .str.replace_all("=", '":"', literal=True),
                lit('"}'),
            )
        )
    )
    kong_ms = MS - C("upstream_ms")
    content_length = BODY_LENGTH.fill_null(C("bytes"))
    parts = [
        lit('{"request":{"id":"'),
        C("request_id"),
        lit('","method":"'),
        C("method"),
        lit('","uri":'),
        js(TARGET, esc_target),
        lit(',"url":'),
        js(pl.concat_str(lit("https://"), HOST, lit(":8443"), TARGET), esc_target),
        lit(',"size":'),
        s(C("req_bytes") + 160 + C("user_agent").str.len_bytes()),
        lit(',"querystring":'),
        querystring,
        lit(',"headers":{"host":"'),
        HOST,
        lit('","user-agent":'),
        js(C("user_agent"), esc_ua),
        lit(',"accept":"application/json"'),
        optional(js(C("if_match")), ',"if-match":'),
        lit('}},"response":{"status":'),
        s(C("status")),
        lit(',"size":'),
        s(C("bytes") + 260),
        lit(',"headers":{"content-type":"'),
        CONTENT_TYPE,
        lit('","content-length":"'),
        s(content_length),
        lit('"'),
        optional(js(HEADER_CODE, False), ',"x-error-code":'),
        lit(',"via":"kong/3.8.0","x-kong-upstream-latency":"'),
        s(C("upstream_ms")),
        lit('","x-kong-proxy-latency":"'),
        s(kong_ms),
        lit('"}'),
        optional(BODY, ',"body":'),
        lit('},"latencies":{"request":'),
        s(MS),
        lit(',"kong":'),
        s(kong_ms),
        lit(',"proxy":'),
        s(C("upstream_ms")),
        lit('},"service":'),
        KONG_SERVICE,
        lit(',"route":'),
        KONG_ROUTE,
        optional(C("consumer"), ',"consumer":{"username":"', '"}'),
        lit(',"client_ip":"'),
        C("client"),
        lit('","started_at":'),
        s(C("ts").dt.epoch("ms")),
        lit(',"upstream_uri":'),
        js(TARGET, esc_target),
        lit(',"upstream_status":"'),
        s(C("status")),
        lit('","source":"upstream","tries":[{"balancer_latency":0,"ip":"'),
        UPSTREAM_IP,
        lit('","port":'),
        UPSTREAM_PORT,
        lit(f'}}],"workspace":"{KONG_WORKSPACE}"}}'),
    ]
    return lines(frame, parts)


# --- Caddy -------------------------------------------------------------------------------------


def caddy_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Caddy v2 JSON access log (``ts`` unix seconds, ``duration`` seconds, header arrays)."""
    esc_ua, esc_target = dirty(frame, "user_agent"), dirty(frame, "path", "query")
    ts_us = C("ts").dt.epoch("us")
    return lines(
        frame,
        [
            pl.when(C("status") >= 500)
            .then(lit('{"level":"error"'))
            .otherwise(lit('{"level":"info"')),
            lit(',"ts":'),
            go_float(ts_us, 1_000_000),
            lit(
                ',"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"'
            ),
            C("client"),
            lit('","remote_port":"'),
            s(C("client_port")),
            lit('","client_ip":"'),
            C("client"),
            lit('","proto":"'),
            http_version("HTTP/2.0"),
            lit('","method":"'),
            C("method"),
            lit('","host":"'),
            HOST,
            lit('","uri":'),
            js(TARGET, esc_target),
            lit(',"headers":{"User-Agent":['),
            js(C("user_agent"), esc_ua),
            lit('],"Accept":["application/json"]'),
            optional(js(C("if_match")), ',"If-Match":[', "]"),
            lit('},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"'),
            pl.when(C("http2")).then(lit("h2")).otherwise(lit("http/1.1")),
            lit('","server_name":"'),
            HOST,
            lit('"}},"bytes_read":'),
            s(C("req_bytes")),
            lit(',"user_id":"","duration":'),
            go_float(C("latency_ns"), 1_000_000_000),
            lit(',"size":'),
            s(C("bytes")),
            lit(',"status":'),
            s(C("status")),
            lit(',"resp_headers":{"Server":["Caddy"],"Content-Type":["'),
            CONTENT_TYPE,
            lit('"]'),
            optional(js(C("error_code"), False), ',"X-Error-Code":[', "]"),
            lit("}}"),
        ],
    )


# --- HAProxy -----------------------------------------------------------------------------------


def haproxy_capture(expr: pl.Expr) -> pl.Expr:
    """A captured header value as HAProxy logs it: ``"#{|}`` as #XX (``#`` first)."""
    out = expr
    for char, code in (("#", "#23"), ('"', "#22"), ("{", "#7B"), ("|", "#7C"), ("}", "#7D")):
        out = out.str.replace_all(char, code, literal=True)
    return out.fill_null("")


def haproxy_httplog(frame: pl.DataFrame, tz: str) -> pl.Series:
    """``option httplog`` with ``capture request header Host`` and ``If-Match`` and
    ``capture response header X-Error-Code``, behind an RFC 3164 syslog header."""
    ta = MS
    tr_req = pl.min_horizontal(C("nanos") % 3, ta)
    tc = pl.min_horizontal((C("nanos") // 3) % 2, ta - tr_req)
    tr = ta - tr_req - tc
    act = 8 + (C("client_port") % 40)
    fe = act - (C("nanos") % 4)
    be = (fe // 3) + 1
    srv = (be // 2) + 1
    logged_at = (C("ts") + pl.duration(milliseconds=ta)).dt.convert_time_zone(tz)
    return lines(
        frame,
        [
            logged_at.dt.strftime("%b %e %H:%M:%S"),
            lit(" lb1 haproxy[2417]: "),
            C("client"),
            lit(":"),
            s(C("client_port")),
            lit(" ["),
            local(tz).dt.strftime("%d/%b/%Y:%H:%M:%S%.3f"),
            lit("] fe_https~ be_"),
            SERVICE_NAME,
            lit("/"),
            SERVER_NAME,
            lit(" "),
            pl.concat_str([s(tr_req), s(pl.lit(0)), s(tc), s(tr), s(ta)], separator="/"),
            lit(" "),
            s(C("status")),
            lit(" "),
            s(C("bytes") + 180),
            lit(" - - ---- "),
            pl.concat_str([s(act), s(fe), s(be), s(srv), lit("0")], separator="/"),
            lit(" 0/0 {"),
            haproxy_capture(HOST),
            lit("|"),
            haproxy_capture(C("if_match")),
            lit("} {"),
            haproxy_capture(C("error_code")),
            lit('} "'),
            C("method"),
            lit(" "),
            TARGET.str.replace_all("#", "#23", literal=True).str.replace_all(
                '"', "#22", literal=True
            ),
            lit(" "),
            http_version("HTTP/2.0"),
            lit('"'),
        ],
    )


# --- AWS load balancers ------------------------------------------------------------------------

TARGET_GROUP = by_service(
    {
        i: "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/"
        + f"{svc.name}-tg/{hashlib.sha1(svc.name.encode()).hexdigest()[:16]}"
        for i, svc in enumerate(SERVICES)
    }
)
RULE_PRIORITY = by_service({i: str(10 * (i + 1)) for i in range(len(SERVICES))})
CERTIFICATE = (
    "arn:aws:acm:eu-central-1:123456789012:certificate/3d6a2c1e-8b7f-4e0a-9c55-1f2e3d4c5b6a"
)


def aws_request(port: int) -> pl.Expr:
    return pl.concat_str(
        C("method"),
        lit(" https://"),
        HOST,
        lit(f":{port}"),
        TARGET,
        lit(" "),
        http_version("HTTP/2.0"),
    )


def aws_alb(frame: pl.DataFrame, tz: str) -> pl.Series:
    """ALB access log entry; ``time`` is when the response was sent (our ``ts``) and
    ``request_creation_time`` when the request arrived. Written gzip'd by AWS."""
    created = C("ts") - pl.duration(microseconds=C("latency_ns") // 1000)
    epoch = frame["ts"].dt.epoch("s").to_numpy()
    trace = pl.concat_str(
        lit('"Root=1-'),
        pl.lit(fixed_hex(epoch, 8)),
        lit("-"),
        C("request_id").str.slice(0, 24),
        lit('"'),
    )
    seconds = C("latency_ns") // 1_000_000
    request_processing = pl.when(C("nanos") % 4 == 0).then(lit("0.001")).otherwise(lit("0.000"))
    return lines(
        frame,
        [
            pl.when(C("http2")).then(lit("h2 ")).otherwise(lit("https ")),
            C("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
            lit(" app/api-prod-alb/50dc6c495c0c9188 "),
            C("client"),
            lit(":"),
            s(C("client_port")),
            lit(" "),
            C("upstream"),
            lit(" "),
            request_processing,
            lit(" "),
            seconds3(seconds),
            lit(" 0.000 "),
            s(C("status")),
            lit(" "),
            s(C("status")),
            lit(" "),
            s(C("req_bytes") + 180 + C("user_agent").str.len_bytes()),
            lit(" "),
            s(C("bytes") + 240),
            lit(' "'),
            aws_request(443),
            lit('" "'),
            C("user_agent"),
            lit('" '),
            pl.when(C("http2"))
            .then(lit("TLS_AES_128_GCM_SHA256 TLSv1.3 "))
            .otherwise(lit("ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 ")),
            TARGET_GROUP,
            lit(" "),
            trace,
            lit(' "'),
            HOST,
            lit(f'" "{CERTIFICATE}" '),
            RULE_PRIORITY,
            lit(" "),
            created.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f000Z"),
            lit(' "forward" "-" "-" "'),
            C("upstream"),
            lit('" "'),
            s(C("status")),
            lit('" "-" "-"'),
        ],
    )


def aws_elb_classic(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Classic ELB (HTTPS listener): timestamp elb client:port backend:port three timings
    elb_status backend_status received sent "request" "user_agent" cipher protocol."""
    backend = C("upstream_ms") * 1000 + (C("latency_ns") // 1000) % 1000
    return lines(
        frame,
        [
            C("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
            lit(" api-prod-elb "),
            C("client"),
            lit(":"),
            s(C("client_port")),
            lit(" "),
            C("upstream"),
            lit(" 0.0000"),
            s(30 + C("nanos") % 70),
            lit(" "),
            s(backend // 1_000_000),
            lit("."),
            s(backend % 1_000_000).str.zfill(6),
            lit(" 0.0000"),
            s(20 + C("nanos") % 50),
            lit(" "),
            s(C("status")),
            lit(" "),
            s(C("status")),
            lit(" "),
            s(C("req_bytes")),
            lit(" "),
            s(C("bytes")),
            lit(' "'),
            C("method"),
            lit(" https://"),
            HOST,
            lit(":443"),
            TARGET,
            lit(' HTTP/1.1" "'),
            C("user_agent"),
            lit('" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2'),
        ],
    )


# --- APIPark / Apinto --------------------------------------------------------------------------


def apipark_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """APIPark (Apinto) file-log JSON with the documented field groups: request, proxy,
    response headers, status codes and times (ms). Codes in a header or in the body."""
    esc_target = dirty(frame, "path", "query")
    proxy_uri = C("path").str.replace(r"^/api/v[0-9]+", "")
    proxy_uri = pl.when(proxy_uri == "").then(lit("/")).otherwise(proxy_uri)
    return lines(
        frame,
        [
            lit('{"time_iso8601":"'),
            iso_offset(local(tz)),
            lit('","request_id":"'),
            request_id_uuid(),
            lit('","request":{"request_method":"'),
            C("method"),
            lit('","scheme":"https","request_uri":'),
            js(TARGET, esc_target),
            lit(',"host":"'),
            HOST,
            lit('","remote_addr":"'),
            C("client"),
            lit('"},"proxy":{"proxy_method":"'),
            C("method"),
            lit('","proxy_uri":'),
            js(proxy_uri, esc_target),
            lit(',"proxy_host":"'),
            SERVICE_NAME,
            lit('-svc","proxy_addr":"'),
            C("upstream"),
            lit('"},"response":{"response_headers":{"content-type":"'),
            CONTENT_TYPE,
            lit('"'),
            optional(js(HEADER_CODE, False), ',"x-error-code":'),
            lit("}}"),
            optional(BODY, ',"response_body":'),
            lit(',"status_code":{"status":'),
            s(C("status")),
            lit(',"proxy_status":'),
            s(C("status")),
            lit('},"time":{"request_time":'),
            s(MS),
            lit(',"response_time":'),
            s(C("upstream_ms")),
            lit("}}"),
        ],
    )


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "nginx-extended",
            True,
            False,
            clf("nginx-extended"),
            'nginx combined + $request_time "$sent_http_x_error_code"',
        ),
        Format("nginx-combined", False, False, clf("nginx-combined"), "nginx's built-in combined"),
        Format(
            "nginx-common",
            False,
            False,
            clf("nginx-common"),
            "combined without referrer and user agent",
        ),
        Format("apache-combined", False, False, clf("apache-combined"), "Apache httpd combined"),
        Format("apache-common", False, False, clf("apache-common"), "Apache httpd common (CLF)"),
        Format(
            "nginx-json",
            True,
            False,
            nginx_json,
            "nginx log_format escape=json, all values strings",
        ),
        Format(
            "traefik-clf",
            False,
            False,
            traefik_clf,
            "Traefik common (CLF + count, router, server URL, ms)",
        ),
        Format(
            "traefik-json",
            True,
            False,
            traefik_json,
            "Traefik JSON, X-Error-Code kept as downstream_X-Error-Code",
        ),
        Format(
            "envoy-text", True, False, envoy_text, 'Envoy default format + "%RESP(X-ERROR-CODE)%"'
        ),
        Format(
            "envoy-json",
            True,
            False,
            envoy_json,
            "Envoy typed JSON, Istio key names + x_error_code",
        ),
        Format(
            "kong-json",
            True,
            True,
            kong_json,
            "Kong file-log JSON; code in x-error-code header or body",
        ),
        Format("caddy-json", True, False, caddy_json, "Caddy v2 JSON access log"),
        Format(
            "haproxy-httplog",
            True,
            False,
            haproxy_httplog,
            "HAProxy httplog with Host|If-Match and X-Error-Code captures",
        ),
        Format("aws-alb", False, False, aws_alb, "AWS Application Load Balancer"),
        Format("aws-elb-classic", False, False, aws_elb_classic, "AWS Classic Load Balancer"),
        Format(
            "apipark-json",
            True,
            True,
            apipark_json,
            "APIPark/Apinto JSON; code in x-error-code header or body",
        ),
        # (added last: a sample's seed is its place in this list)
        Format("istio-text", False, False, istio_text, "Istio's default text format (1.9+)"),
        Format(
            "envoy-gateway-json",
            False,
            False,
            envoy_gateway_json,
            "Envoy Gateway's default JSON access log",
        ),
        Format(
            "nginx-main",
            False,
            False,
            clf("nginx-main"),
            "nginx.conf's main: combined + X-Forwarded-For",
        ),
        Format("ingress-nginx", False, False, ingress_nginx, "ingress-nginx upstreaminfo"),
    )
}
