"""JSON-lines formats: field mapping per gateway, error codes from headers and bodies, and
hostile input (huge bodies, deep nesting, wrong types, missing fields) as rejects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conflictlens.ingest import IngestOptions, import_source
from conflictlens.ingest.formats import detect_format, get_format
from conflictlens.ingest.formats.jsonl import JSON_FORMATS, mapped_json_format
from conflictlens.store import Writer, connect


def parse(name: str, *objects: Any) -> list[dict[str, Any]]:
    lines = [o if isinstance(o, str) else json.dumps(o) + "\n" for o in objects]
    frame = pl.DataFrame({"line": lines, "offset": list(range(len(lines)))})
    rows: list[dict[str, Any]] = JSON_FORMATS[name].parse(frame).to_dicts()
    return rows


TRAEFIK = {
    "ClientAddr": "[::1]:56348",
    "DownstreamContentSize": 19,
    "DownstreamStatus": 409,
    "Duration": 32_673_000,
    "RequestMethod": "PUT",
    "RequestPath": "/api/v1/users/42?x=1",
    "RouterName": "api@docker",
    "ServiceName": "users@docker",
    "StartUTC": "2024-04-15T13:26:33.80902715Z",
    "downstream_X-Error-Code": "VERSION_MISMATCH",
    "request_User-Agent": "curl/8.5.0",
}
ENVOY = {
    "start_time": "2022-09-01T09:36:33.553Z",
    "method": "POST",
    "path": "/api/v1/users",
    "protocol": "HTTP/1.1",
    "response_code": 409,
    "response_flags": "-",
    "bytes_sent": 11,
    "duration": 46,
    "x_forwarded_for": "203.0.113.9",
    "user_agent": "okhttp/4.12.0",
    "request_id": "abc",
    "authority": "api",
    "upstream_host": "10.0.0.5:8080",
    "upstream_cluster": "users",
    "x_error_code": "EMAIL_TAKEN",
}
KONG = {
    "request": {
        "method": "POST",
        "uri": "/api/v1/orders/9/cancel",
        "headers": {"user-agent": "ua"},
    },
    "response": {"status": 409, "size": 80, "headers": {"x-error-code": "ORDER_ALREADY_SHIPPED"}},
    "latencies": {"request": 515, "kong": 58, "proxy": 457},
    "client_ip": "192.168.144.1",
    "service": {"name": "orders", "host": "orders.internal"},
    "started_at": 1614232668342,
}
CADDY = {
    "level": "info",
    "ts": 1722377868.638059,
    "logger": "http.log.access.log0",
    "msg": "handled request",
    "request": {
        "remote_ip": "203.0.113.7",
        "client_ip": "203.0.113.7",
        "method": "DELETE",
        "host": "api",
        "uri": "/api/v1/projects/7",
        "headers": {"User-Agent": ["curl/8"]},
    },
    "duration": 0.0015,
    "size": 0,
    "status": 409,
    "resp_headers": {"X-Error-Code": ["PROJECT_HAS_CHILDREN"]},
}


@pytest.mark.parametrize(
    ("name", "obj", "expected"),
    [
        (
            "traefik-json",
            TRAEFIK,
            ("PUT", "/api/v1/users/42", 409, "VERSION_MISMATCH", "::1", 32.673),
        ),
        ("envoy-json", ENVOY, ("POST", "/api/v1/users", 409, "EMAIL_TAKEN", "203.0.113.9", 46.0)),
        (
            "kong-json",
            KONG,
            (
                "POST",
                "/api/v1/orders/9/cancel",
                409,
                "ORDER_ALREADY_SHIPPED",
                "192.168.144.1",
                515.0,
            ),
        ),
        (
            "caddy-json",
            CADDY,
            ("DELETE", "/api/v1/projects/7", 409, "PROJECT_HAS_CHILDREN", "203.0.113.7", 1.5),
        ),
    ],
)
def test_gateway_json_fields(name, obj, expected):
    row = parse(name, obj)[0]
    assert row["reject"] is None
    got = (
        row["method"],
        row["path"],
        row["status"],
        row["error_code"],
        row["client"],
        row["latency_ms"],
    )
    assert got == pytest.approx(expected)


def test_timestamps_are_utc_instants():
    assert parse("traefik-json", TRAEFIK)[0]["ts"] == dt.datetime(2024, 4, 15, 13, 26, 33, 809027)
    assert parse("kong-json", KONG)[0]["ts"] == dt.datetime(2021, 2, 25, 5, 57, 48, 342000)
    assert parse("caddy-json", CADDY)[0]["ts"] == dt.datetime(2024, 7, 30, 22, 17, 48, 638059)
    iso = {**CADDY, "ts": "2024-07-30T22:17:48.5+02:00"}
    assert parse("caddy-json", iso)[0]["ts"] == dt.datetime(2024, 7, 30, 20, 17, 48, 500000)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"error": {"code": "EMAIL_TAKEN", "message": "x"}}, "EMAIL_TAKEN"),
        ({"code": "VERSION_MISMATCH"}, "VERSION_MISMATCH"),
        ({"errorCode": "RESOURCE_IN_USE"}, "RESOURCE_IN_USE"),
        (
            {"type": "https://errors.example.com/order-already-shipped", "title": "Shipped"},
            "ORDER_ALREADY_SHIPPED",
        ),
        ({"error": {"message": "no code here"}}, None),
    ],
)
def test_kong_error_code_from_the_logged_body(body, code):
    obj = {**KONG, "response": {"status": 409, "size": 80, "body": json.dumps(body)}}
    assert parse("kong-json", obj)[0]["error_code"] == code


def test_header_code_wins_over_body():
    obj = {**KONG, "response": {**KONG["response"], "body": json.dumps({"code": "OTHER"})}}
    assert parse("kong-json", obj)[0]["error_code"] == "ORDER_ALREADY_SHIPPED"


def test_a_body_over_the_limit_is_not_read():
    body = json.dumps({"code": "EMAIL_TAKEN", "pad": "x" * 40_000})
    obj = {**KONG, "response": {"status": 409, "size": 80, "body": body}}
    row = parse("kong-json", obj)[0]
    assert (row["reject"], row["error_code"]) == (None, None)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json at all\n", "not valid JSON"),
        ('{"DownstreamStatus": 409, "RequestMethod": "GET"\n', "not valid JSON"),
        (
            json.dumps({k: v for k, v in TRAEFIK.items() if k != "DownstreamStatus"}) + "\n",
            "missing status",
        ),
        (json.dumps({**TRAEFIK, "DownstreamStatus": "conflict"}) + "\n", "invalid status"),
        (json.dumps({**TRAEFIK, "StartUTC": "yesterday"}) + "\n", "invalid timestamp"),
        ('{"a":' * 5000 + "1" + "}" * 5000 + "\n", "missing"),
        ("[1, 2, 3]\n", "missing"),
        ("\n", "not valid JSON"),
    ],
)
def test_hostile_lines_are_rejects_with_a_reason(line, reason):
    row = parse("traefik-json", line)[0]
    assert row["reject"] is not None and reason in row["reject"]


def test_a_number_where_a_string_belongs_still_parses():
    row = parse("traefik-json", {**TRAEFIK, "RequestMethod": 7, "request_User-Agent": 12})[0]
    assert (row["reject"], row["method"], row["user_agent"], row["status"]) == (
        None,
        "7",
        "12",
        409,
    )


def test_a_10_mb_body_line_is_rejected_and_the_import_goes_on(tmp_path):
    huge = {**KONG, "response": {"status": 409, "body": "x" * 10_000_000}}
    log = tmp_path / "kong.log"
    good = json.dumps(KONG) + "\n"
    log.write_text(good + json.dumps(huge) + "\n" + good)
    with connect(tmp_path / "t.duckdb") as con:
        summary = import_source(str(log), Writer(con), IngestOptions(), format_name="kong-json")
        events = con.execute("SELECT count(*) FROM conflict_events").fetchall()[0][0]
        reasons = [r[0] for r in con.execute("SELECT reason FROM rejects").fetchall()]
    assert (summary.lines, summary.rejected, events) == (3, 1, 2)
    assert reasons and "longer than" in reasons[0]


@pytest.mark.parametrize(
    ("obj", "name"),
    [(TRAEFIK, "traefik-json"), (ENVOY, "envoy-json"), (KONG, "kong-json"), (CADDY, "caddy-json")],
)
def test_detection_tells_the_json_formats_apart(obj, name):
    frame = pl.DataFrame({"line": [json.dumps(obj) + "\n"] * 5, "offset": list(range(5))})
    assert detect_format(frame).name == name


def test_nginx_json_with_common_names():
    obj = {
        "time_iso8601": "2026-11-19T10:00:00+01:00",
        "remote_addr": "10.0.0.1",
        "request_method": "PATCH",
        "request_uri": "/api/v2/documents/5f3a9c0b12?x=1",
        "status": "412",
        "body_bytes_sent": "12",
        "request_time": "0.012",
        "http_user_agent": "ua",
        "sent_http_x_error_code": "",
    }
    row = parse("nginx-json", obj)[0]
    assert (row["reject"], row["ts"], row["status"], row["error_code"], row["latency_ms"]) == (
        None,
        dt.datetime(2026, 11, 19, 9, 0),
        412,
        None,
        pytest.approx(12.0),
    )


def test_generic_mapping_from_the_config():
    fmt = mapped_json_format(
        {
            "time_iso": "$.when",
            "method": "$.http.verb",
            "target": "$.http.url",
            "status": "$.http.code",
            "error_code": ["$.err.code", "$.error"],
        },
    )
    line = json.dumps(
        {
            "when": "2026-11-19T10:00:00Z",
            "http": {"verb": "PUT", "url": "/a/1", "code": 409},
            "error": "STALE",
        }
    )
    row = fmt.parse(pl.DataFrame({"line": [line + "\n"], "offset": [0]})).to_dicts()[0]
    assert (row["reject"], row["method"], row["path"], row["status"], row["error_code"]) == (
        None,
        "PUT",
        "/a/1",
        409,
        "STALE",
    )
    assert get_format("kong-json").name == "kong-json"


def test_client_from_the_host_field_else_the_address_without_its_port():
    rows = parse(
        "traefik-json",
        {**TRAEFIK, "ClientHost": "203.0.113.9", "ClientAddr": "203.0.113.9:40000"},
        {**TRAEFIK, "ClientAddr": "198.51.100.7:5000"},
        {**TRAEFIK, "ClientHost": "-", "ClientAddr": "[2001:db8::5]:443"},
        {**TRAEFIK, "ClientHost": "", "ClientAddr": "-"},
    )
    assert [r["client"] for r in rows] == ["203.0.113.9", "198.51.100.7", "2001:db8::5", None]


def test_client_from_the_address_alone():
    rows = parse("traefik-json", TRAEFIK, {**TRAEFIK, "ClientAddr": "10.0.0.1:1"})
    assert [r["client"] for r in rows] == ["::1", "10.0.0.1"]


@pytest.mark.parametrize("name", sorted(JSON_FORMATS))
def test_event_only_fields_decoded_for_the_captured_lines_equal_a_full_decode(name):
    # The sample with a few hostile lines mixed in (invalid JSON, no status, an odd status).
    path = Path(__file__).resolve().parents[1] / "sample_logs" / f"{name}.log"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines += ["{not json\n", '{"status": "oops"}\n', "\n"]
    frame = pl.DataFrame({"line": lines, "offset": range(len(lines))})
    fmt = JSON_FORMATS[name]
    captured = {409, 412, 423, 428}
    full = fmt.parse(frame)
    partial = fmt.parse(frame, detail_statuses=captured)
    events = pl.col("status").is_in(list(captured)) & pl.col("reject").is_null()
    assert partial.filter(events).height > 0
    assert partial.filter(events).equals(full.filter(events))
    # What rollups and rejects read is the same on every line.
    shared = ["ts", "method", "path", "status", "bytes", "latency_ms", "service", "reject"]
    assert partial.select(shared).equals(full.select(shared))
    # And the event-only fields really are left out elsewhere: that is the saving.
    assert partial.filter(~events)["user_agent"].null_count() == partial.filter(~events).height
