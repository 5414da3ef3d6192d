"""The sample-log generator: determinism, every format's layout, self-consistent ground truth,
the planted scenarios, the `sample` command and the committed samples.

Nothing here parses the logs with conflictlens's own parsers: lines are checked against each
gateway's layout with plain regular expressions and json.loads, and against the frame they
were formatted from.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from conflictlens.sample_logs.catalog import ENDPOINTS, KINDS, problem_type
from conflictlens.sample_logs.generator import (
    CODE_STYLES,
    LINE_STYLES,
    SCENARIOS,
    SampleError,
    format_lines,
    ground_truth,
    traffic,
    write_log,
    write_samples,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_logs"
CONFLICT_STATUSES = (409, 412, 423, 428)
NO_CODE_STYLES = tuple(s for s in LINE_STYLES if s not in CODE_STYLES)
ALL_CODES = sorted({code for ep in ENDPOINTS for _, code, _, _ in ep.conflicts})


def read_lines(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert data.endswith(b"\n")
    return data.decode().split("\n")[:-1]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """3,000 steady requests (about 100 conflicts) to format in every layout."""
    return traffic(3_000, seed=11)


# --- the formats we promise, and which of them can carry an error code ---------------------------


def test_the_generator_writes_every_format_conflictlens_reads():
    """The importer keeps its own list of formats (ingest.formats): every one of them has a
    generator, and the generator writes no format the importer cannot read."""
    from conflictlens.ingest.formats import format_names

    assert set(LINE_STYLES) == set(format_names()) - {"json"}  # json: the user's own mapping


def test_the_formats_that_carry_a_code_are_the_agreed_ones():
    assert set(NO_CODE_STYLES) == {
        "nginx-combined",
        "nginx-common",
        "apache-combined",
        "apache-common",
        "traefik-clf",
        "aws-alb",
        "aws-elb-classic",
        "istio-text",  # the defaults log no error code
        "envoy-gateway-json",
        "nginx-main",
        "ingress-nginx",
    }


def test_every_scenario_is_explained_in_the_sample_commands_help(run_cli):
    """The help names each scenario by hand: a new scenario must be explained there."""
    result = run_cli("sample", "--help")
    assert result.exit_code == 0
    text = re.sub(r"-\n\s+", "-", result.output)  # click wraps the help after a hyphen
    words = set(re.findall(r"[a-z]+(?:-[a-z]+)*", text))
    assert SCENARIOS and set(SCENARIOS) <= words


# --- the declared kinds follow the taxonomy (an independent statement of it) ---------------------

TAXONOMY = (
    ("version", ("VERSION", "ETAG", "STALE", "MODIFIED", "CONCURRENT")),
    ("uniqueness", ("EXISTS", "DUPLICATE", "TAKEN", "UNIQUE", "ALREADY_REGISTERED")),
    ("state", ("ALREADY_", "INVALID_STATE", "TRANSITION", "STATUS")),
    ("dependency", ("HAS_", "IN_USE", "DEPENDEN", "CHILD")),
    ("lock", ("LOCK",)),
)


def expected_kind(status: int, code: str | None) -> str:
    for kind, words in TAXONOMY:
        if code and any(word in code for word in words):
            return kind
    return {423: "lock", 412: "precondition", 428: "precondition"}.get(status, "unknown")


def test_every_declared_kind_follows_the_taxonomy():
    declared = [(ep, c) for ep in ENDPOINTS for c in ep.conflicts]
    assert declared
    for ep, (status, code, weight, kind) in declared:
        assert kind in KINDS
        assert kind == expected_kind(status, code), (ep.method, ep.route, code)
        assert weight > 0
    kinds = {c[3] for _, c in declared}
    assert kinds == set(KINDS), "every kind, unknown included, appears in the traffic"
    for ep in ENDPOINTS:
        if ep.conflicts:
            assert abs(sum(c[2] for c in ep.conflicts) - 1) < 1e-9, ep.route


# --- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["nginx-extended", "kong-json", "aws-alb"])
def test_same_seed_writes_the_same_bytes(tmp_path, style):
    suffix = ".log.gz" if style == "aws-alb" else ".log"
    a, b, c = (tmp_path / f"{n}{suffix}" for n in "abc")
    truth_a = write_log(a, 2_000, style=style, seed=5, scenario="retry-storm")
    truth_b = write_log(b, 2_000, style=style, seed=5, scenario="retry-storm")
    write_log(c, 2_000, style=style, seed=6, scenario="retry-storm")
    assert a.read_bytes() == b.read_bytes()
    assert Path(f"{a}.truth.json").read_text() == Path(f"{b}.truth.json").read_text()
    assert truth_a == truth_b
    assert a.read_bytes() != c.read_bytes()


def test_same_seed_gives_the_same_frame():
    assert traffic(5_000, seed=9, scenario="deploy-spike").equals(
        traffic(5_000, seed=9, scenario="deploy-spike")
    )
    assert not traffic(5_000, seed=9).equals(traffic(5_000, seed=10))


def test_none_planted_is_steady():
    assert traffic(4_000, seed=2, scenario="none-planted").equals(traffic(4_000, seed=2))


# --- line counts and the frame behind them ---------------------------------------------------------


@pytest.mark.parametrize("style", LINE_STYLES)
def test_every_format_writes_the_declared_number_of_lines(tmp_path, style):
    out = tmp_path / ("access.log.gz" if style == "aws-alb" else "access.log")
    truth = write_log(out, 1_234, style=style, seed=4, batch=500, scenario="hot-document")
    lines = read_lines(out)
    assert len(lines) == truth["lines"] == 1_234
    assert all(line and "\n" not in line for line in lines)
    assert json.loads(Path(f"{out}.truth.json").read_text()) == json.loads(
        json.dumps(truth, default=str)
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_batches_make_one_ordered_log_of_exactly_the_asked_length(scenario):
    whole = traffic(6_001, seed=3, scenario=scenario, batch=1_000)
    assert whole.height == 6_001
    assert whole["ts"].is_sorted()
    assert whole["seq"].to_list() == list(range(6_001))
    assert whole["ts"].min() >= dt.datetime(2026, 11, 19, tzinfo=dt.UTC)
    assert whole["ts"].max() < dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


# --- ground truth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", LINE_STYLES)
def test_ground_truth_is_self_consistent(frame, style):
    truth = ground_truth(frame, style)
    clusters = truth["conflicts_by_cluster"]
    assert truth["lines"] == frame.height
    assert truth["conflicts"] == sum(c["conflicts"] for c in clusters) > 0
    assert truth["conflicts"] == frame.filter(pl.col("status").is_in(CONFLICT_STATUSES)).height
    assert sum(r["requests"] for r in truth["requests_by_route"]) == frame.height
    routes = {(r["method"], r["route"]) for r in truth["requests_by_route"]}
    for cluster in clusters:
        assert set(cluster) == {"method", "route", "status", "error_code", "kind", "conflicts"}
        assert cluster["kind"] in KINDS
        assert cluster["status"] in CONFLICT_STATUSES
        assert (cluster["method"], cluster["route"]) in routes
        if style in CODE_STYLES:
            assert cluster["error_code"] in ALL_CODES
        else:
            assert cluster["error_code"] is None
        assert cluster["kind"] == expected_kind(cluster["status"], cluster["error_code"])
    keys = [(c["method"], c["route"], c["status"], c["error_code"]) for c in clusters]
    assert len(keys) == len(set(keys))


def test_formats_without_codes_take_the_kind_from_the_status(frame):
    kinds = {
        (c["status"], c["kind"]) for c in ground_truth(frame, "aws-alb")["conflicts_by_cluster"]
    }
    assert kinds <= {(409, "unknown"), (412, "precondition"), (428, "precondition"), (423, "lock")}
    assert (409, "unknown") in kinds and (423, "lock") in kinds


def test_truth_file_has_the_documented_keys(tmp_path):
    out = tmp_path / "kong.log"
    truth = write_log(out, 3_000, style="kong-json", seed=1)
    assert set(truth) == {
        "lines",
        "from",
        "to",
        "conflicts",
        "conflicts_by_cluster",
        "requests_by_route",
        "error_code_locations",
        "style",
        "format",
        "scenario",
        "seed",
        "tz",
        "hours",
        "planted",
    }
    assert truth["style"] == truth["format"] == "kong-json"
    assert truth["scenario"] == "steady" and truth["planted"] is None
    locations = truth["error_code_locations"]
    assert sum(locations.values()) == truth["conflicts"]
    header = locations["header"]
    assert 0.35 < header / truth["conflicts"] < 0.65  # about half in the header
    assert all(locations[k] > 0 for k in locations)
    assert dt.datetime.fromisoformat(truth["from"]).utcoffset() == dt.timedelta(0)


def test_truth_from_write_log_is_truth_of_the_traffic_frame(tmp_path):
    out = tmp_path / "x.log"
    written = write_log(out, 3_000, style="envoy-json", seed=8, scenario="order-states")
    computed = ground_truth(traffic(3_000, seed=8, scenario="order-states"), "envoy-json")
    for key in computed:
        assert written[key] == computed[key], key


EXTENDED_REQUEST = re.compile(r'"([A-Z]+) \S+ HTTP/[\d.]+" (\d{3}) .* "([^"]*)"$')


def counted_in_file(path: Path, style: str) -> tuple[Counter[tuple[Any, ...]], Counter[str]]:
    """Conflict lines per (method, status, error code) and lines per method, counted in the
    written file with json.loads or a regular expression: no generator code, no parser."""
    conflicts: Counter[tuple[Any, ...]] = Counter()
    methods: Counter[str] = Counter()
    for line in read_lines(path):
        if style == "envoy-json":
            record = json.loads(line)
            method, status, code = record["method"], record["response_code"], record["x_error_code"]
        else:
            found = EXTENDED_REQUEST.search(line)
            assert found, line
            method, status, code = found[1], int(found[2]), found[3]
            code = None if code == "-" else code
        methods[method] += 1
        if status in CONFLICT_STATUSES:
            conflicts[(method, status, code)] += 1
    return conflicts, methods


@pytest.mark.parametrize("style", ["envoy-json", "nginx-extended"])
def test_truth_counts_what_the_written_file_holds(tmp_path, style):
    """The truth against the lines themselves, counted apart from the generator."""
    out = tmp_path / "x.log"
    truth = write_log(out, 3_000, style=style, seed=8, scenario="order-states")
    conflicts, methods = counted_in_file(out, style)
    expected: Counter[tuple[Any, ...]] = Counter()
    for cluster in truth["conflicts_by_cluster"]:
        expected[(cluster["method"], cluster["status"], cluster["error_code"])] += cluster[
            "conflicts"
        ]
    assert conflicts == expected
    assert sum(conflicts.values()) == truth["conflicts"] > 0
    requests: Counter[str] = Counter()
    for route in truth["requests_by_route"]:
        requests[route["method"]] += route["requests"]
    assert methods == requests
    assert sum(methods.values()) == truth["lines"] == 3_000


# --- the lines: each gateway's layout, and the error code wherever the format can hold it ---------

TS_CLF = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"
LAYOUTS = {
    "traefik-clf": re.compile(
        rf'^[\d.]+ - - \[{TS_CLF}\] "[A-Z]+ /\S* HTTP/(1\.1|2\.0)" \d{{3}} \d+ "[^"]*" "[^"]*" '
        r'\d+ "[a-z]+@docker" "http://[\d.]+:\d+" \d+ms$'
    ),
    "envoy-text": re.compile(
        r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "[A-Z]+ /\S* HTTP/(1\.1|2)" \d{3} - '
        r'\d+ \d+ \d+ \d+ "[\d.]+" "[^"]+" "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}" '
        r'"[a-z.]+" "[\d.]+:\d+" "([A-Z_]+|-)"$'
    ),
    "haproxy-httplog": re.compile(
        r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d lb1 haproxy\[\d+\]: [\d.]+:\d+ "
        r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe_https~ be_[a-z]+/[a-z]+-\d "
        r"\d+/\d+/\d+/\d+/\d+ \d{3} \d+ - - ---- \d+/\d+/\d+/\d+/\d+ \d+/\d+ "
        r'\{[a-z.]+\|[^{}|"]*\} \{[A-Z_]*\} "[A-Z]+ /\S* HTTP/(1\.1|2\.0)"$'
    ),
    "aws-elb-classic": re.compile(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z api-prod-elb [\d.]+:\d+ [\d.]+:\d+ "
        r"\d\.\d{6} \d+\.\d{6} \d\.\d{6} \d{3} \d{3} \d+ \d+ "
        r'"[A-Z]+ https://[a-z.]+:443/\S* HTTP/1\.1" "[^"]+" ECDHE-RSA-AES128-GCM-SHA256 TLSv1\.2$'
    ),
}


@pytest.mark.parametrize("style", sorted(LAYOUTS))
def test_text_layouts(frame, style):
    for line in format_lines(frame, style):
        assert LAYOUTS[style].match(line), line


def alb_fields(line: str) -> list[str]:
    return re.findall(r'"[^"]*"|\S+', line)


def test_alb_layout(frame):
    for line, row in zip(format_lines(frame, "aws-alb"), frame.iter_rows(named=True), strict=True):
        fields = alb_fields(line)
        assert len(fields) == 29, line
        assert fields[0] == ("h2" if row["http2"] else "https")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", fields[1])
        assert fields[2] == "app/api-prod-alb/50dc6c495c0c9188"
        assert fields[3] == f"{row['client']}:{row['client_port']}"
        assert all(re.fullmatch(r"\d+\.\d{3}", f) for f in fields[5:8])
        assert fields[8] == fields[9] == str(row["status"])
        assert fields[12].startswith(f'"{row["method"]} https://') and ":443/" in fields[12]
        assert fields[17].startswith('"Root=1-')
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000Z", fields[21])
        assert fields[22:] == [
            '"forward"',
            '"-"',
            '"-"',
            f'"{row["upstream"]}"',
            f'"{row["status"]}"',
            '"-"',
            '"-"',
        ]


def code_spellings(code: str) -> tuple[str, ...]:
    return (code, problem_type(code))


@pytest.mark.parametrize("style", LINE_STYLES)
def test_conflict_lines_carry_their_code_where_the_format_can(frame, style):
    lines = format_lines(frame, style).to_list()
    for line, row in zip(lines, frame.iter_rows(named=True), strict=True):
        present = {code for code in ALL_CODES if any(s in line for s in code_spellings(code))}
        if style in CODE_STYLES and row["status"] in CONFLICT_STATUSES:
            assert present == {row["error_code"]}, line
        else:
            assert present == set(), line


def parse_all(frame: pl.DataFrame, style: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lines = format_lines(frame, style).to_list()
    return [
        (json.loads(line), row)
        for line, row in zip(lines, frame.iter_rows(named=True), strict=True)
    ]


def conflict(row: dict[str, Any]) -> bool:
    return row["status"] in CONFLICT_STATUSES


def test_nginx_json(frame):
    keys = [
        "time_iso8601",
        "remote_addr",
        "request_method",
        "request_uri",
        "status",
        "body_bytes_sent",
        "request_time",
        "http_referer",
        "http_user_agent",
        "request_id",
        "upstream_addr",
        "sent_http_x_error_code",
    ]
    for doc, row in parse_all(frame, "nginx-json"):
        assert list(doc) == keys
        assert all(isinstance(v, str) for v in doc.values())
        assert doc["status"] == str(row["status"])
        assert re.fullmatch(r"\d+\.\d{3}", doc["request_time"])
        assert float(doc["request_time"]) == pytest.approx(row["latency_s"])
        assert doc["sent_http_x_error_code"] == (row["error_code"] or "")
        assert dt.datetime.fromisoformat(doc["time_iso8601"]) == row["ts"].replace(microsecond=0)
        assert doc["http_referer"] != "-"


def test_traefik_json(frame):
    for doc, row in parse_all(frame, "traefik-json"):
        assert list(doc) == sorted(doc)  # Go writes a map's keys sorted
        assert doc["DownstreamStatus"] == doc["OriginStatus"] == row["status"]
        assert doc["ClientAddr"] == f"{doc['ClientHost']}:{row['client_port']}"
        assert isinstance(doc["Duration"], int) and doc["Duration"] // 1_000_000 == round(
            row["latency_s"] * 1000
        )
        assert re.fullmatch(r"[a-z]+@docker", doc["RouterName"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", doc["StartUTC"])
        start = dt.datetime.fromisoformat(doc["StartUTC"][:26].rstrip("Z") + "+00:00")
        assert abs(start - row["ts"]) < dt.timedelta(microseconds=1)
        assert doc.get("downstream_X-Error-Code") == (row["error_code"] if conflict(row) else None)
        assert (doc["level"], doc["msg"]) == ("info", "")
        assert doc["request_User-Agent"] == row["user_agent"]


def test_envoy_json(frame):
    for doc, row in parse_all(frame, "envoy-json"):
        assert list(doc) == sorted(doc)
        assert doc["response_code"] == row["status"]
        assert isinstance(doc["duration"], int) and isinstance(doc["bytes_sent"], int)
        assert doc["upstream_service_time"].isdigit()
        assert doc["x_forwarded_for"] == row["client"]
        assert doc["x_error_code"] == row["error_code"]
        assert (
            doc["start_time"]
            == row["ts"].strftime("%Y-%m-%dT%H:%M:%S.") + f"{row['ts'].microsecond // 1000:03d}Z"
        )


def body_code(body: str) -> str:
    doc = json.loads(body)
    if "error" in doc:
        return str(doc["error"]["code"])
    if "code" in doc:
        return str(doc["code"])
    assert doc["type"].startswith("https://errors.example.com/") and "title" in doc
    return str(doc["type"].rsplit("/", 1)[1].replace("-", "_").upper())


def test_kong_json(frame):
    shapes = set()
    for doc, row in parse_all(frame, "kong-json"):
        request, response = doc["request"], doc["response"]
        assert request["method"] == row["method"]
        assert request["uri"].split("?")[0] == row["path"]
        assert request["headers"]["user-agent"] == row["user_agent"]
        assert "host" in request["headers"]
        assert request["headers"].get("if-match") == row["if_match"]
        if "if-match" in request["headers"]:
            assert row["method"] in ("PUT", "PATCH")
        assert response["status"] == row["status"] and doc["upstream_status"] == str(row["status"])
        assert doc["started_at"] == int(row["ts"].timestamp() * 1000)
        assert set(doc["latencies"]) >= {"request", "kong", "proxy"}
        assert doc["source"] == "upstream" and doc["route"]["paths"] and doc["service"]["name"]
        header = response["headers"].get("x-error-code")
        body = response.get("body")
        if conflict(row):
            assert (header is None) != (body is None)
            assert (header or body_code(body)) == row["error_code"]
            if body:
                shapes.add(next(iter(json.loads(body))))
        else:
            assert header is None and body is None
    assert shapes == {"error", "code", "type"}


def test_apipark_json(frame):
    for doc, row in parse_all(frame, "apipark-json"):
        keys = ["time_iso8601", "request_id", "request", "proxy", "response", "status_code", "time"]
        header = doc["response"]["response_headers"].get("x-error-code")
        body = doc.get("response_body")
        if body is not None:
            keys.insert(5, "response_body")
        assert list(doc) == keys
        assert list(doc["request"]) == [
            "request_method",
            "scheme",
            "request_uri",
            "host",
            "remote_addr",
        ]
        assert list(doc["proxy"]) == ["proxy_method", "proxy_uri", "proxy_host", "proxy_addr"]
        assert doc["status_code"] == {"status": row["status"], "proxy_status": row["status"]}
        assert doc["time"]["request_time"] == round(row["latency_s"] * 1000)
        if conflict(row):
            assert (header is None) != (body is None)
            assert (header or body_code(body)) == row["error_code"]
        else:
            assert header is None and body is None


def test_caddy_json(frame):
    for doc, row in parse_all(frame, "caddy-json"):
        assert (doc["level"], doc["logger"], doc["msg"]) == (
            "info",
            "http.log.access.log0",
            "handled request",
        )
        assert doc["ts"] == pytest.approx(row["ts"].timestamp(), abs=1e-6)
        assert doc["request"]["headers"]["User-Agent"] == [row["user_agent"]]
        assert doc["request"]["remote_ip"] == doc["request"]["client_ip"] == row["client"]
        assert doc["status"] == row["status"] and isinstance(doc["duration"], float)
        assert doc["resp_headers"]["Server"] == ["Caddy"]
        assert doc["resp_headers"].get("X-Error-Code") == (
            [row["error_code"]] if conflict(row) else None
        )


def test_haproxy_escapes_captured_quotes(frame):
    with_if_match = frame.filter(pl.col("if_match").is_not_null())
    assert with_if_match.height
    for line, value in zip(
        format_lines(with_if_match, "haproxy-httplog"), with_if_match["if_match"], strict=True
    ):
        captured = re.search(r" \{[^|]*\|([^}]*)\} \{", line)
        assert captured and captured.group(1) == value.replace('"', "#22")


def test_if_match_only_on_writes_and_never_on_a_428(frame):
    """If-Match is evidence of optimistic locking for the classifier; the formats that cannot
    carry an error code cannot carry it either, and a 428 means none was sent."""
    sent = frame.filter(pl.col("if_match").is_not_null())
    assert sent.height and set(sent["method"]) == {"PUT", "PATCH"}
    assert 428 not in set(sent["status"])
    assert set(frame.filter(pl.col("status") == 412)["if_match"].is_not_null()) == {True}


def test_time_zone_is_the_formats_own_convention(frame):
    berlin = format_lines(frame.head(1), "nginx-json", "Europe/Berlin")[0]
    assert '+01:00"' in berlin
    assert '"+00:00"' not in format_lines(frame.head(1), "envoy-json", "Europe/Berlin")[0]
    assert (
        format_lines(frame.head(1), "envoy-json", "Europe/Berlin")[0]
        == format_lines(frame.head(1), "envoy-json")[0]
    )
    assert "+0100]" in format_lines(frame.head(1), "traefik-clf", "Europe/Berlin")[0]


# --- planted scenarios -----------------------------------------------------------------------------


def window(found: pl.DataFrame, start: str, end: str, closed: str = "left") -> pl.DataFrame:
    lo, hi = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    return found.filter(pl.col("ts").is_between(lo, hi, closed=closed))  # type: ignore[arg-type]


def planted(
    tmp_path: Path, scenario: str, lines: int, seed: int = 21
) -> tuple[dict[str, Any], pl.DataFrame]:
    truth = write_log(
        tmp_path / "p.log", lines, style="nginx-combined", seed=seed, scenario=scenario
    )
    assert truth["scenario"] == scenario
    return truth["planted"], traffic(lines, seed=seed, scenario=scenario)


def test_hot_document_storm(tmp_path):
    facts, found = planted(tmp_path, "hot-document", 50_000)
    assert (facts["method"], facts["route"]) == ("PATCH", "/api/v2/documents/{hex}")
    assert re.fullmatch(r"[0-9a-f]{24}", facts["resource"])
    assert facts["path"] == f"/api/v2/documents/{facts['resource']}"
    doc = found.filter(pl.col("path") == facts["path"])
    inside = window(doc, facts["start"], facts["end"])
    assert inside.height == doc.height == facts["requests"]
    conflicts = inside.filter(pl.col("status").is_in(CONFLICT_STATUSES))
    assert conflicts.height == facts["conflicts"] >= 0.5 * facts["requests"]
    assert set(conflicts["error_code"]) == {"VERSION_MISMATCH", "ETAG_MISMATCH"}
    assert inside["client"].n_unique() == facts["clients"] >= 6
    minutes = (
        dt.datetime.fromisoformat(facts["end"]) - dt.datetime.fromisoformat(facts["start"])
    ).seconds / 60
    # the storm is by far the busiest document while it lasts
    others = window(found.filter(pl.col("route") == facts["route"]), facts["start"], facts["end"])
    busiest_other = others.filter(pl.col("path") != facts["path"])["path"].value_counts(sort=True)
    assert facts["requests"] > 5 * busiest_other["count"][0]
    assert facts["requests"] / minutes > 10


def test_retry_storm(tmp_path):
    facts, found = planted(tmp_path, "retry-storm", 40_000)
    mine = found.filter(pl.col("client") == facts["client"])
    assert mine.height == facts["count"] == 100
    on_resource = window(mine, facts["start"], facts["end"], closed="both").filter(
        (pl.col("method") == facts["method"])
        & (pl.col("route") == facts["route"])
        & (pl.col("path") == f"/api/v1/users/{facts['resource']}")
    )
    assert on_resource.height == facts["count"]
    assert set(on_resource["status"]) == {409} and set(on_resource["error_code"]) == {
        "VERSION_MISMATCH"
    }
    gaps = np.diff(on_resource["ts"].dt.epoch("us").to_numpy()) / 1000
    assert gaps.min() >= 195 and gaps.max() <= 305  # every 200-300 ms: no backoff
    assert np.median(gaps) == pytest.approx(facts["median_interval_ms"], abs=0.01)
    assert gaps[-10:].mean() < gaps[:10].mean()  # if anything, it speeds up
    assert on_resource["client_port"].n_unique() == 1 and on_resource["if_match"].n_unique() == 1


def rate(found: pl.DataFrame) -> float:
    return found.filter(pl.col("status").is_in(CONFLICT_STATUSES)).height / max(found.height, 1)


def test_deploy_spike(tmp_path):
    facts, found = planted(tmp_path, "deploy-spike", 300_000)
    start, end = dt.datetime.fromisoformat(facts["start"]), dt.datetime.fromisoformat(facts["end"])
    assert end - start == dt.timedelta(minutes=20) and facts["factor"] == 8
    assert len(facts["routes"]) == 3
    in_window = pl.col("ts").is_between(start, end, closed="left")  # type: ignore[arg-type]
    for spec in facts["routes"]:
        mine = found.filter(
            (pl.col("method") == spec["method"]) & (pl.col("route") == spec["route"])
        )
        during, rest = mine.filter(in_window), mine.filter(~in_window)
        assert during.height == spec["window_requests"] >= 50
        assert rate(during) == pytest.approx(spec["window_rate"])
        assert rate(rest) == pytest.approx(spec["baseline_rate"])
        assert rate(during) > 4 * rate(rest), spec
        spiked = during.filter(pl.col("error_code") == spec["error_code"]).height
        assert spiked > 0.8 * during.filter(pl.col("status").is_in(CONFLICT_STATUSES)).height
    planted_routes = {(s["method"], s["route"]) for s in facts["routes"]}
    for ep in ENDPOINTS:
        if ep.conflicts and (ep.method, ep.route) not in planted_routes:
            mine = found.filter((pl.col("method") == ep.method) & (pl.col("route") == ep.route))
            assert rate(mine.filter(in_window)) < 2.5 * ep.conflict_rate + 0.05, ep.route


def test_signup_surge(tmp_path):
    facts, found = planted(tmp_path, "signup-surge", 60_000)
    route = found.filter((pl.col("method") == "POST") & (pl.col("route") == "/api/v1/users"))
    inside = window(route, facts["start"], facts["end"])
    assert inside.height == facts["requests"] and facts["added_requests"] > 0
    taken = inside.filter(pl.col("error_code") == "EMAIL_TAKEN").height
    assert taken == facts["conflicts_by_code"]["EMAIL_TAKEN"] >= 0.3 * facts["requests"]
    span = (
        dt.datetime.fromisoformat(facts["end"]) - dt.datetime.fromisoformat(facts["start"])
    ) / dt.timedelta(hours=1)
    per_hour_inside = inside.height / span
    per_hour_outside = (route.height - inside.height) / (24 - span)
    assert per_hour_inside > 3 * per_hour_outside


def test_order_states(tmp_path):
    facts, found = planted(tmp_path, "order-states", 60_000)
    route = found.filter(
        (pl.col("method") == "POST") & (pl.col("route") == "/api/v1/orders/{uuid}/cancel")
    )
    inside = window(route, facts["start"], facts["end"])
    assert inside.height == facts["requests"]
    by_code = dict(inside.filter(pl.col("status") == 409)["error_code"].value_counts().iter_rows())
    assert by_code == facts["conflicts_by_code"]
    assert set(by_code) == {"ORDER_ALREADY_SHIPPED", "INVALID_STATE_TRANSITION"}
    assert rate(inside) > 2 * rate(route.filter(~pl.col("ts").is_in(inside["ts"].implode())))
    assert inside["path"].n_unique() < inside.height  # the same orders, cancelled again


def test_planted_scenarios_need_enough_lines_and_hours(tmp_path):
    with pytest.raises(SampleError, match="at least 200 lines"):
        write_log(tmp_path / "x.log", 100, scenario="retry-storm")
    with pytest.raises(SampleError, match="hour"):
        write_log(tmp_path / "x.log", 1_000, scenario="deploy-spike", hours=0.5)
    with pytest.raises(SampleError, match="unknown scenario"):
        write_log(tmp_path / "x.log", 1_000, scenario="tornado")
    with pytest.raises(SampleError, match="unknown format"):
        write_log(tmp_path / "x.log", 1_000, style="iis")


# --- the command line ------------------------------------------------------------------------------


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stdout == "" and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--format", "iis"], ("unknown format 'iis'", "kong-json")),
        (["--scenario", "tornado"], ("unknown scenario 'tornado'", "retry-storm")),
        (["--scenario", "retry-storm", "--lines", "50"], ("at least 200 lines",)),
        (["--hours", "0"], ("--hours",)),
        (["--scenario", "deploy-spike", "--hours", "0.5"], ("hour",)),
    ],
)
def test_sample_command_errors_are_one_line(run_cli, tmp_path, args, needles):
    result = run_cli("sample", "--lines", 500, *args, "--out", tmp_path / "x.log")
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "x.log").exists()


def test_sample_command_writes_a_scenario(run_cli, tmp_path):
    out = tmp_path / "alb.log.gz"
    result = run_cli(
        "sample", "--format", "aws-alb", "--scenario", "retry-storm", "--lines", 2_000,
        "--seed", 3, "--hours", 6, "--tz", "Europe/Berlin", "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    truth = json.loads(result.stdout)
    assert (truth["format"], truth["scenario"], truth["hours"], truth["tz"]) == (
        "aws-alb",
        "retry-storm",
        6.0,
        "Europe/Berlin",
    )
    assert truth["planted"]["count"] == 25
    assert len(read_lines(out)) == 2_000
    assert json.loads(Path(f"{out}.truth.json").read_text()) == truth
    assert all(c["error_code"] is None for c in truth["conflicts_by_cluster"])
    text = run_cli("sample", "--format", "envoy-text", "--lines", 300, "--out", tmp_path / "e.log")
    assert text.exit_code == 0 and "wrote 300 lines" in text.stdout


# --- the committed samples -------------------------------------------------------------------------


def sample_path(style: str) -> Path:
    return SAMPLES / (f"{style}.log.gz" if style == "aws-alb" else f"{style}.log")


@pytest.mark.parametrize("style", LINE_STYLES)
def test_every_format_has_a_sample_with_its_truth(style):
    path = sample_path(style)
    truth = json.loads(Path(f"{path}.truth.json").read_text())
    lines = read_lines(path)
    assert truth["lines"] == len(lines) == 400 and truth["format"] == style
    assert truth["conflicts"] > 5
    codes = [c["error_code"] for c in truth["conflicts_by_cluster"]]
    if style in CODE_STYLES:
        assert all(codes)
        carrying = [
            line for line in lines if any(s in line for c in ALL_CODES for s in code_spellings(c))
        ]
        assert len(carrying) == truth["conflicts"]
    else:
        assert not any(codes)


def test_samples_are_what_the_generator_writes(tmp_path):
    written = write_samples(tmp_path)
    assert len(written) == len(LINE_STYLES) + 4
    for path in written:
        committed = SAMPLES / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed}: run `make samples`"
        truth = Path(f"{committed}.truth.json")
        assert truth.read_text() == Path(f"{path}.truth.json").read_text(), truth
    scenarios = {json.loads(Path(f"{p}.truth.json").read_text())["scenario"] for p in written}
    assert {"hot-document", "retry-storm", "signup-surge", "order-states"} <= scenarios
