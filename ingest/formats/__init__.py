"""The registry of log formats and detection of a file's format from its first lines."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from conflictlens.ingest.formats.clf import PRESETS, ClfFormat, FormatError, compile_log_format
from conflictlens.ingest.formats.fields import NOT_RECOGNISED, PARSED_COLUMNS, RECOGNISED_REJECTS
from conflictlens.ingest.formats.gateways import GATEWAY_FORMATS
from conflictlens.ingest.formats.json_layouts import (
    is_nginx_json_layout,
    nginx_json_layout_format,
)
from conflictlens.ingest.formats.jsonl import JSON_FORMATS, mapped_json_format


class LogFormat(Protocol):
    @property
    def name(self) -> str: ...

    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        """Columns ``line``, ``offset`` in; parsed columns plus ``reject`` (null when good) out.

        ``detail_statuses``: only lines with these statuses become events, so a format may
        leave the fields only events keep (client, user agent, error code ...) null on the
        others; None: every line may become one.
        """
        ...


# Order matters for detection: when two formats match the same share of lines, the
# earlier (more specific) one wins. Gateway text formats come before the CLF presets, whose
# lenient tails would also accept e.g. Traefik's CLF lines.
FORMATS: dict[str, LogFormat] = {**JSON_FORMATS, **GATEWAY_FORMATS, **PRESETS}

DETECT_LINES = 200


class UnknownFormat(FormatError):
    """No registered format matches a file's first lines (``sampled`` of them were tried)."""

    def __init__(self, message: str, sampled: int = 0) -> None:
        super().__init__(message)
        self.sampled = sampled


@dataclass(frozen=True)
class Unrecognised:
    """The format of a file no registered format recognises: every line is a reject that
    says so, and the source keeps no format, so that a later import with --format (or after
    detection learns it) reads the file again from its start."""

    name: str = "unrecognised"

    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        nulls = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in PARSED_COLUMNS.items()]
        return lines.with_columns(*nulls, reject=pl.lit(NOT_RECOGNISED))


UNRECOGNISED = Unrecognised()


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str, log_format: str | None = None) -> LogFormat:
    """A registered format by name; with ``log_format``, the user's own: an nginx/Apache
    format string, an nginx JSON layout (``{"key": "$variable", ...}``), or for ``json`` a
    JSON object mapping raw fields to JSON paths."""
    if log_format and is_nginx_json_layout(log_format):
        return nginx_json_layout_format(log_format)
    if name == "json" or (log_format and log_format.lstrip().startswith("{")):
        return json_mapping_format(log_format)
    if log_format:
        return compile_log_format(log_format, name=name if name not in ("auto", "") else "custom")
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known: auto, {', '.join(FORMATS)}") from None


def json_mapping_format(mapping_text: str | None) -> LogFormat:
    """``--format json``: fields from a mapping such as {"status": "$.http.code", ...}."""
    if not mapping_text:
        raise FormatError(
            'format json needs a field mapping: --log-format \'{"status": "$.code", ...}\' '
            "or [ingest.json_fields] in the config"
        )
    try:
        mapping = json.loads(mapping_text)
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError("expected a JSON object of field: path")
        return mapped_json_format(mapping)
    except ValueError as exc:
        raise FormatError(f"invalid JSON field mapping: {exc}") from None


@dataclass(frozen=True)
class Detection:
    """What detection found: the format, how many of the sampled lines it recognised, and
    the other formats that recognised exactly as many (a tie: the first listed wins)."""

    format: LogFormat
    matched: int
    sampled: int
    ties: tuple[str, ...] = ()


def detect(sample: pl.DataFrame) -> Detection:
    """The format that recognises most of the first non-empty lines: parses them without a
    reject, or with a reject that says the line is the format's own without a request
    (RECOGNISED_REJECTS). Lines that are mostly JSON objects are only tried with the JSON
    formats, and the others only with the text formats. Of formats that recognise as many,
    the one that reads the most values wins (see _score); on a full tie the earlier one in
    FORMATS, and the others are named.

    A file may begin with lines no format takes (a gateway's startup messages, another
    container's output): when the first DETECT_LINES recognise nothing, every line of the
    sample is tried, and one recognised line is enough to name the format (the others
    become rejects with their reasons)."""
    lines = sample.filter(pl.col("line").str.strip_chars_end("\r\n") != "")
    if lines.height == 0:
        raise UnknownFormat("no lines to detect the format from")
    found = _best(lines.head(DETECT_LINES))
    if found is None and lines.height > DETECT_LINES:
        found = _best(lines)
    if found is None:
        raise UnknownFormat(
            f"cannot recognise the log format: no known format takes any of the {lines.height} "
            "lines read; pass --format or --log-format",
            lines.height,
        )
    return found


def _best(lines: pl.DataFrame) -> Detection | None:
    """The best of the JSON formats or of the text formats, the family most lines look like
    first (then the other: a JSON access log behind as many lines of other output)."""
    json_share = int(lines["line"].str.starts_with("{").sum()) / lines.height
    for json_family in (json_share > 0.5, json_share <= 0.5):
        candidates = [f for name, f in FORMATS.items() if (name in JSON_FORMATS) == json_family]
        scores = [(_score(f.parse(lines), f), f) for f in candidates]
        best = max(score for score, _ in scores)
        if best[0] > 0:
            winners = [f for score, f in scores if score == best]
            return Detection(winners[0], best[0], lines.height, tuple(f.name for f in winners[1:]))
    return None


# Read values that count beyond the parsed columns: an X-Forwarded-For address (nginx's "main"
# over combined), although the client it names fills the same column.
_EXTRA_VALUES = ("forwarded_for",)


def _score(parsed: pl.DataFrame, fmt: LogFormat) -> tuple[int, int, int, int]:
    """How many lines a format recognised, then how many values it read from them, then
    whether it is a gateway's own format, then how few fields it declares: of two formats that
    recognise every line, the one that reads more (a user agent, a latency) is the more
    specific (combined over common for combined lines); of two that read as much, a gateway's
    format, which reads the whole line, over a preset that accepts any trailing fields
    (Traefik's CLF over nginx-extended); and then the one that says no more than the lines
    hold (common over combined for common lines)."""
    recognised = pl.col("reject").is_null() | pl.col("reject").is_in(RECOGNISED_REJECTS)
    good = parsed.filter(pl.col("reject").is_null())
    columns = [*PARSED_COLUMNS, *_EXTRA_VALUES]
    values = sum(good.height - good[c].null_count() for c in columns if c in good.columns)
    gateway = int(fmt.name in GATEWAY_FORMATS or fmt.name in JSON_FORMATS)
    declared = len(getattr(fmt, "fields", ()))
    return int(parsed.select(recognised.sum()).item()), values, gateway, -declared


def detect_format(sample: pl.DataFrame) -> LogFormat:
    """The format detect() picks."""
    return detect(sample).format


__all__ = [
    "FORMATS",
    "UNRECOGNISED",
    "ClfFormat",
    "Detection",
    "FormatError",
    "LogFormat",
    "UnknownFormat",
    "compile_log_format",
    "detect",
    "detect_format",
    "format_names",
    "get_format",
]
