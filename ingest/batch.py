"""One chunk of raw lines → the rows to store: events, per-minute rollups and rejects.

A pure function of its inputs (no I/O), so that it can run on worker threads and be tested
on its own. Everything here is Polars expressions over the whole chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb
import polars as pl

from conflictlens._errors import first_line
from conflictlens.ingest.formats import LogFormat, scan
from conflictlens.ingest.formats.fields import EMPTY_LINE, named_rejects
from conflictlens.ingest.kinds import classify
from conflictlens.ingest.lines import REJECT_SAMPLE_BYTES, Chunk, SplitLines, split_lines
from conflictlens.ingest.options import IngestOptions
from conflictlens.ingest.raw_lines import LOGGED_CLIENT, raw_lines
from conflictlens.ingest.routes import apply_routes
from conflictlens.store.writer import Batch


def parse_chunk(chunk: Chunk, fmt: LogFormat, options: IngestOptions, source_id: int) -> Batch:
    split = split_lines(chunk)
    parsed = fmt.parse(split.lines, detail_statuses=detail_statuses(options))
    return batch_from_parsed(
        parsed, options, source_id, chunk.start, chunk.end, unreadable_lines(split, chunk)
    )


def detail_statuses(options: IngestOptions) -> frozenset[int] | None:
    """The statuses whose lines become events (None: every line may)."""
    return None if options.keep_all else options.capture_statuses


def batch_from_parsed(
    parsed: pl.DataFrame,
    options: IngestOptions,
    source_id: int,
    start: int,
    end: int,
    unreadable: pl.DataFrame | None = None,
) -> Batch:
    """Parsed lines (a format's output: ``line``, ``offset``, the parsed columns and
    ``reject``) of the source positions [start, end) → the batch to commit. ``unreadable``:
    lines that never reached the format (offset, reason, sample), each a reject."""
    unreadable = _reject_frame([], [], []) if unreadable is None else unreadable
    parsed = parsed.with_columns(reject=_boundary_rejects(options))
    good = parsed.filter(pl.col("reject").is_null())
    if options.service is not None:
        good = good.with_columns(service=pl.lit(options.service))
    if options.anonymize_clients:
        # (the client as logged is kept for the raw lines to anonymize: ingest.raw_lines)
        good = good.with_columns(
            pl.col("client").alias(LOGGED_CLIENT), client=anonymize(pl.col("client"))
        )
    captured = (
        good if options.keep_all else good.filter(pl.col("status").is_in(options.capture_statuses))
    )
    events = build_events(captured, options, source_id)
    bad = named_rejects(parsed.filter(pl.col("reject").is_not_null()))
    rejects = build_rejects(bad, unreadable, source_id)
    lines = parsed.height + unreadable.height
    rollups = build_rollups(good, options)
    skipped = parsed.height - good.height - (rejects.height - unreadable.height)
    conflicts = (
        events.filter(pl.col("status").is_in(options.capture_statuses)).height
        if options.keep_all
        else events.height
    )
    return Batch(source_id, start, end, lines, events, rollups, rejects, skipped, conflicts)


def _boundary_rejects(options: IngestOptions) -> pl.Expr:
    """The format's reject reason, then the values no later step may see: an over-long line,
    a timestamp outside the accepted window, a latency that is not a finite number."""
    limit = options.max_line_bytes
    ts = pl.col("ts")
    latency = pl.col("latency_ms")
    window = f"{options.earliest:%Y-%m-%d}..{options.latest:%Y-%m-%d}"
    return (
        pl.when(
            pl.col("line").str.len_bytes() - pl.col("line").str.ends_with("\n").cast(pl.UInt32)
            > limit
        )
        .then(pl.lit(f"line longer than {limit} bytes"))
        .when(pl.col("reject").is_not_null())
        .then(pl.col("reject"))
        .when((ts < options.earliest) | (ts >= options.latest))
        .then(pl.lit(f"timestamp outside {window}"))
        .when(latency.is_not_null() & ~latency.is_finite())
        .then(pl.lit("latency is not a finite number"))
        .otherwise(pl.lit(None, pl.String))
    )


def anonymize(client: pl.Expr) -> pl.Expr:
    """Keep the network, drop the host: 203.0.113.7 → 203.0.113.0, 2001:db8:1:2::5 → 2001:db8:1::"""
    v4 = client.str.replace(r"^(\d+\.\d+\.\d+)\.\d+$", "${1}.0")
    v6 = client.str.replace(r"^([0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f]*):.*$", "${1}::")
    return pl.when(client.str.contains(":")).then(v6).otherwise(v4)


def build_events(captured: pl.DataFrame, options: IngestOptions, source_id: int) -> pl.DataFrame:
    captured = classify(
        apply_routes(captured, options.route_rules, with_ids=True), options.kind_rules
    )
    return captured.select(
        "ts",
        "method",
        "path",
        (pl.col("query") if options.keep_query else pl.lit(None, pl.String)).alias("query"),
        "route",
        "resource_ids",
        "status",
        "error_code",
        "kind",
        "kind_rule",
        "client",
        "user_agent",
        "bytes",
        "latency_ms",
        "service",
        "upstream",
        "request_id",
        pl.lit(source_id, pl.Int32).alias("source_id"),
        "offset",
        raw_lines(captured, options),
    )


def build_rollups(good: pl.DataFrame, options: IngestOptions) -> pl.DataFrame:
    """Per-minute request counts by route.

    The compiled templater is cheaper than grouping by raw path (nearly one group per line
    where paths carry ids), so every line is templated and grouped once. User rules are
    regexes: then, and without the templater, lines are first grouped by their raw path, so
    each distinct path is templated once, however often it was requested in the chunk.
    """
    minute = pl.col("ts").dt.truncate("1m").alias("minute")
    if scan.available() and not options.route_rules:
        columns = good.select(minute, "service", "method", "path", "status", "bytes", "latency_ms")
        return _count(apply_routes(columns, with_ids=False), "route")
    by_path = _count(good.with_columns(minute), "path")
    return (
        apply_routes(by_path, options.route_rules, with_ids=False)
        .group_by("minute", "service", "method", "route", "status")
        .agg(pl.col("requests", "bytes", "latency_ms_sum", "latency_count").sum())
    )


def _count(lines: pl.DataFrame, by: str) -> pl.DataFrame:
    return lines.group_by("minute", "service", "method", by, "status").agg(
        pl.len().cast(pl.Int64).alias("requests"),
        pl.col("bytes").sum().cast(pl.Int64).alias("bytes"),
        pl.col("latency_ms").sum().alias("latency_ms_sum"),
        pl.col("latency_ms").count().cast(pl.Int64).alias("latency_count"),
    )


def build_rejects(bad: pl.DataFrame, unreadable: pl.DataFrame, source_id: int) -> pl.DataFrame:
    """Every line that did not become a row, with its offset, reason and first bytes; empty
    lines are skipped, not stored (a file of newlines would otherwise be a file of rejects)."""
    parsed = bad.filter(pl.col("reject") != EMPTY_LINE).select(
        pl.col("offset"),
        pl.col("reject").alias("reason"),
        pl.col("line")
        .str.strip_chars_end("\r\n")
        .cast(pl.Binary)
        .bin.slice(0, REJECT_SAMPLE_BYTES)
        .alias("sample"),
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return pl.concat([parsed, unreadable]).with_columns(
        pl.lit(source_id, pl.Int32).alias("source_id"),
        pl.lit(now, pl.Datetime("us")).alias("seen_at"),
    )


def unreadable_lines(split: SplitLines, chunk: Chunk) -> pl.DataFrame:
    """The lines of a chunk no format sees: invalid UTF-8, and lines over the chunk limit."""
    offsets = [*split.invalid_offsets.tolist(), *(o.offset for o in chunk.overlong)]
    reasons = ["invalid UTF-8"] * len(split.invalid_offsets) + [
        f"line longer than the chunk limit ({o.length} bytes)" for o in chunk.overlong
    ]
    samples = [*split.invalid_samples, *(o.sample for o in chunk.overlong)]
    return _reject_frame(offsets, reasons, samples)


def _reject_frame(offsets: list[int], reasons: list[str], samples: list[bytes]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "offset": pl.Series(offsets, dtype=pl.Int64),
            "reason": pl.Series(reasons, dtype=pl.String),
            "sample": pl.Series(samples, dtype=pl.Binary),
        }
    )


# Errors of the data rather than of the store: a line that no check foresaw breaks a later
# step (a conversion, an overflow). Such a line must become a reject, never a stuck file.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ArithmeticError,
    ValueError,
    pl.exceptions.PolarsError,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)
Commit = Callable[[Batch], None]


def store_chunk(
    chunk: Chunk, fmt: LogFormat, options: IngestOptions, source_id: int, commit: Commit
) -> list[Batch]:
    """Parse and commit a chunk. When its data breaks a step, the chunk is cut in halves
    until the lines that do are alone, and each of those is committed as a reject with the
    error as its reason: the good lines around it are stored, the offset moves on."""
    try:
        batch = parse_chunk(chunk, fmt, options, source_id)
        commit(batch)
        return [batch]
    except DATA_ERRORS as exc:
        error = exc
    halves = _halves(chunk)
    if halves is None:
        lone = _unstorable(chunk, fmt, options, source_id, error)
        commit(lone)
        return [lone]
    return [b for half in halves for b in store_chunk(half, fmt, options, source_id, commit)]


def _halves(chunk: Chunk) -> tuple[Chunk, Chunk] | None:
    """The chunk cut at the line boundary nearest its middle, or None for a single line."""
    data = bytes(chunk.data)
    body = data[:-1] if data.endswith(b"\n") else data
    cut = body.find(b"\n", len(body) // 2) + 1 or body.rfind(b"\n") + 1
    if cut <= 0:
        return None
    at = chunk.data_start + cut
    first = Chunk(data[:cut], chunk.start, at, chunk.data_start, chunk.overlong)
    return first, Chunk(data[cut:], at, chunk.end, at)


def _unstorable(
    chunk: Chunk,
    fmt: LogFormat,
    options: IngestOptions,
    source_id: int,
    error: BaseException,
) -> Batch:
    """A one-line chunk whose line breaks a step, as a batch holding it as a reject."""
    empty = parse_chunk(
        Chunk(b"", chunk.start, chunk.end, chunk.end, chunk.overlong), fmt, options, source_id
    )
    reason = first_line(error)
    line = _reject_frame(
        [chunk.data_start],
        [f"cannot be stored: {reason}"[:200]],
        [bytes(chunk.data).rstrip(b"\r\n")[:REJECT_SAMPLE_BYTES]],
    ).with_columns(
        pl.lit(source_id, pl.Int32).alias("source_id"),
        pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None), pl.Datetime("us")).alias("seen_at"),
    )
    rejects = pl.concat([line, empty.rejects], how="vertical_relaxed")
    return Batch(
        source_id, chunk.start, chunk.end, empty.lines + 1, empty.events, empty.rollups, rejects
    )
