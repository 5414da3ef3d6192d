"""``POST /v1/logs``: OTLP/HTTP log intake on serve's address (protobuf or JSON, gzip or not).

Behind the same token and Host/Origin rules as the rest of the API (see api.refuse, which
lets this path alone send application/x-protobuf). A request is answered only after its
records are committed (ingest.otlp.OtlpIntake), with OTLP's partial success when some records
were rejected; a request that cannot be decoded is a 400 whose message says why, and a store
that cannot commit now is a 503 (senders retry it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from typing import Protocol

import duckdb
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from conflictlens._errors import first_line
from conflictlens.api import OTLP_PATH
from conflictlens.ingest.batch import DATA_ERRORS
from conflictlens.ingest.otlp import Accepted
from conflictlens.ingest.otlp_decode import Decoded, OtlpError, decode_json, decode_protobuf

log = logging.getLogger("conflictlens.otlp")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_DECOMPRESSED_BYTES = 128 << 20  # a gzip bomb stops here
# google.rpc.Code values for the Status body of a failure.
INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE = 3, 8, 14


class Intake(Protocol):
    """Where accepted records go: OtlpIntake (DuckDB) or replicated_otlp's (ClickHouse)."""

    def accept(self, decoded: Decoded, digest: str = "") -> Accepted: ...


def otlp_router(intake: Intake) -> APIRouter:
    router = APIRouter()

    @router.post(OTLP_PATH)
    async def export_logs(request: Request) -> Response:
        """OTLP/HTTP log intake: ExportLogsServiceRequest as protobuf or JSON (gzip allowed); each
        record's attributes become a request."""
        as_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == JSON
        body = await request.body()
        return await run_in_threadpool(
            handle, intake, body, request.headers.get("content-encoding", ""), as_json
        )

    return router


def handle(intake: Intake, body: bytes, encoding: str, as_json: bool) -> Response:
    """Decode, commit, answer: the whole request off the event loop. The intake gets the
    digest of the decompressed body: on ClickHouse, what names the request's rows."""
    try:
        data = decompress(body, encoding)
        decoded = decode_json(data) if as_json else decode_protobuf(data)
    except OtlpError as exc:
        code = RESOURCE_EXHAUSTED if "over" in str(exc) else INVALID_ARGUMENT
        return failure(413 if code == RESOURCE_EXHAUSTED else 400, code, str(exc), as_json)
    try:
        accepted = intake.accept(decoded, hashlib.sha256(data).hexdigest())
    except DATA_ERRORS as exc:
        reason = first_line(exc)
        return failure(400, INVALID_ARGUMENT, f"a record cannot be stored: {reason}", as_json)
    except (duckdb.Error, RuntimeError) as exc:
        log.warning("OTLP request not committed: %s", exc)
        reason = "the store cannot commit now; send the request again"
        return failure(503, UNAVAILABLE, reason, as_json, retry_after=1)
    return success(accepted, as_json)


def decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise OtlpError(f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    inflater = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, MAX_DECOMPRESSED_BYTES)
    except zlib.error as exc:
        raise OtlpError(f"the body is not valid {encoding} ({exc})") from None
    if inflater.unconsumed_tail:
        raise OtlpError(f"the body decompresses to over {MAX_DECOMPRESSED_BYTES:,} bytes")
    if not inflater.eof:
        raise OtlpError(f"the {encoding} body is truncated")
    return data


def success(accepted: Accepted, as_json: bool) -> Response:
    """ExportLogsServiceResponse, with partial_success when records were rejected."""
    message = ""
    if accepted.rejected:
        message = (
            f"{accepted.rejected} of {accepted.records} log record(s) rejected; "
            f"the first: {accepted.reason}"
        )
    if as_json:
        partial = (
            {"rejectedLogRecords": str(accepted.rejected), "errorMessage": message}
            if accepted.rejected
            else {}
        )
        return Response(json.dumps({"partialSuccess": partial}), media_type=JSON)
    body = b""
    if accepted.rejected:
        counts = _varint_field(1, accepted.rejected) + _bytes_field(2, message.encode())
        body = _bytes_field(1, counts)
    return Response(body, media_type=PROTOBUF)


def failure(
    status: int, code: int, message: str, as_json: bool, retry_after: int | None = None
) -> Response:
    """A google.rpc.Status body, as OTLP/HTTP answers a failed request."""
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if as_json:
        text = json.dumps({"code": code, "message": message})
        return Response(text, status_code=status, media_type=JSON, headers=headers)
    body = _varint_field(1, code) + _bytes_field(2, message.encode())
    return Response(body, status_code=status, media_type=PROTOBUF, headers=headers)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value
