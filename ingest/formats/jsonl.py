"""JSON-lines formats: nginx JSON, Traefik, Envoy, Kong, Caddy, APIPark and a generic mapping.

Each format names, for every canonical raw field (see fields.RAW_FIELDS), the JSON paths it
may be found at; the first path present wins. The lines of a chunk are decoded in one pass by
the compiled scanner (json_scan.py, _json.c) where it is built and the paths are plain keys;
the lines it leaves, and every line without it, by DuckDB's JSON reader (yyjson, all paths
extracted in a single parse), on an in-memory connection of the worker thread's own, never
the store's. Both give the same values. An invalid JSON line is a reject, never a failed
batch.

Error codes come from a logged response header, a JSON field, or, where the format logs the
response body (Kong, APIPark), from the body itself: ``error.code``, ``code`` (not a repeated
HTTP status), ``errorCode``, ``error_code``, an RFC 9457 problem ``type``/``title``, ``error``,
Kubernetes' ``reason``, or an XML ``<Code>``, read from at most the first BODY_LIMIT bytes and
never stored.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from conflictlens.ingest.arrow import bool_array, int64_array, to_frame, to_series
from conflictlens.ingest.formats import scan
from conflictlens.ingest.formats.fields import RAW_FIELDS, convert, reject_reason
from conflictlens.ingest.formats.json_scan import PathTrie, compile_paths, scan_json

BODY_LIMIT = 16 * 1024
BODY_CODE_PATHS = (
    "$.error.code",
    "$.code",
    "$.errorCode",
    "$.error_code",
    "$.type",
    "$.title",
    "$.error",
    "$.reason",  # Kubernetes' Status ("AlreadyExists"), whose code is the HTTP status
)
# An XML error body (Azure Storage, S3): <Error><Code>ContainerAlreadyExists</Code>...
XML_CODE = r"<(?:Code|code|ErrorCode|errorCode)>\s*([^<\s][^<]{0,127}?)\s*</"

# One parse per line; try() turns invalid JSON into NULL instead of failing the batch.
_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB connection, used only to decode JSON."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        # One DuckDB thread per worker: the workers already keep the cores busy, and two
        # thread pools per worker only fight over them.
        con = duckdb.connect(":memory:", config={"threads": 1})
        _local.con = con
    return con


def extraction_sql(columns: Mapping[str, tuple[int, ...]]) -> str:
    """SQL that parses each line once (try(): invalid JSON gives NULL, not a failed batch)
    and returns ``_valid`` plus one column per name: the first non-null of its paths.

    Only identifiers checked here and integer positions are written into the text; the
    JSON paths themselves are a bound parameter.
    """
    parts = ["v IS NOT NULL AS _valid"]
    for name, positions in columns.items():
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad column name {name!r}")
        items = ", ".join(f"v[{int(i) + 1}]" for i in positions)
        parts.append(f'coalesce({items}) AS "{name}"')
    select = ", ".join(parts)
    return f"SELECT {select} FROM (SELECT try(json_extract_string(line, $paths)) AS v FROM _json_lines)"  # noqa: S608


def extract(texts: pl.Series, sql: str, paths: list[str]) -> pl.DataFrame:
    """Run an extraction_sql over ``texts``; one row per text."""
    con = _connection()
    # Arrow string views: handed to DuckDB without copying the text.
    con.register(
        "_json_lines", texts.to_frame("line").to_arrow(compat_level=pl.CompatLevel.newest())
    )
    try:
        result = con.sql(sql, params={"paths": paths}).to_arrow_table()
    finally:
        con.unregister("_json_lines")
    return to_frame(result)


# Raw fields only events keep: per-minute rollups never read them. They are decoded only on
# the lines that become events (see JsonFormat.parse), about 3 in 100 of a gateway's lines.
EVENT_ONLY_FIELDS = frozenset(
    {
        "client",
        "client_hostport",
        "forwarded_for",
        "query",
        "user_agent",
        "request_id",
        "upstream",
        "error_code",
        "if_match",
        "if_unmodified_since",
    }
)


@dataclass(frozen=True)
class Extraction:
    """One pass over the lines: the compiled scanner's trie where it can read the paths, and
    the DuckDB SQL (with the JSON paths bound to it) for the lines the scanner leaves."""

    sql: str
    paths: list[str]
    columns: list[str]  # of its result, in order
    trie: PathTrie | None

    @classmethod
    def of(
        cls,
        fields: list[tuple[str, tuple[str, ...]]],
        *,
        scanner: bool = True,
        objects_absent: bool = False,
    ) -> Extraction:
        paths: list[str] = []
        columns: dict[str, tuple[int, ...]] = {}
        for name, candidates in fields:
            if candidates:
                columns[name] = tuple(range(len(paths), len(paths) + len(candidates)))
                paths += candidates
        wanted = {name: c for name, c in fields if c}
        trie = compile_paths(wanted, objects_absent=objects_absent) if scanner else None
        return cls(extraction_sql(columns), paths, ["_valid", *columns], trie)

    def run(self, texts: pl.Series) -> pl.DataFrame:
        if self.trie is None or not scan.available():
            return extract(texts, self.sql, self.paths)
        columns, accepted = scan_json(texts, self.trie)
        frame = pl.DataFrame([to_series(bool_array(accepted)).alias("_valid"), *columns.values()])
        left = np.flatnonzero(~accepted)
        if len(left) == 0:
            return frame
        rows = to_series(int64_array(left)).cast(pl.UInt32)  # (not via numpy.ma)
        rest = extract(texts.gather(rows), self.sql, self.paths)
        return frame.with_columns([frame[c].scatter(rows, rest[c]) for c in self.columns])


@dataclass(frozen=True)
class JsonFormat:
    """A JSON-lines format: raw field → JSON paths, tried in order."""

    name: str
    paths: Mapping[str, tuple[str, ...]]
    # Raw fields that must all be present for a line to be of this format (detection).
    required: tuple[str, ...] = ("status",)
    body_paths: tuple[str, ...] = ()  # response bodies, for error codes
    # False: DuckDB decodes every line (the reference the scanner is tested against).
    scanner: bool = field(default=True, compare=False)
    _everything: Extraction = field(init=False, repr=False, compare=False)
    _common: Extraction = field(init=False, repr=False, compare=False)
    _event_only: Extraction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.paths) - RAW_FIELDS
        if unknown:
            raise ValueError(f"{self.name}: unknown raw fields {sorted(unknown)}")
        fields = [*self.paths.items(), ("_body", self.body_paths)]
        later = EVENT_ONLY_FIELDS.union({"_body"}).difference(self.required)
        common = [f for f in fields if f[0] not in later]
        event_only = [f for f in fields if f[0] in later]
        for name, part in (
            ("_everything", fields),
            ("_common", common),
            ("_event_only", event_only),
        ):
            object.__setattr__(self, name, Extraction.of(part, scanner=self.scanner))

    @property
    def fields(self) -> tuple[str, ...]:
        """The JSON paths it reads (detection: of two formats that read as much, the one that
        declares fewer says no more than the lines hold)."""
        return tuple(p for paths in self.paths.values() for p in paths)

    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        values = self._decode(lines["line"], detail_statuses)
        frame = pl.concat([lines, values], how="horizontal")
        if self.body_paths:
            frame = with_body_codes(frame, scanner=self.scanner)
        missing = pl.concat_str(
            [pl.when(pl.col(name).is_null()).then(pl.lit(name)) for name in self.required],
            separator=", ",
            ignore_nulls=True,
        )
        frame = frame.with_columns(missing.alias("_missing"))
        frame = convert(frame, set(self.paths), unescape=[])
        frame = frame.with_columns(reject=reject_reason(pl.lit(True), self.name))
        reason = (
            pl.when(~pl.col("_valid"))
            .then(pl.lit("not valid JSON"))
            .when(pl.col("_missing") != "")
            .then(pl.lit(f"{self.name}: missing ") + pl.col("_missing"))
            .otherwise(pl.col("reject"))
        )
        return frame.with_columns(reject=reason)

    def _decode(self, texts: pl.Series, detail_statuses: Collection[int] | None) -> pl.DataFrame:
        """One column per raw field. With ``detail_statuses``, the event-only fields are
        decoded in a second pass over the lines with those statuses alone (null elsewhere)."""
        if detail_statuses is None or not self._event_only.paths:
            return self._everything.run(texts)
        common = self._common.run(texts)
        status = common["status"].cast(pl.Int64, strict=False) if "status" in common else None
        wanted = (
            status.is_in(list(detail_statuses)).fill_null(False).arg_true()
            if status is not None
            else pl.Series([], dtype=pl.UInt32)
        )
        found = self._event_only.run(texts.gather(wanted)).drop("_valid")
        empty = pl.DataFrame(
            {
                name: pl.repeat(None, len(texts), dtype=pl.String, eager=True)
                for name in found.columns
            }
        )
        detail = empty.with_columns([empty[n].scatter(wanted, found[n]) for n in found.columns])
        return pl.concat([common, detail], how="horizontal").select(self._everything.columns)


# The body's candidate codes, _c0 ... in BODY_CODE_PATHS order. An object is never a code,
# so the scanner may count one as no value and read such bodies itself.
_BODY_FIELDS: list[tuple[str, tuple[str, ...]]] = [
    (f"_c{i}", (path,)) for i, path in enumerate(BODY_CODE_PATHS)
]
_BODY = {
    True: Extraction.of(_BODY_FIELDS, objects_absent=True),
    False: Extraction.of(_BODY_FIELDS, scanner=False),
}


def with_body_codes(frame: pl.DataFrame, *, scanner: bool = True) -> pl.DataFrame:
    """Fill a missing error code from the logged response body (first BODY_LIMIT bytes only)."""
    if "error_code" not in frame.columns:
        frame = frame.with_columns(error_code=pl.lit(None, pl.String))
    wanted = frame["error_code"].is_null() & frame["_body"].is_not_null()
    wanted = (wanted & (frame["_body"].str.len_bytes() <= BODY_LIMIT)).fill_null(False)
    if not wanted.any():
        return frame
    rows = wanted.arg_true()
    bodies = frame["_body"].gather(rows)
    values = _BODY[scanner].run(bodies)
    # A value that is itself an object ({"error": {...}} without a code) is not a code, nor is
    # an HTTP status repeated in the body ({"code": 409}); a problem type URI names its code
    # in its last segment (.../email-taken → EMAIL_TAKEN).
    found = [f"_c{i}" for i in range(len(BODY_CODE_PATHS))]
    code = pl.coalesce(
        [
            pl.when(
                ~pl.col(c).str.starts_with("{") & ~pl.col(c).str.contains(r"^[1-5][0-9]{2}$")
            ).then(pl.col(c))
            for c in found
        ]
    )
    codes = (
        values.with_columns(_xml=bodies.str.extract(XML_CODE))
        .select(
            pl.when(code.str.contains("^[A-Za-z][A-Za-z0-9+.-]*:"))
            .then(
                code.str.replace(r"^.*/([^/]+)/?$", "$1")
                .str.replace_all("-", "_")
                .str.to_uppercase()
            )
            .otherwise(pl.coalesce(code, pl.col("_xml")))
        )
        .to_series()
    )
    return frame.with_columns(frame["error_code"].scatter(rows, codes))


def _p(*paths: str) -> tuple[str, ...]:
    return paths


NGINX_JSON = JsonFormat(
    "nginx-json",
    {
        # (a time_local that is ISO-8601: the operator's own name for $time_iso8601)
        "time_iso": _p("$.time_iso8601", "$.time", "$.timestamp", '$."@timestamp"', "$.time_local"),
        "time_clf": _p("$.time_local"),
        # (a "timestamp" that is a number: $msec under another name)
        "time_epoch": _p("$.msec", "$.timestamp"),
        "client": _p("$.remote_addr", "$.client_ip", "$.client", "$.clientip"),
        "forwarded_for": _p("$.http_x_forwarded_for"),
        "request": _p("$.request"),
        "method": _p("$.request_method", "$.method"),
        "target": _p("$.request_uri", "$.url"),
        "path": _p("$.uri"),
        "query": _p("$.args", "$.query_string"),
        "status": _p("$.status"),
        "bytes": _p("$.body_bytes_sent", "$.bytes_sent", "$.size"),
        "latency_s": _p("$.request_time", "$.resp_time"),
        "user_agent": _p("$.http_user_agent", "$.user_agent"),
        "request_id": _p("$.request_id", "$.http_x_request_id"),
        "upstream": _p("$.upstream_addr"),
        "host": _p("$.host", "$.server_name", "$.http_host"),
        "error_code": _p(
            "$.sent_http_x_error_code",
            "$.upstream_http_x_error_code",
            "$.x_error_code",
            "$.error_code",
        ),
        "if_match": _p("$.http_if_match"),
    },
    required=("status",),
)

TRAEFIK_JSON = JsonFormat(
    "traefik-json",
    {
        "time_iso": _p("$.StartUTC", "$.StartLocal", "$.time"),
        "client": _p("$.ClientHost"),
        "client_hostport": _p("$.ClientAddr"),
        "method": _p("$.RequestMethod"),
        "target": _p("$.RequestPath"),
        "status": _p("$.DownstreamStatus", "$.OriginStatus"),
        "bytes": _p("$.DownstreamContentSize", "$.OriginContentSize"),
        "latency_ns": _p("$.Duration"),
        "user_agent": _p('$."request_User-Agent"'),
        "service": _p("$.ServiceName", "$.RouterName"),
        "upstream": _p("$.ServiceURL.Host", "$.ServiceAddr"),
        "host": _p("$.RequestHost"),
        "request_id": _p('$."request_X-Request-Id"'),
        "error_code": _p('$."downstream_X-Error-Code"', '$."origin_X-Error-Code"'),
        "if_match": _p('$."request_If-Match"'),
    },
    required=("status", "method"),
)

ENVOY_JSON = JsonFormat(
    "envoy-json",
    {
        "time_iso": _p("$.start_time", '$."@timestamp"'),  # (Contour's name for it)
        "method": _p("$.method"),
        # Envoy Gateway's default names the path (and the headers below) by the header
        "target": _p("$.path", '$."x-envoy-origin-path"'),
        "status": _p("$.response_code"),
        "bytes": _p("$.bytes_sent"),
        "latency_ms": _p("$.duration"),
        "forwarded_for": _p("$.x_forwarded_for", '$."x-forwarded-for"'),
        "client_hostport": _p("$.downstream_remote_address"),
        "user_agent": _p("$.user_agent", '$."user-agent"'),
        "request_id": _p("$.request_id", '$."x-request-id"'),
        "host": _p("$.authority", '$.":authority"'),
        "upstream": _p("$.upstream_host"),
        "service": _p("$.upstream_cluster"),
        "error_code": _p("$.x_error_code", "$.error_code", '$."x-error-code"'),
        "if_match": _p("$.if_match"),
    },
    required=("status", "time_iso"),
)

# Envoy Gateway's default JSON access log: Envoy's fields under Envoy Gateway's key names (the
# path only as x-envoy-origin-path, headers by their names). envoy-json reads these keys too;
# this format names them alone, so that detection names Envoy Gateway for its files.
ENVOY_GATEWAY_JSON = JsonFormat(
    "envoy-gateway-json",
    {
        "time_iso": _p("$.start_time"),
        "method": _p("$.method"),
        "target": _p('$."x-envoy-origin-path"'),
        "status": _p("$.response_code"),
        "bytes": _p("$.bytes_sent"),
        "latency_ms": _p("$.duration"),
        "forwarded_for": _p('$."x-forwarded-for"'),
        "client_hostport": _p("$.downstream_remote_address"),
        "user_agent": _p('$."user-agent"'),
        "request_id": _p('$."x-request-id"'),
        "host": _p('$.":authority"'),
        "upstream": _p("$.upstream_host"),
        "service": _p("$.upstream_cluster"),
    },
    required=("status", "time_iso", "target"),
)

KONG_JSON = JsonFormat(
    "kong-json",
    {
        "time_epoch_ms": _p("$.started_at"),
        "method": _p("$.request.method"),
        "target": _p("$.request.uri"),
        "status": _p("$.response.status"),
        "bytes": _p("$.response.size"),
        "latency_ms": _p("$.latencies.request"),
        "client": _p("$.client_ip"),
        "user_agent": _p('$.request.headers."user-agent"'),
        "service": _p("$.service.name", "$.service.host"),
        "upstream": _p("$.service.host"),
        "host": _p("$.request.headers.host"),
        "request_id": _p("$.request.id", '$.request.headers."x-request-id"'),
        "error_code": _p('$.response.headers."x-error-code"'),
        "if_match": _p('$.request.headers."if-match"'),
    },
    required=("status", "method"),
    body_paths=("$.response.body",),
)

CADDY_JSON = JsonFormat(
    "caddy-json",
    {
        "time_epoch": _p("$.ts"),
        "time_iso": _p("$.ts"),  # ts may be configured as an ISO string
        "method": _p("$.request.method"),
        "target": _p("$.request.uri"),
        "status": _p("$.status"),
        "bytes": _p("$.size"),
        "latency_s": _p("$.duration"),
        "client": _p("$.request.client_ip", "$.request.remote_ip"),
        "client_hostport": _p("$.request.remote_addr"),
        "user_agent": _p('$.request.headers."User-Agent"[0]'),
        "host": _p("$.request.host"),
        "request_id": _p('$.request.headers."X-Request-Id"[0]'),
        "error_code": _p('$.resp_headers."X-Error-Code"[0]'),
        "if_match": _p('$.request.headers."If-Match"[0]'),
    },
    required=("status", "method"),
)

APIPARK_JSON = JsonFormat(
    "apipark-json",
    {
        "time_iso": _p("$.time_iso8601"),
        "request_id": _p("$.request_id"),
        "method": _p("$.request.request_method"),
        "target": _p("$.request.request_uri"),
        "host": _p("$.request.host"),
        "client": _p("$.request.remote_addr"),
        "status": _p("$.status_code.status"),
        "service": _p("$.proxy.proxy_host"),
        "upstream": _p("$.proxy.proxy_addr"),
        "latency_ms": _p("$.time.request_time"),
        "user_agent": _p('$.request.header."user-agent"', '$.request.header."User-Agent"'),
        "error_code": _p(
            '$.response.response_headers."x-error-code"',
            '$.response.response_headers."X-Error-Code"',
        ),
        "if_match": _p('$.request.header."if-match"'),
    },
    required=("status", "method"),
    body_paths=("$.response_body", "$.response.body"),
)

JSON_FORMATS: dict[str, JsonFormat] = {
    f.name: f
    for f in (
        TRAEFIK_JSON,
        ENVOY_GATEWAY_JSON,
        ENVOY_JSON,
        KONG_JSON,
        CADDY_JSON,
        APIPARK_JSON,
        NGINX_JSON,
    )
}


def mapped_json_format(mapping: Mapping[str, object], name: str = "json") -> JsonFormat:
    """A JSON format from a field mapping: raw field → a JSON path or a list of paths."""
    paths: dict[str, tuple[str, ...]] = {}
    for raw, value in mapping.items():
        candidates = [value] if isinstance(value, str) else value
        if not isinstance(candidates, list) or not all(
            isinstance(p, str) and p.startswith("$") for p in candidates
        ):
            raise ValueError(f'{raw}: expected a JSON path such as "$.status" or a list of them')
        paths[raw] = tuple(candidates)
    if "status" not in paths:
        raise ValueError("the mapping needs at least status (and a time field)")
    return JsonFormat(name, paths, required=("status",))
