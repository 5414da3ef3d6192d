"""Annotations: changes (a deploy, a flag flip) written down with the time they happened, so
that an incident can name the change that preceded it. Times are naive UTC like every
timestamp in the store; the store checks the values, the callers parse the user's words."""

from __future__ import annotations

import datetime as dt

import duckdb

from conflictlens._errors import InputError

MAX_TEXT = 500  # a change's name, not its release notes
MAX_SERVICE = 200
# The window the store accepts (ingest rejects log times outside it too).
EARLIEST = dt.datetime(1991, 1, 1)
LATEST = dt.datetime(2100, 1, 1)


class AnnotationError(InputError, ValueError):
    """An annotation that cannot be stored; the message is one line naming the field."""


def checked(at: dt.datetime, text: str, service: str | None) -> tuple[dt.datetime, str, str | None]:
    """The values as stored: ``at`` in naive UTC, the text and service stripped (an empty
    service is none). AnnotationError names the first bad field."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    if not EARLIEST <= at < LATEST:
        raise AnnotationError(f"at: must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    words = text.strip()
    if not words:
        raise AnnotationError("text: must not be empty")
    if len(words) > MAX_TEXT or "\n" in words or "\r" in words:
        raise AnnotationError(f"text: one line of at most {MAX_TEXT} characters")
    name = (service or "").strip() or None
    if name is not None and (len(name) > MAX_SERVICE or any(c.isspace() for c in name)):
        raise AnnotationError(f"service: a name without spaces, at most {MAX_SERVICE} characters")
    return at, words, name


def add_annotation(
    con: duckdb.DuckDBPyConnection,
    at: dt.datetime,
    text: str,
    service: str | None,
    now: dt.datetime,
) -> int:
    """Store one annotation (checked first); its id."""
    at, text, service = checked(at, text, service)
    rows = con.execute(
        'INSERT INTO annotations ("at", text, service, created_at) VALUES (?, ?, ?, ?) RETURNING id',
        [at, text, service, now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now],
    ).fetchall()
    return int(rows[0][0])
