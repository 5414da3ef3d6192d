"""OTLP log records → the rows an access log gives: serve's ``POST /v1/logs`` intake.

A record is read one of two ways:

- by its **attributes** when one of them gives the HTTP status: the OpenTelemetry HTTP
  semantic conventions (``http.request.method``, ``url.path``/``url.full``, ``url.query``,
  ``http.route``, ``http.response.status_code``, ``client.address``,
  ``user_agent.original``, ``server.address``, and their pre-1.21 names), then the keys of
  the gateways' own access logs as their OTLP loggers send them (Envoy's, Traefik's and
  Kong's field names, the same the JSON formats read, nested Kong keys dotted:
  ``request.method``); entries of a map body count as attributes after the record's own;
- else by its **body**, a string that is an access-log line in any format conflictlens reads
  from files (detected once per source, as for a file, and remembered in the store).

Times are the record's: a gateway's own start time among the attributes first, then
``timeUnixNano``, then ``observedTimeUnixNano``. The service is the gateway's per-request
service (Traefik's ServiceName, Envoy's upstream_cluster, Kong's service.name attribute, a
line's own), else the resource's ``service.name``, else the request's host.

Each resource's ``service.name`` is a source of its own, ``otlp:<service.name>``, whose offset
counts the records committed; a record's offset is its position in that stream. Every record
of a request is committed in one transaction before the request is answered (``OtlpIntake``),
so a sender that was told "accepted" never loses it, and one that retries after a crash
(no answer) sends it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb
import polars as pl

from conflictlens.ingest.batch import batch_from_parsed, detail_statuses
from conflictlens.ingest.formats import FORMATS, LogFormat, UnknownFormat, detect_format
from conflictlens.ingest.formats.fields import PARSED_COLUMNS, convert, reject_reason
from conflictlens.ingest.formats.json_scan import path_keys
from conflictlens.ingest.formats.jsonl import ENVOY_JSON, KONG_JSON, TRAEFIK_JSON
from conflictlens.ingest.options import IngestOptions
from conflictlens.ingest.otlp_decode import BOOL, DOUBLE, INT, RESOURCE, STRING, Decoded
from conflictlens.store.writer import Batch, SourceRecord, Writer

FORMAT = "otlp"  # a source's format until a body line names one
UNKNOWN_SERVICE = "unknown_service"  # what the OpenTelemetry SDKs call a nameless service
SOURCE_PREFIX = "otlp:"

# The OpenTelemetry HTTP semantic conventions (stable names first, then the older ones).
SEMANTIC_KEYS: dict[str, tuple[str, ...]] = {
    "method": ("http.request.method", "http.method"),
    "path": ("url.path",),
    "query": ("url.query",),
    "target": ("url.full", "http.target", "http.url"),
    "status": ("http.response.status_code", "http.status_code"),
    "client": (
        "client.address",
        "http.client_ip",
        "network.peer.address",
        "net.sock.peer.addr",
        "net.peer.ip",
    ),
    "user_agent": ("user_agent.original", "http.user_agent"),
    "host": ("server.address", "http.host", "net.host.name"),
    "bytes": ("http.response.body.size", "http.response_content_length"),
    "latency_s": ("http.server.request.duration",),
    "_route": ("http.route",),  # the path when no path is given (routes come from paths)
}
# The gateways' access-log fields as OTLP attributes: their JSON formats' keys.
GATEWAY_FORMATS = (ENVOY_JSON, TRAEFIK_JSON, KONG_JSON)
TIME_FIELDS = ("time_iso", "time_epoch_ms")


def _key_table() -> pl.DataFrame:
    """(key, field, rank): which raw field an attribute fills, lower ranks first."""
    rows: list[tuple[str, str, int]] = []
    for field, keys in SEMANTIC_KEYS.items():
        rows += [(key, field, len(rows)) for key in keys]
    for fmt in GATEWAY_FORMATS:
        for field, paths in fmt.paths.items():
            for path in paths:
                parts = path_keys(path)
                if parts is not None:
                    rows.append((".".join(parts), field, len(rows)))
    schema = {"key": pl.String, "field": pl.String, "rank": pl.Int32}
    return pl.DataFrame(rows, schema=schema, orient="row")


KEYS = _key_table()
RAW_FIELDS = tuple(dict.fromkeys(KEYS["field"].to_list()))
NO_STATUS = (
    "no HTTP status: no status attribute (http.response.status_code or a gateway's), and no "
    "string body to read as an access-log line"
)
NOT_A_LINE = "body is not an access-log line of any known format, and no HTTP status attribute"


def value_text() -> pl.Expr:
    """An attribute's scalar value as the text a log line would hold: 409 not 409.0."""
    kind, real = pl.col("kind"), pl.col("real")
    whole = real.is_finite() & (real == real.round()) & (real.abs() < 1e15)
    return (
        pl.when(kind == STRING)
        .then(pl.col("text"))
        .when(kind == INT)
        .then(pl.col("integer").cast(pl.String))
        .when(kind == BOOL)
        .then(pl.when(pl.col("integer") == 1).then(pl.lit("true")).otherwise(pl.lit("false")))
        .when((kind == DOUBLE) & whole)
        .then(real.cast(pl.Int64, strict=False).cast(pl.String))
        .when(kind == DOUBLE)
        .then(real.cast(pl.String))
    )


def attribute_fields(decoded: Decoded) -> pl.DataFrame:
    """One row per record: each raw field from its best attribute (null when none)."""
    attributes = decoded.attributes.filter(pl.col("where") != RESOURCE)
    found = (
        attributes.join(KEYS, on="key", how="inner")
        .with_columns(value=value_text(), rank=pl.col("rank") + pl.col("where") * 100_000)
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
        .sort("owner", "field", "rank")
        .unique(["owner", "field"], keep="first", maintain_order=True)
    )
    frame = pl.DataFrame({"owner": pl.int_range(decoded.count, dtype=pl.Int32, eager=True)})
    if found.height:
        wide = found.pivot(on="field", index="owner", values="value")
        frame = frame.join(wide, on="owner", how="left")
    missing = [pl.lit(None, pl.String).alias(f) for f in RAW_FIELDS if f not in frame.columns]
    return frame.with_columns(missing).select("owner", *RAW_FIELDS)


def service_names(decoded: Decoded) -> pl.Series:
    """Each record's resource ``service.name`` (UNKNOWN_SERVICE when it has none)."""
    names = (
        decoded.attributes.filter(
            (pl.col("where") == RESOURCE)
            & (pl.col("key") == "service.name")
            & (pl.col("kind") == STRING)
        )
        .group_by("owner")
        .agg(pl.col("text").last())
        .rename({"owner": "resource", "text": "service_name"})
    )
    return (
        decoded.records.select("resource")
        .join(names, on="resource", how="left", maintain_order="left")
        .select(pl.col("service_name").fill_null(UNKNOWN_SERVICE))
        .to_series()
    )


def _record_time() -> pl.Expr:
    nanos = pl.when(pl.col("time_ns") > 0).then("time_ns").otherwise("observed_ns")
    return pl.when(nanos > 0).then(pl.from_epoch(nanos, time_unit="ns").cast(pl.Datetime("us")))


def _sample_line(fields: list[str]) -> pl.Expr:
    """What a reject shows of an attribute record: its mapped fields as ``name=value``."""
    parts = [pl.when(pl.col(f).is_not_null()).then(pl.lit(f"{f}=") + pl.col(f)) for f in fields]
    return pl.concat_str([pl.lit("otlp:"), *parts], separator=" ", ignore_nulls=True)


OUTPUT = ["line", "offset", *PARSED_COLUMNS, "reject"]


def from_attributes(records: pl.DataFrame, options: IngestOptions) -> pl.DataFrame:
    """Records with an HTTP status attribute → parsed lines, through the same conversions a
    JSON log's fields go through."""
    raw = [f for f in RAW_FIELDS if not f.startswith("_") and f not in ("host", "service")]
    frame = records.with_columns(line=_sample_line([f for f in RAW_FIELDS if f != "_route"]))
    frame = convert(frame.rename({"service": "_service", "host": "_host"}), set(raw), [])
    frame = frame.with_columns(
        ts=pl.coalesce(pl.col("ts"), _record_time()),
        path=pl.coalesce(pl.col("path"), pl.col("_route")),
        service=pl.coalesce("_service", "service_name", "_host"),
    )
    return frame.with_columns(reject=reject_reason(pl.lit(True), "OTLP")).select(OUTPUT)


def from_bodies(
    records: pl.DataFrame, fmt: LogFormat | None, options: IngestOptions
) -> pl.DataFrame:
    """Records whose body is an access-log line → that line parsed by its format."""
    lines = records.select(pl.col("body").alias("line"), "offset")
    if fmt is None:
        frame = lines.with_columns(
            [pl.lit(None, dtype).alias(name) for name, dtype in PARSED_COLUMNS.items()]
        )
        return frame.with_columns(reject=pl.lit(NOT_A_LINE)).select(OUTPUT)
    parsed = fmt.parse(lines, detail_statuses=detail_statuses(options))
    names = records.select("service_name").to_series()
    parsed = parsed.with_columns(service=pl.coalesce(pl.col("service"), names))
    return parsed.select(OUTPUT)


def without_status(records: pl.DataFrame) -> pl.DataFrame:
    frame = records.select(
        line=_sample_line([f for f in RAW_FIELDS if f != "_route"]), offset="offset"
    )
    frame = frame.with_columns(
        [pl.lit(None, dtype).alias(name) for name, dtype in PARSED_COLUMNS.items()]
    )
    return frame.with_columns(reject=pl.lit(NO_STATUS)).select(OUTPUT)


@dataclass(frozen=True)
class Accepted:
    """What a request became: records committed, of which rejected (no row, a reject)."""

    records: int
    rejected: int
    reason: str | None  # the first rejected record's reason


def records_of(decoded: Decoded) -> pl.DataFrame:
    """One row per record: its fields, its resource's service name and its raw fields."""
    return pl.concat(
        [
            decoded.records.with_columns(service_name=service_names(decoded)),
            attribute_fields(decoded).drop("owner"),
        ],
        how="horizontal",
    )


def parse_stream(
    stream: pl.DataFrame,
    options: IngestOptions,
    body_format: Callable[[pl.DataFrame], LogFormat | None],
) -> pl.DataFrame:
    """The records of one source (with their offsets) as parsed lines: by their attributes,
    by their body in the format ``body_format(lines)`` gives, or rejected."""
    by_attributes = pl.col("status").is_not_null()
    has_line = pl.col("body").str.strip_chars().ne("").fill_null(False)
    parts = [from_attributes(stream.filter(by_attributes), options)]
    lines = stream.filter(~by_attributes & has_line)
    if lines.height:
        parts.append(from_bodies(lines, body_format(lines), options))
    parts.append(without_status(stream.filter(~by_attributes & ~has_line)))
    return pl.concat(parts, how="vertical_relaxed").sort("offset")


def detect_body_format(lines: pl.DataFrame) -> LogFormat | None:
    """The format of body lines, detected as a file's is (None: no known format)."""
    try:
        return detect_format(lines.select(pl.col("body").alias("line")))
    except UnknownFormat:
        return None


class OtlpIntake:
    """Commits OTLP requests into the store, one at a time, on a cursor of serve's connection.

    ``options()`` gives the [ingest] options in force (a config reload applies to the next
    request). ``accept`` returns only once the rows are committed.
    """

    def __init__(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        options: Callable[[], IngestOptions],
    ) -> None:
        self._cursor = cursor
        self._options = options
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer: Writer | None = None
        self._formats: dict[int, LogFormat] = {}  # source → the format of its body lines

    def start(self) -> None:
        """(serve starts its services; the intake opens its cursor at its first request)"""

    def stop(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con, self._writer = None, None

    def accept(self, decoded: Decoded, digest: str = "") -> Accepted:
        """``digest`` (of the request's body) is for a store without transactions."""
        with self._lock:
            if self._writer is None:
                self._con = self._cursor()
                self._writer = Writer(self._con)
            return self._commit(self._writer, decoded, self._options())

    def _commit(self, writer: Writer, decoded: Decoded, options: IngestOptions) -> Accepted:
        records = records_of(decoded)
        batches: list[Batch] = []
        for (name,), stream in records.group_by("service_name", maintain_order=True):
            source = writer.stream_source(f"{SOURCE_PREFIX}{name}")
            if source.format is None:
                writer.set_format(source.source_id, FORMAT, None)
            stream = stream.with_columns(
                offset=pl.int_range(pl.len(), dtype=pl.Int64) + source.offset
            )
            parsed = parse_stream(stream, options, partial(self._body_format, writer, source))
            end = source.offset + stream.height
            batches.append(batch_from_parsed(parsed, options, source.source_id, source.offset, end))
        writer.commit_all(batches)
        rejects = [b.rejects for b in batches if b.rejects.height]
        reason = str(pl.concat(rejects)["reason"][0]) if rejects else None
        return Accepted(records.height, sum(b.rejects.height for b in batches), reason)

    def _body_format(
        self, writer: Writer, source: SourceRecord, lines: pl.DataFrame
    ) -> LogFormat | None:
        """The format of a source's body lines: remembered, stored, or detected now."""
        source_id, stored = source.source_id, source.format
        if source_id in self._formats:
            return self._formats[source_id]
        if stored in FORMATS:
            fmt: LogFormat = FORMATS[stored]
        else:
            found = detect_body_format(lines)
            if found is None:
                return None
            fmt = found
            writer.set_format(source_id, fmt.name, None)
        self._formats[source_id] = fmt
        return fmt
