"""The registry of log formats and detection of a file's format from its first lines."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Protocol

import polars as pl

from ingest.formats.clf import PRESETS, ClfFormat, FormatError, compile_log_format
from ingest.formats.fields import RECOGNISED_REJECTS
from ingest.formats.gateways import GATEWAY_FORMATS
from ingest.formats.jsonl import JSON_FORMATS, mapped_json_format


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
DETECT_MIN_SHARE = 0.5


class UnknownFormat(FormatError):
    """No registered format matches a file's first lines."""


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str, log_format: str | None = None) -> LogFormat:
    """A registered format by name; with ``log_format``, the user's own: an nginx/Apache
    format string, or for ``json`` a JSON object mapping raw fields to JSON paths."""
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


def detect_format(sample: pl.DataFrame) -> LogFormat:
    """Pick the format that parses most of the first non-empty lines without a reject (or
    with a reject that says the line is the format's own, without a request: RECOGNISED_REJECTS).

    On a tie the earlier format wins, so the first format that parses every line is the
    answer and the rest are not tried. Lines that are mostly JSON objects are only tried
    with the JSON formats, and the others only with the text formats.
    """
    lines = sample.filter(pl.col("line").str.strip_chars_end("\r\n") != "").head(DETECT_LINES)
    if lines.height == 0:
        raise UnknownFormat("no lines to detect the format from")
    json_share = int(lines["line"].str.starts_with("{").sum()) / lines.height
    candidates = [f for name, f in FORMATS.items() if (name in JSON_FORMATS) == (json_share > 0.5)]
    best: tuple[float, LogFormat] | None = None
    for fmt in candidates:
        parsed = fmt.parse(lines)
        recognised = pl.col("reject").is_null() | pl.col("reject").is_in(RECOGNISED_REJECTS)
        share = float(parsed.select(recognised.sum()).item()) / parsed.height
        if best is None or share > best[0]:
            best = (share, fmt)
        if share == 1.0:
            break
    if best is None or best[0] < DETECT_MIN_SHARE:
        raise UnknownFormat(
            f"cannot recognise the log format (tried {', '.join(f.name for f in candidates)}); "
            "pass --format or --log-format"
        )
    return best[1]


__all__ = [
    "FORMATS",
    "ClfFormat",
    "FormatError",
    "LogFormat",
    "UnknownFormat",
    "compile_log_format",
    "detect_format",
    "format_names",
    "get_format",
]
