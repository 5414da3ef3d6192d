"""serve's annotation endpoints (an APIRouter that serve includes): changes such as deploys,
written down so that incidents can name the change that preceded them.

POST /api/annotations   {"at": ISO-8601 | "now" | "10m" (default now), "text": "orders v1.42",
                         "service": "orders" (optional)}
GET /api/annotations    ?since=&until=&service= : the catalog's ``annotations`` query

Writing needs serve's token like every endpoint (conflictlens.api checks it before any route).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

import duckdb
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from conflictlens._errors import InvalidValue, first_line
from conflictlens.analysis import TimeRange, run_query
from conflictlens.output import records
from conflictlens.store.annotations import AnnotationError, add_annotation
from conflictlens.timeparse import parse_time

Cursor = Callable[[], duckdb.DuckDBPyConnection]
Clock = Callable[[], dt.datetime]
# Stores one annotation (on the cursor's store) and answers its id: at, text, service, now.
Writer = Callable[[Any, dt.datetime, str, str | None, dt.datetime], int]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AnnotationRequest(BaseModel):
    at: str | None = Field(
        None,
        description="When the change happened: ISO-8601 (UTC unless an offset is given), "
        "a duration back from now (10m, 2h), or now (the default)",
        examples=["2026-11-19T15:20:00Z"],
    )
    text: str = Field(description="What changed, one line", examples=["orders v1.42"])
    service: str | None = Field(
        None, description="The service it changed; none: it concerns every service"
    )


class OneLineErrors(APIRoute):
    """A body that does not fit the model is a 400 with one line naming the field (FastAPI's
    default is a 422 with a list of objects)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise HTTPException(400, first_error(exc.errors())) from None

        return handle


def first_error(errors: Any) -> str:
    """``text: Field required`` from pydantic's list of errors."""
    if not errors:
        return "invalid request body"
    error = errors[0]
    where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
    return f"{where}: {str(error.get('msg', 'invalid')).splitlines()[0]}"


def annotation_time(text: str | None, now: dt.datetime) -> dt.datetime:
    """``at`` as given: empty or ``now`` is now; else the time grammar of --since."""
    if text is None or not text.strip():
        return now
    try:
        return parse_time(text, now=now)
    except InvalidValue as exc:  # named as the field it came in
        raise AnnotationError(f"at: {first_line(exc)}") from None


def annotations_router(
    cursor: Cursor, clock: Clock = utc_now, write: Writer = add_annotation
) -> APIRouter:
    """``write`` stores one annotation: into serve's DuckDB file by default (a ClickHouse
    replica passes its own, conflictlens.api_clickhouse)."""
    router = APIRouter(prefix="/api/annotations", tags=["annotations"], route_class=OneLineErrors)

    @router.post("", status_code=201)
    def add(request: AnnotationRequest) -> dict[str, Any]:
        """Store a change event (a deploy): at, text and optionally service; incidents that begin
        within 15 minutes after it name it."""
        now = clock()
        at = annotation_time(request.at, now)
        with cursor() as con:
            number = write(con, at, request.text, request.service, now)
        return {"id": number}

    @router.get("")
    def listed(
        since: str | None = None, until: str | None = None, service: str | None = None
    ) -> list[dict[str, Any]]:
        """The change events between since and until (of SERVICE, and those of no service)."""
        span = TimeRange(parse_time(since) if since else None, parse_time(until) if until else None)
        with cursor() as con:
            frame = run_query(con, "annotations", span, service=service)
        return records(frame)

    return router
