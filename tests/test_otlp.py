"""OTLP/HTTP log intake (``POST /v1/logs``) with the official OpenTelemetry Python exporter.

Records are sent the way a gateway or a Collector sends them: by the SDK's OTLP HTTP log
exporter (protobuf, gzip), and as OTLP/JSON made from the same messages. What is stored must
equal what was sent; a serve killed with SIGKILL while a sender sends loses nothing that the
sender was told was accepted.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import signal
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from google.protobuf import json_format
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from polars.testing import assert_frame_equal

from conflictlens.ingest.otlp_decode import OtlpError, compiled, decode_json, python_walk
from tests.helpers import query
from tests.test_serve import Serve

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
CONFLICTS = (409, 412, 423, 428)


def ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def semconv_records(service: str, count: int, *, first: int = 0) -> list[ReadableLogRecord]:
    """Requests described by the HTTP semantic conventions: every 7th a 409, every 11th a
    412, the rest 200 or 204; one path per record."""
    resource = Resource.create({"service.name": service})
    made = []
    for i in range(first, first + count):
        status = 409 if i % 7 == 0 else 412 if i % 11 == 0 else 200 if i % 2 else 204
        attributes = {
            "http.request.method": "PUT" if i % 3 else "PATCH",
            "url.path": f"/api/orders/{i}",
            "http.route": "/api/orders/{id}",
            "http.response.status_code": status,
            "client.address": f"203.0.113.{i % 250}",
            "user_agent.original": "shop-client/2.1",
            "server.address": "shop.example",
        }
        moment = T0 + dt.timedelta(seconds=i)
        record = LogRecord(timestamp=ns(moment), body=f"request {i}", attributes=attributes)
        made.append(ReadableLogRecord(record, resource=resource))
    return made


def sent_statuses(records: list[ReadableLogRecord]) -> Counter[int]:
    return Counter(int(r.log_record.attributes["http.response.status_code"]) for r in records)


def post(server: Serve, body: bytes, content_type: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        server.url + "/v1/logs",
        data=body,
        headers={"Content-Type": content_type, **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def as_json(records: list[ReadableLogRecord]) -> bytes:
    """OTLP/JSON of the exporter's own message (protobuf's JSON mapping, 64-bit integers as
    strings)."""
    return json_format.MessageToJson(encode_logs(records)).encode()


@pytest.fixture
def serve(tmp_path: Path) -> Any:
    servers: list[Serve] = []

    def start(config: str = "", db: Path | None = None) -> Serve:
        path = tmp_path / "conflictlens.toml"
        path.write_text(config)
        server = Serve(db or tmp_path / "store.duckdb", "--config", str(path))
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.stop()
        else:
            server.proc.communicate()  # a killed one: its pipes are closed all the same


# --- decoding --------------------------------------------------------------------------------


def mixed_request() -> bytes:
    records = semconv_records("shop", 30)
    odd = LogRecord(
        timestamp=ns(T0),
        body={"method": "GET", "nested": {"a": 1}},
        attributes={"ratio": 0.5, "whole": 409.0, "flag": True, "list": [1, 2], "é": "ü"},
    )
    records.append(ReadableLogRecord(odd, resource=Resource.create({"service.name": "x"})))
    return encode_logs(records).SerializeToString()


@pytest.mark.skipif(not compiled(), reason="the compiled extension is not built")
def test_the_compiled_walk_gives_what_the_python_walk_gives():
    from conflictlens.ingest.otlp_decode import _compiled_walk

    data = mixed_request()
    compiled, reference = _compiled_walk(data), python_walk(data)
    assert_frame_equal(compiled.records, reference.records)
    assert_frame_equal(compiled.attributes, reference.attributes)
    assert compiled.count == 31
    for broken in (data[:-5], data + b"\x0b", data[:40] + b"\xff" + data[41:]):
        errors = []
        for walk in (_compiled_walk, python_walk):
            with pytest.raises(OtlpError) as caught:
                walk(broken)
            errors.append(str(caught.value))
        assert errors[0] == errors[1] and errors[0].startswith("protobuf: ")


def test_otlp_json_decodes_as_its_protobuf_does():
    records = semconv_records("shop", 30)
    message = encode_logs(records)
    from_json = decode_json(json_format.MessageToJson(message).encode())
    from_protobuf = python_walk(message.SerializeToString())
    assert_frame_equal(from_json.records, from_protobuf.records)
    assert_frame_equal(from_json.attributes, from_protobuf.attributes)


# --- through serve ---------------------------------------------------------------------------


def stored(db: Path) -> tuple[Counter[int], int, list[tuple[Any, ...]]]:
    conflicts = Counter(
        dict(query(db, "SELECT status, count(*) FROM conflict_events GROUP BY status"))
    )
    (requests,) = query(db, "SELECT coalesce(sum(requests), 0)::BIGINT FROM request_rollups")[0]
    sources = query(db, 'SELECT path, format, "offset", lines, rejects FROM sources ORDER BY 1')
    return conflicts, requests, sources


@pytest.mark.slow
def test_the_official_exporter_protobuf_and_json_store_what_was_sent(serve, tmp_path):
    server = serve()
    by_protobuf = semconv_records("shop", 700)
    exporter = OTLPLogExporter(
        endpoint=server.url + "/v1/logs", compression=Compression.Gzip, timeout=30
    )
    for start in range(0, len(by_protobuf), 100):  # batches, as the batch processor sends
        assert exporter.export(by_protobuf[start : start + 100]) == LogRecordExportResult.SUCCESS
    by_json = semconv_records("billing", 300, first=1000)
    status, body = post(server, as_json(by_json), "application/json")
    assert (status, json.loads(body)) == (200, {"partialSuccess": {}})
    gzipped = gzip.compress(as_json(semconv_records("billing", 50, first=2000)))
    status, _ = post(server, gzipped, "application/json", **{"Content-Encoding": "gzip"})
    assert status == 200
    server.stop()

    sent = by_protobuf + by_json + semconv_records("billing", 50, first=2000)
    conflicts, requests, sources = stored(tmp_path / "store.duckdb")
    expected = sent_statuses(sent)
    assert conflicts == Counter({s: n for s, n in expected.items() if s in CONFLICTS})
    assert requests == len(sent)
    assert sources == [("otlp:billing", "otlp", 350, 350, 0), ("otlp:shop", "otlp", 700, 700, 0)]
    events = pl.DataFrame(
        query(
            tmp_path / "store.duckdb",
            'SELECT ts, method, path, route, status, client, user_agent, service, "offset" '
            "FROM conflict_events ORDER BY ts",
        ),
        schema=["ts", "method", "path", "route", "status", "client", "agent", "service", "at"],
        orient="row",
    )
    first = events.row(0, named=True)
    assert first == {
        "ts": T0.replace(tzinfo=None),
        "method": "PATCH",
        "path": "/api/orders/0",
        "route": "/api/orders/{id}",
        "status": 409,
        "client": "203.0.113.0",
        "agent": "shop-client/2.1",
        "service": "shop",
        "at": 0,
    }
    billing = events.filter(pl.col("service") == "billing")
    assert billing["at"].to_list() == sorted(billing["at"].to_list())  # offsets in the stream


@pytest.mark.slow
def test_gateway_attributes_and_access_log_bodies(serve, tmp_path):
    """Envoy's, Traefik's and Kong's access-log fields as attributes, and bodies that are
    access-log lines (Envoy's default text format, nginx combined)."""
    server = serve()
    moment = "2026-11-20T10:00:00.250Z"
    envoy = {
        "start_time": moment,
        "method": "PUT",
        "path": "/api/docs/7?rev=3",
        "response_code": 409,
        "duration": 12,
        "downstream_remote_address": "198.51.100.4:5555",
        "user_agent": "envoy-client",
        "upstream_cluster": "docs",
        "x-error-code": "VERSION_MISMATCH",
    }
    traefik = {
        "StartUTC": moment,
        "RequestMethod": "POST",
        "RequestPath": "/api/carts/9",
        "DownstreamStatus": 412,
        "Duration": 3_000_000,
        "ClientHost": "198.51.100.5",
        "ServiceName": "carts@docker",
        "request_User-Agent": "traefik-client",
    }
    kong = {
        "started_at": 1_795_168_800_250,  # 2026-11-20T10:00:00.250Z in milliseconds
        "request.method": "DELETE",
        "request.uri": "/api/users/5",
        "response.status": 423,
        "latencies.request": 7,
        "client_ip": "198.51.100.6",
        "service.name": "users",
    }
    envoy_line = (
        '[2026-11-20T10:00:00.250Z] "PATCH /api/locks/1 HTTP/1.1" 409 - 0 42 3 2 "-" '
        '"lock-client" "req-1" "locks.example" "10.0.0.9:80" "-"'
    )
    nginx_line = (
        '198.51.100.8 - - [20/Nov/2026:10:00:00 +0000] "PUT /api/tags/2 HTTP/1.1" 409 10 "-" "c"'
    )
    resource = Resource.create({"service.name": "edge"})
    lines = Resource.create({"service.name": "envoy-text"})
    records = [
        ReadableLogRecord(LogRecord(timestamp=ns(T0), attributes=attrs), resource=resource)
        for attrs in (envoy, traefik, kong)
    ]
    records.append(ReadableLogRecord(LogRecord(timestamp=ns(T0), body=envoy_line), resource=lines))
    nginx = Resource.create({"service.name": "nginx-text"})
    records.append(ReadableLogRecord(LogRecord(timestamp=ns(T0), body=nginx_line), resource=nginx))
    exporter = OTLPLogExporter(endpoint=server.url + "/v1/logs", timeout=30)
    assert exporter.export(records) == LogRecordExportResult.SUCCESS
    server.stop()

    rows = query(
        tmp_path / "store.duckdb",
        "SELECT method, path, status, client, user_agent, service, latency_ms, error_code, ts "
        "FROM conflict_events ORDER BY method",
    )
    at = dt.datetime(2026, 11, 20, 10, 0, 0, 250_000)
    assert rows == [
        ("DELETE", "/api/users/5", 423, "198.51.100.6", None, "users", 7.0, None, at),
        ("PATCH", "/api/locks/1", 409, None, "lock-client", "locks.example", 3.0, None, at),
        ("POST", "/api/carts/9", 412, "198.51.100.5", "traefik-client", "carts@docker", 3.0, None, at),
        ("PUT", "/api/docs/7", 409, "198.51.100.4", "envoy-client", "docs", 12.0, "VERSION_MISMATCH", at),
        ("PUT", "/api/tags/2", 409, "198.51.100.8", "c", "nginx-text", None, None, at.replace(microsecond=0)),
    ]  # fmt: skip
    formats = dict(query(tmp_path / "store.duckdb", "SELECT path, format FROM sources"))
    assert formats == {
        "otlp:edge": "otlp",
        "otlp:envoy-text": "envoy-text",
        "otlp:nginx-text": "nginx-combined",
    }


@pytest.mark.slow
def test_records_without_a_request_are_rejected_with_partial_success(serve, tmp_path):
    server = serve()
    resource = Resource.create({"service.name": "app"})
    records = semconv_records("app", 4)
    records += [
        ReadableLogRecord(LogRecord(timestamp=ns(T0), body="user 42 logged in"), resource=resource),
        ReadableLogRecord(LogRecord(timestamp=ns(T0), attributes={"a": 1}), resource=resource),
    ]
    status, body = post(server, encode_logs(records).SerializeToString(), "application/x-protobuf")
    assert status == 200
    response = ExportLogsServiceResponse.FromString(body)
    assert response.partial_success.rejected_log_records == 2
    assert response.partial_success.error_message.startswith("2 of 6 log record(s) rejected")
    status, body = post(server, as_json(records), "application/json")
    assert json.loads(body)["partialSuccess"]["rejectedLogRecords"] == "2"
    server.stop()
    rejects = query(tmp_path / "store.duckdb", 'SELECT "offset", reason FROM rejects ORDER BY 1')
    assert [offset for offset, _ in rejects] == [4, 5, 10, 11]
    assert "not an access-log line" in rejects[0][1] and "no HTTP status" in rejects[1][1]


@pytest.mark.slow
def test_bad_requests_get_a_one_line_reason_and_the_api_rules_hold(serve):
    token = "otlp-token-0123456789"
    server = serve(f'[serve]\ntoken = "{token}"\n')
    auth = {"Authorization": f"Bearer {token}"}
    good = encode_logs(semconv_records("shop", 3)).SerializeToString()
    assert post(server, good, "application/x-protobuf")[0] == 401  # the token counts here too
    evil = {"Origin": "https://evil.example"}
    assert post(server, good, "application/x-protobuf", **auth, **evil)[0] == 403
    assert post(server, good, "text/plain", **auth)[0] == 415
    cases = {
        good[:-4]: "protobuf: a field runs past the end of its message",
        b"\x0f\x00": "protobuf: wire type 7 is not used by OTLP",
    }
    for body, reason in cases.items():
        status, answer = post(server, body, "application/x-protobuf", **auth)
        assert status == 400
        assert reason.encode() in answer and b"\n" not in answer
    status, answer = post(server, b"{nope", "application/json", **auth)
    assert status == 400 and json.loads(answer)["message"].startswith("not valid JSON")
    status, answer = post(server, b"not gzip", "application/json", **auth, **{"Content-Encoding": "gzip"})  # fmt: skip
    assert status == 400 and "not valid gzip" in json.loads(answer)["message"]
    bomb = gzip.compress(b"\x00" * (129 << 20))
    status, answer = post(server, bomb, "application/x-protobuf", **auth, **{"Content-Encoding": "gzip"})  # fmt: skip
    assert status == 413
    assert post(server, good, "application/x-protobuf", **auth)[0] == 200


@pytest.mark.slow
def test_serve_killed_while_a_sender_sends_loses_nothing_it_accepted(serve, tmp_path):
    """Every record keeps a path of its own; with keep_all each becomes an event."""
    server = serve("[ingest]\nkeep_all = true\n")
    accepted: list[int] = []
    stop = threading.Event()

    def send() -> None:
        exporter = OTLPLogExporter(endpoint=server.url + "/v1/logs", timeout=3)
        batch = 0
        while not stop.is_set() and batch < 2000:
            records = semconv_records("shop", 50, first=batch * 50)
            if exporter.export(records) == LogRecordExportResult.SUCCESS:
                accepted.extend(range(batch * 50, batch * 50 + 50))
            elif server.proc.poll() is not None:
                return
            batch += 1

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while len(accepted) < 1000 and sender.is_alive():
            stop.wait(0.01)
        server.proc.send_signal(signal.SIGKILL)  # while the sender is sending
        server.proc.communicate(timeout=30)  # waits, and closes the pipes
    finally:
        stop.set()
        sender.join(60)
    assert len(accepted) >= 1000

    again = serve("[ingest]\nkeep_all = true\n")  # opens the store the killed serve left
    again.stop()
    paths = {p for (p,) in query(tmp_path / "store.duckdb", "SELECT path FROM conflict_events")}
    assert {f"/api/orders/{i}" for i in accepted} <= paths
