"""The CLF-family parser: against peer fixtures (Filebeat, Logstash) and format-string unit tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from conflictlens.ingest.formats import FormatError, compile_log_format, detect_format, get_format
from conflictlens.ingest.formats.fields import NO_RESPONSE
from conflictlens.ingest.lines import Chunk, split_lines
from tests.peer_fixtures import (
    FIXTURES,
    check_line,
    expectations,
    line_cases,
    require_fixtures,
)

# --- (a) peer fixtures in ../shared/fixtures ---------------------------------------------------

FIXTURE_FORMATS = ("nginx", "apache")

# Fixture lines this parser is known to get wrong, with the reason: (file, line) -> reason.
KNOWN_FAILURES: dict[tuple[str, int], str] = {}


def test_fixture_line_counts_match_their_expectations():
    require_fixtures()
    for folder in FIXTURE_FORMATS:
        for log in sorted((FIXTURES / folder).glob("*.log")):
            name = f"{folder}/{log.stem}"
            data = log.read_bytes()
            frame = split_lines(Chunk(data, 0, len(data), 0)).lines
            assert frame.height == data.count(b"\n") == len(expectations(name)), name
            assert [e["line"] for e in expectations(name)] == list(range(1, frame.height + 1))


@pytest.mark.parametrize(("name", "number"), line_cases(FIXTURE_FORMATS, KNOWN_FAILURES))
def test_peer_fixture_line(name: str, number: int):
    check_line(name, number, ("status", "method", "path"))


# --- (b) compile_log_format ---------------------------------------------------------------------

NGINX_EXTENDED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time "$sent_http_x_error_code"'
)
APACHE_WITH_D = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D'
NGINX_COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)


def parse(fmt_string: str, *lines: str) -> list[dict[str, Any]]:
    fmt = compile_log_format(fmt_string)
    frame = pl.DataFrame({"line": list(lines), "offset": list(range(len(lines)))})
    return fmt.parse(frame).to_dicts()


def parse_one(fmt: Any, line: str) -> dict[str, Any]:
    """Parse one line with a registered (preset) format."""
    rows: list[dict[str, Any]] = fmt.parse(pl.DataFrame({"line": [line], "offset": [0]})).to_dicts()
    return rows[0]


def extended(
    request: str = "PUT /api/v1/users/1 HTTP/1.1",
    *,
    status: str = "409",
    ua: str = "curl/8.5.0",
    time: str = "0.123",
    code: str = "VERSION_MISMATCH",
    client: str = "10.0.0.1",
    ts: str = "20/Nov/2026:10:00:00 +0100",
) -> str:
    return f'{client} - - [{ts}] "{request}" {status} 12 "-" "{ua}" {time} "{code}"'


def test_nginx_extended_fills_error_code_and_latency():
    [row] = parse(NGINX_EXTENDED, extended("PUT /api/v1/users/1?x=1 HTTP/1.1"))
    assert row["reject"] is None
    assert row["error_code"] == "VERSION_MISMATCH"
    assert row["latency_ms"] == pytest.approx(123.0)
    assert row["status"] == 409
    assert row["method"] == "PUT"
    assert row["path"] == "/api/v1/users/1"
    assert row["query"] == "x=1"
    assert row["bytes"] == 12
    assert row["client"] == "10.0.0.1"
    assert row["user_agent"] == "curl/8.5.0"
    assert row["ts"] == dt.datetime(2026, 11, 20, 9, 0, 0)  # +0100 → UTC


def test_nginx_extended_dash_error_code_is_null():
    [row] = parse(NGINX_EXTENDED, extended(status="200", code="-", time="0.005"))
    assert row["reject"] is None
    assert row["error_code"] is None
    assert row["latency_ms"] == pytest.approx(5.0)


def test_quoted_fields_after_combined_are_not_nginx_extended():
    """Harbor's nginx writes combined plus two quoted fields (``"-" "https"``, held-out part H
    of the real corpus). nginx's $request_time is a bare number, so the quoted "-" is not one:
    the file is read as combined with fields appended, and ``https`` is no error code."""
    line = (
        '192.168.235.100 - - [03/Sep/2022:15:19:23 +0800] "POST /v2/x/blobs/uploads/ HTTP/1.1" '
        '202 0 "-" "docker/20.10.17 go/go1.17.11" "-" "https"'
    )
    assert parse(NGINX_EXTENDED, line)[0]["reject"] is not None
    detected = detect_format(pl.DataFrame({"line": [line] * 3, "offset": [0, 1, 2]}))
    assert detected.name in {"nginx-combined", "nginx-main", "apache-combined"}, detected.name
    row = parse_one(detected, line)
    assert (row["status"], row["error_code"], row["latency_ms"]) == (202, None, None)


def test_compiled_fields_of_the_nginx_extended_format():
    fmt = compile_log_format(NGINX_EXTENDED)
    assert {
        "client",
        "time_clf",
        "request",
        "status",
        "bytes",
        "user_agent",
        "latency_s",
        "error_code",
    } <= set(fmt.fields)
    assert fmt.source == NGINX_EXTENDED


def test_user_format_reads_its_layout_and_ignores_fields_appended_after_it():
    # A newer gateway version appends fields to its documented format (APISIX's AI fields).
    [row] = parse(NGINX_EXTENDED, extended() + ' - 1211 "http://localhost:1984" gpt-4 208')
    assert row["reject"] is None
    assert (row["error_code"], row["latency_ms"]) == ("VERSION_MISMATCH", pytest.approx(123.0))


@pytest.mark.parametrize(
    "line",
    [
        extended() + '"extra"',  # glued to the last field: not a field of its own
        extended().replace(' "VERSION_MISMATCH"', ""),  # a declared field missing
        extended().replace(" 0.123 ", " "),  # one missing in the middle, the rest shifted
    ],
)
def test_user_format_still_rejects_a_line_that_is_not_its_layout(line):
    [row] = parse(NGINX_EXTENDED, line)
    assert row["reject"] == "does not match the custom format"


def test_apache_percent_d_is_microseconds():
    line = '::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 409 - "-" "ua" 12345'
    [row] = parse(APACHE_WITH_D, line)
    assert row["reject"] is None
    assert row["latency_ms"] == pytest.approx(12.345)
    assert row["bytes"] == 0  # Apache's %b writes "-" for no body
    assert row["client"] == "::1"
    assert row["ts"] == dt.datetime(2016, 12, 26, 14, 16, 29)


@pytest.mark.parametrize(
    ("fmt_string", "line", "latency"),
    [
        (
            '%h %l %u %t "%r" %>s %b %{ms}T',
            '1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 409 1 25',
            25.0,
        ),
        (
            '%h %l %u %t "%r" %>s %b %T',
            '1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 409 1 2',
            2000.0,
        ),
        (
            '%h %l %u %t "%r" %>s %b %{us}T',
            '1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 409 1 2500',
            2.5,
        ),
    ],
)
def test_apache_time_units(fmt_string, line, latency):
    [row] = parse(fmt_string, line)
    assert row["reject"] is None
    assert row["latency_ms"] == pytest.approx(latency)


def test_apache_error_code_from_response_header():
    [row] = parse(
        '%h %l %u %t "%r" %>s %b "%{X-Error-Code}o"',
        '1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "PUT /a/1 HTTP/1.1" 409 1 "EMAIL_TAKEN"',
    )
    assert (row["reject"], row["error_code"]) == (None, "EMAIL_TAKEN")


def test_nginx_hex_escapes_in_user_agent_are_decoded():
    ua = r"Mozilla \x22quoted\x22 caf\xC3\xA9"
    [row] = parse(NGINX_EXTENDED, extended(ua=ua))
    assert row["reject"] is None
    assert row["user_agent"] == 'Mozilla "quoted" café'


def test_apache_backslash_quote_in_user_agent_is_decoded():
    line = r'1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 409 1 "-" "say \"hi\""'
    [row] = parse('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"', line)
    assert (row["reject"], row["user_agent"]) == (None, 'say "hi"')


def test_nginx_escaped_backslash_is_not_unescaped_twice():
    # nginx logs the User-Agent  C:\new  as  C:\x5Cnew
    [row] = parse(NGINX_EXTENDED, extended(ua=r"C:\x5Cnew"))
    assert row["user_agent"] == "C:\\new"


def test_apache_escaped_backslash_is_not_unescaped_twice():
    # Apache logs the User-Agent  C:\x22  as  C:\\x22
    line = r'1.2.3.4 - - [20/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 409 1 "-" "C:\\x22"'
    [row] = parse('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"', line)
    assert row["user_agent"] == r"C:\x22"


@pytest.mark.parametrize(
    ("logged", "client"),
    [
        ("2001:db8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a"),
        ("2a02:cf40:10ff:f00f:0:0:0:8000", "2a02:cf40:10ff:f00f::8000"),  # one spelling
        ("2001:DB8::A", "2001:db8::a"),
        ("[2001:db8::1]", "2001:db8::1"),  # bracketed, as some proxies write X-Forwarded-For
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # a dual-stack listener's IPv4 client
    ],
)
def test_ipv6_clients(logged, client):
    [row] = parse(NGINX_EXTENDED, extended(client=logged))
    assert row["reject"] is None
    assert row["client"] == client
    assert row["status"] == 409


@pytest.mark.parametrize(
    ("request_line", "method", "path"),
    [
        ("-", None, None),
        ("", None, None),
        ("/bare/path", None, None),  # not a request line: kept, but no method or path
        ("hello", None, None),
        ("GET /bare/path", "GET", "/bare/path"),  # HTTP/0.9 style: no protocol
        ("get /lower HTTP/1.0", "get", "/lower"),  # methods stay as logged (case-sensitive)
        ("pAtCh /mixed HTTP/1.1", "pAtCh", "/mixed"),
        ("GET http://example.com/x/y?z=1 HTTP/1.1", "GET", "/x/y"),
        ("GET /with space/in it HTTP/1.1", "GET", "/with space/in it"),
    ],
)
def test_unusual_request_lines_are_kept(request_line, method, path):
    [row] = parse(NGINX_EXTENDED, extended(request_line, status="400", code="-"))
    assert row["reject"] is None
    assert (row["method"], row["path"], row["status"]) == (method, path, 400)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("999", "invalid status"),
        ("99", "invalid status"),
        ("abc", "invalid status"),
    ],
)
def test_invalid_status_is_a_reject(status, reason):
    [row] = parse(NGINX_EXTENDED, extended(status=status))
    assert row["reject"] == reason


@pytest.mark.parametrize(
    "ts",
    [
        "32/Feb/2026:10:00:00 +0000",
        "20/Foo/2026:10:00:00 +0000",
        "20/Nov/2026:25:00:00 +0000",
        "yesterday",
    ],
)
def test_invalid_timestamp_is_a_reject(ts):
    [row] = parse(NGINX_EXTENDED, extended(ts=ts))
    assert row["reject"] == "invalid timestamp"


@pytest.mark.parametrize(
    ("fmt_string", "line", "expected"),
    [
        (
            '$remote_addr [$time_iso8601] "$request" $status',
            '10.0.0.1 [2026-11-20T10:00:00+01:00] "GET /a HTTP/1.1" 409',
            dt.datetime(2026, 11, 20, 9, 0),
        ),
        (
            '$msec "$request" $status',
            '1763632800.250 "GET /a HTTP/1.1" 409',
            dt.datetime(2025, 11, 20, 10, 0, 0, 250_000),
        ),
    ],
)
def test_other_nginx_time_variables(fmt_string, line, expected):
    [row] = parse(fmt_string, line)
    assert (row["reject"], row["ts"]) == (None, expected)


@pytest.mark.parametrize(
    ("fmt_string", "message"),
    [
        ('$remote_addr [$time_local] "$request" $body_bytes_sent', "no status"),
        ('$remote_addr "$request" $status $body_bytes_sent', "no time"),
        ('%h "%r" %>s %b', "no time"),
        ('%h %t "%r" %b', "no status"),
        ("plain text only", "no %directives"),
        ("", "empty"),
        ("   ", "empty"),
        ('%h %{%Y-%m-%d}t "%r" %>s', "unsupported Apache directive"),
    ],
)
def test_formats_that_cannot_be_compiled_raise_format_error(fmt_string, message):
    with pytest.raises(FormatError, match=message):
        compile_log_format(fmt_string)


def test_get_format_unknown_name_lists_the_known_ones():
    with pytest.raises(FormatError, match=r"unknown format 'bogus'.*nginx-combined"):
        get_format("bogus")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"',
            "nginx-combined",
        ),
        ('10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5', "nginx-common"),
        (
            '10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 204 - "-" "curl"',
            "apache-combined",
        ),
        ('10.0.0.1 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 204 -', "apache-common"),
    ],
)
def test_detect_format(line, expected):
    frame = pl.DataFrame({"line": [line] * 3, "offset": [0, 1, 2]})
    fmt = detect_format(frame)
    assert fmt.name == expected
    assert fmt.parse(frame)["reject"].null_count() == 3


def test_detect_format_refuses_unknown_lines():
    frame = pl.DataFrame({"line": ['{"json": true}'] * 5, "offset": list(range(5))})
    with pytest.raises(FormatError, match="cannot recognise the log format"):
        detect_format(frame)


def test_missing_status_is_a_reject_that_says_no_response_was_sent():
    """Apache logs "-" when no response was sent: no status to count or classify."""
    line = '83.149.9.216 - a.user [11/Jan/2020:23:05:27 +0100] "OPTIONS /remote.php/ HTTP/1.1" - 7908 "-" "x"'
    row = parse_one(get_format("apache-combined"), line)
    assert row["reject"] == NO_RESPONSE


@pytest.mark.parametrize(
    ("prefix", "client"),
    [
        ("10.0.0.2, 10.0.0.1, 81.2.69.143", "81.2.69.143"),  # first public address
        ("10.0.0.2, 10.0.0.1, 127.0.0.1", "10.0.0.2"),  # none public: the first
        ("example.com 10.0.0.2, 10.0.0.1, 85.181.35.98", "85.181.35.98"),  # vhost prefix
        ("example.com:8080 172.17.0.1", "172.17.0.1"),  # host:port prefix
        ('"10.5.102.222, 175.16.199.1, 204.246.1.1" 10.2.1.185', "175.16.199.1"),
        ("unix:", None),  # no address: nothing invented
        ("monitoring-server", None),
        ("[fd00:ec2::254], 10.0.0.1", "fd00:ec2::254"),
    ],
)
def test_client_is_picked_from_address_lists_and_prefixes(prefix, client):
    line = f'{prefix} - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "ua"'
    row = parse_one(get_format("nginx-combined"), line)
    assert (row["reject"], row["client"], row["path"]) == (None, client, "/ocelot")


def test_percent_encoded_paths_are_decoded():
    line = '1.2.3.4 - - [07/Dec/2016:11:05:07 +0100] "GET /A%20Beka/x%40y.com?q=%20 HTTP/1.1" 200 5 "-" "ua"'
    row = parse_one(get_format("nginx-combined"), line)
    assert (row["path"], row["query"]) == ("/A Beka/x@y.com", "q=%20")


@pytest.mark.parametrize(
    ("preset", "line", "path", "user_agent"),
    [
        (  # Apache before 2.0.46 did not escape quotes in the request
            "apache-combined",
            '1.2.3.4 - - [25/Apr/2021:06:15:33 +0000] "GET /a?x=<script>alert("t")</script> '
            'HTTP/1.0" 404 1164 "-" "curl/8"',
            "/a",
            "curl/8",
        ),
        (
            "apache-common",
            '1.2.3.4 - - [25/Apr/2021:06:15:33 +0000] "GET /$%7B("a"+"b")%7D/x HTTP/1.0" 409 -',
            '/${("a"+"b")}/x',
            None,
        ),
    ],
)
def test_raw_quotes_in_the_request_run_to_the_last_quote_before_the_status(
    preset, line, path, user_agent
):
    row = parse_one(get_format(preset), line)
    assert (row["reject"], row["path"], row["user_agent"]) == (None, path, user_agent)


UNCLOSED = '212.205.21.11 - - [30/Jun/2019:17:06:15 +0000] "GET /x HTTP/1.1" 200 {size} "https://example.com/ "Mozilla/5.0 (Linux) Safari/537.36"'


@pytest.mark.parametrize(
    ("preset", "size", "bytes_"),
    [
        ("nginx-combined", "2028", 2028),
        ("apache-combined", "2028", 2028),
        ("apache-combined", "-", 0),
    ],
)
def test_a_referer_without_its_closing_quote_leaves_the_user_agent_readable(preset, size, bytes_):
    # As published in a project's test data: '"ref "ua"', three quotes after the bytes.
    row = parse_one(get_format(preset), UNCLOSED.format(size=size))
    assert row["reject"] is None
    assert (row["path"], row["bytes"]) == ("/x", bytes_)
    assert row["user_agent"] == "Mozilla/5.0 (Linux) Safari/537.36"


@pytest.mark.parametrize(
    ("tail", "user_agent"),
    [
        ('"https://example.com/" "curl/8"', "curl/8"),  # well formed: read as always
        ('"-" "a \\"quoted\\" agent"', 'a "quoted" agent'),  # escaped quotes undone
        ('"https://example.com/ "curl/8" 0.004', None),  # more after it: not this form
        ('"-" "curl "8" x"', None),  # five quotes: which is the agent is a guess
        ('"https://example.com/"curl/8"', None),  # no separating space: not this form
    ],
)
def test_only_the_unclosed_referer_form_is_read_past_the_strict_tail(tail, user_agent):
    line = f'1.2.3.4 - - [30/Jun/2019:17:06:15 +0000] "GET /x HTTP/1.1" 200 5 {tail}'
    row = parse_one(get_format("nginx-combined"), line)
    assert (row["reject"], row["user_agent"]) == (None, user_agent)
