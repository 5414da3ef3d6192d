"""Annotations in a ClickHouse store, written by any serve replica.

A replica has no sequence to number rows with, and a client retries a POST that timed out:
so an annotation's id is a hash of what it says (its time, text and service), and the same
id is the insert's ``insert_deduplication_token``. The same annotation posted twice, to one
replica or two, is stored once (the table keeps a deduplication window: state.ddl).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from conflictlens.store.annotations import checked

_COLUMNS = ["id", "at", "text", "service", "created_at"]


def content_id(*parts: str) -> int:
    """A row's id from its content: 53 bits of a BLAKE2b digest (exact in JSON numbers)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 11


def utc(moment: dt.datetime) -> dt.datetime:
    """Aware UTC, as the client binds DateTime64(6, 'UTC') (naive means UTC in the store)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def annotation_id(at: dt.datetime, text: str, service: str | None) -> int:
    """The id of an annotation as stored (``at`` naive UTC, values checked)."""
    return content_id("annotation", at.isoformat(), text, service or "")


def add_annotation(
    client: Any, at: dt.datetime, text: str, service: str | None, now: dt.datetime
) -> int:
    """Store one annotation (checked first) once, however often it is sent; its id."""
    at, text, service = checked(at, text, service)
    number = annotation_id(at, text, service)
    client.insert(
        "annotations",
        [[number, utc(at), text, service, utc(now)]],
        column_names=_COLUMNS,
        settings={"insert_deduplication_token": f"annotation|{number}"},
    )
    return number
