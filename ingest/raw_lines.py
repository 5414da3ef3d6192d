"""Each conflict event's log line as it was read, to show beside the parsed event.

Polars expressions over a batch's captured rows only (conflicts are a small share of the
lines): no line is looked at in Python. What the store keeps from a line elsewhere, the line
keeps too, so the options that keep data out of the store keep it out of the line:

- without keep_query, query strings (which often carry tokens) are cut: ``?...`` after any
  path in the line (the request target, and a referer's); a query logged on its own in a
  JSON field (``"args"``, Kong's ``"querystring": {...}``) is emptied, and so is one logged
  as a quoted field of a text format (``"$args"``); a bare unquoted ``$args`` is not;
- with anonymize_clients, the client's address becomes the anonymized one, and so does
  every other IPv4 address in the line (an X-Forwarded-For list holds more clients).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from conflictlens.ingest.options import IngestOptions

# A path followed by a query: the query, up to a space or an unescaped quote, is cut.
_QUERY_AFTER_PATH = r'(/[^\s"?]*)\?(?:[^\s"\\]|\\.)*'
# JSON fields that hold the query on its own (nginx $args, Kong's querystring object).
_QUERY_KEY = r'("(?:args|query_string|querystring|query|url\.query)"\s*:\s*)'
_QUERY_FIELD_TEXT = _QUERY_KEY + r'"(?:[^"\\]|\\.)*"'
_QUERY_FIELD_OBJECT = _QUERY_KEY + r"\{[^{}]*\}"
_IPV4 = r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b"
# Set by ingest.batch before clients are anonymized: the client as logged.
LOGGED_CLIENT = "_client_logged"


def raw_lines(captured: pl.DataFrame, options: IngestOptions) -> pl.Series:
    """The stored ``raw_line`` of each captured row: null for a row that is no conflict (with
    keep_all every request is an event) and for an empty one (an OTLP record with no body).
    Only the rows that need it are rewritten (most requests carry no query string)."""
    line = pl.col("line").str.strip_chars_end("\r\n")
    conflict = pl.col("status").is_in(options.capture_statuses) & (line != "")
    text = captured.select(
        pl.when(conflict).then(line).otherwise(pl.lit(None, pl.String)).alias("raw_line")
    ).to_series()
    if not options.keep_query:
        queried = text.str.contains("?", literal=True) | captured["query"].is_not_null()
        text = _rewritten(text, captured, queried, _without_query)
    if options.anonymize_clients and LOGGED_CLIENT in captured.columns:
        text = _rewritten(text, captured, text.is_not_null(), _anonymized)
    return text


def _rewritten(
    text: pl.Series, captured: pl.DataFrame, rows: pl.Series, rewrite: Callable[[], pl.Expr]
) -> pl.Series:
    """``text`` with ``rewrite`` applied to the ``rows`` (a mask) alone."""
    where = rows.fill_null(False).arg_true()
    if not len(where):
        return text
    subset = captured.gather(where).with_columns(text.gather(where))
    return text.scatter(where, subset.select(rewrite()).to_series())


def _without_query() -> pl.Expr:
    text = (
        pl.col("raw_line")
        .str.replace_all(_QUERY_AFTER_PATH, "${1}")
        .str.replace_all(_QUERY_FIELD_TEXT, '${1}""')
        .str.replace_all(_QUERY_FIELD_OBJECT, "${1}{}")
    )
    return _cut_first(text, pl.lit('"') + pl.col("query") + pl.lit('"'), '""')


def _anonymized() -> pl.Expr:
    text = _cut_first(pl.col("raw_line"), pl.col(LOGGED_CLIENT), pl.col("client"))
    return text.str.replace_all(_IPV4, "${1}.0")


def _cut_first(text: pl.Expr, needle: pl.Expr, replacement: str | pl.Expr) -> pl.Expr:
    """``text`` with the first occurrence of this row's ``needle`` replaced (Polars cannot
    replace a pattern that differs per row: found by byte position, cut as bytes)."""
    where = text.str.find(needle, literal=True)
    data = text.cast(pl.Binary)
    before = data.bin.slice(0, where).cast(pl.String)
    after = data.bin.slice(where + needle.str.len_bytes()).cast(pl.String)
    new = replacement if isinstance(replacement, pl.Expr) else pl.lit(replacement)
    found = where.is_not_null() & needle.is_not_null() & (needle.str.len_bytes() > 0)
    return pl.when(found).then(pl.concat_str(before, new.fill_null(""), after)).otherwise(text)
