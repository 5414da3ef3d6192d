"""The compiled JSON scanner reads every line exactly as DuckDB's JSON reader does.

Each case extracts the same lines twice: through ``Extraction.run`` (the scanner, with the
lines it does not accept handed to DuckDB) and through DuckDB alone. The lines are every JSON
sample, the peer fixtures' expected values (other JSON shapes), hand-written edge cases, and
mutations built to hit every place where the scanner must hand a line over: escapes,
surrogates, numbers DuckDB re-writes, duplicate keys, objects where a text is wanted, broken
structure, truncations at every byte.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from conflictlens.ingest.formats import scan
from conflictlens.ingest.formats.fields import PARSED_COLUMNS
from conflictlens.ingest.formats.json_scan import (
    NUMERIC_FIELDS,
    compile_paths,
    path_keys,
    scan_json,
)
from conflictlens.ingest.formats.jsonl import (
    JSON_FORMATS,
    Extraction,
    JsonFormat,
    extract,
    mapped_json_format,
    with_body_codes,
)
from tests.mutations import mutations, truncations
from tests.peer_fixtures import FIXTURES, require_fixtures

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_logs"

EDGE_CASES = [
    '{"status": 409, "method": "PUT"}\n',
    '{"status":"409","request_uri":"/a\\/b?x=1\\u0026y=2","request_method":"P\\u00c9T"}\n',
    '{"status":409,"request_uri":"/emoji/\\ud83d\\ude00"}\n',
    '{"status":409,"request_uri":"/lone/\\ud83d"}\n',
    '{"status":409,"request_uri":"/low/\\ude00"}\n',
    '{"status":409,"request_uri":"/nul/\\u0000"}\n',
    '{"status":409,"request_uri":"/bad\\escape"}\n',
    '{"status":409.0,"request_time":0.120,"body_bytes_sent":-0}\n',
    '{"status":4.09e2,"request_time":1E-3}\n',
    '{"status":409,"host":0.5,"request_method":-0}\n',
    '{"status":409,"host":12345678901234567890}\n',
    '{"status":409,"host":123456789012345678}\n',
    '{"status":409,"status":200}\n',
    '{"status":409,"host":{"name":"a" , "x": [1, 2, {"y": null}]}}\n',
    '{"status":409,"host":["a"]}\n',
    '{"status":409,"host":true,"request_method":false,"request_uri":null}\n',
    '{"status":409,}\n',
    '{"status":NaN}\n',
    '{"status":01}\n',
    '{"status":409} trailing\n',
    '  \t{ "status" : 409 }  \r\n',
    "{}\n",
    "\n",
    "[1, 2]\n",
    '"just a string"\n',
    '{"sta\\u0074us":409}\n',
    '{"status":409,"request":{"method":"GET"}}\n',
    '{"status":"409\t"}\n',
    '{"response":{"status":409,"status":409},"request":{"method":"GET","method":"PUT"}}\n',
    '{"a":' * 70 + "1" + "}" * 70 + "\n",
    '{"a":' * 20 + "1" + "}" * 20 + "\n",
    '{"status":409,"request_method":"GET"',
]

INSERTS = ['"', "\\", '\\"', "\\u00e9", "\\ud83d", "\\ude00", "\\u0000", "\\n", "{", "}", "["]
INSERTS += ["]", ",", ":", " ", "\t", "\n", "é", "1e5", "-0", "0.10", "null", "true", "x"]


def base_lines() -> list[str]:
    lines = [*EDGE_CASES]
    for name in JSON_FORMATS:
        with (SAMPLE_DIR / f"{name}.log").open(encoding="utf-8") as log:
            lines += [next(log) for _ in range(150)]
    require_fixtures()
    for path in sorted(FIXTURES.glob("*/*.expected.jsonl")):
        lines += path.read_text(encoding="utf-8").splitlines(keepends=True)
    return lines


def extractions() -> list[tuple[str, Extraction]]:
    found = []
    for fmt in JSON_FORMATS.values():
        for part in ("_common", "_everything", "_event_only"):
            extraction: Extraction = getattr(fmt, part)
            if extraction.trie is not None:
                found.append((f"{fmt.name}{part}", extraction))
    return found


def test_the_json_scanner_is_built():
    assert scan.available(), "ingest/formats/_json.c was not built: is a C compiler installed?"


def test_every_format_decodes_its_common_fields_with_the_scanner():
    # Array indexes (Caddy's header lists) are the scanner's one gap, and only event fields
    # use them, which are decoded on the few lines that become events.
    for fmt in JSON_FORMATS.values():
        assert fmt._common.trie is not None, fmt.name


def cases(seed: int) -> list[str]:
    lines = base_lines()
    return (
        lines
        + mutations(lines, 15_000, seed=seed, pieces=INSERTS, most_edits=3)
        + truncations(lines[:: len(lines) // 6])
    )


@pytest.mark.parametrize(
    ("name", "extraction"), extractions(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_scanner_and_duckdb_extract_the_same_values(name, extraction):
    texts = pl.Series("line", cases(seed=len(name)), dtype=pl.String)
    fast = extraction.run(texts)
    reference = extract(texts, extraction.sql, extraction.paths)
    assert fast.columns == reference.columns
    for column in fast.columns:
        mine, theirs = fast[column], reference[column]
        if column in NUMERIC_FIELDS:
            # taken as written (0.120), where DuckDB writes the number back (0.12)
            assert mine.is_null().equals(theirs.is_null()), column
            mine, theirs = (s.cast(pl.Float64, strict=False) for s in (mine, theirs))
        assert mine.equals(theirs), column


@pytest.mark.parametrize("fmt", list(JSON_FORMATS.values()), ids=lambda f: f.name)
@pytest.mark.parametrize("statuses", [None, (409, 412, 423, 428)], ids=["all", "events"])
def test_scanner_and_duckdb_parse_the_same_rows(fmt, statuses):
    texts = cases(seed=len(fmt.name) + 1)
    lines = pl.DataFrame({"line": texts, "offset": range(len(texts))})
    duckdb_only = dataclasses.replace(fmt, scanner=False)
    assert duckdb_only._common.trie is None
    # what becomes rows (the raw columns in between may hold a number as it was written)
    kept = ["line", "offset", *PARSED_COLUMNS, "reject"]
    fast = fmt.parse(lines, detail_statuses=statuses).select(kept)
    assert fast.equals(duckdb_only.parse(lines, detail_statuses=statuses).select(kept))
    assert fast.filter(pl.col("reject").is_null()).height >= 150  # it reads real lines


def test_the_scanner_reads_ordinary_lines_itself_and_hands_over_the_rest():
    fmt = JSON_FORMATS["nginx-json"]
    trie = fmt._common.trie
    assert trie is not None
    lines = pl.Series("line", EDGE_CASES[:5] + EDGE_CASES[12:13] + EDGE_CASES[16:17])
    _, accepted = scan_json(lines, trie)
    # escapes and an emoji pair are decoded; a lone surrogate, an unpaired low one, \u0000, a
    # duplicate wanted key and a trailing comma go to DuckDB
    assert accepted.tolist() == [True, True, True, False, False, False, False]
    values = fmt._common.run(lines)
    assert values["target"][1] == "/a/b?x=1&y=2"
    assert values["method"][1] == "PÉT"
    assert values["target"][2] == "/emoji/\U0001f600"


def test_long_values_and_values_two_columns_share_are_read_whole():
    # Values longer than a view holds inline are copied out of their lines into one dense
    # buffer (the speed of the passes after the scan depends on it); a value two columns want
    # is copied once, and both columns must still read it whole.
    trie = compile_paths(
        {
            "service": ("$.svc.name", "$.svc.host"),
            "upstream": ("$.svc.host",),
            "target": ("$.uri",),
            "method": ("$.m",),
        }
    )
    assert trie is not None
    host, uri = "backend-" + "x" * 40 + ".internal", "/orders/" + "9" * 30
    padding = '"skipped": "' + "z" * 2_000 + '"'
    lines = pl.Series(
        "line",
        [
            f'{{{padding}, "svc": {{"host": "{host}"}}, "uri": "{uri}", "m": "GET"}}',
            f'{{"svc": {{"name": "a-rather-long-name", "host": "{host}"}}, {padding}}}',
            '{"uri": "/short", "m": "PUT"}',
        ],
    )
    columns, accepted = scan_json(lines, trie)
    assert accepted.tolist() == [True, True, True]
    assert columns["service"].to_list() == [host, "a-rather-long-name", None]
    assert columns["upstream"].to_list() == [host, host, None]
    assert columns["target"].to_list() == [uri, None, "/short"]
    assert columns["method"].to_list() == ["GET", None, "PUT"]


def test_keys_that_share_a_lookup_slot_are_told_apart():
    # keys of one length, first and last byte share their node's lookup slot: every edge with
    # that slot is tried, and a key in an empty slot is skipped without trying any
    from conflictlens.ingest.formats.json_scan import MANY_EDGES, key_hash

    columns = {"first": ("$.aXz",), "second": ("$.aYz",), "third": ("$.other",)}
    trie = compile_paths(columns)
    assert trie is not None
    assert key_hash(b"aXz") == key_hash(b"aYz")
    assert trie.lookup[0, key_hash(b"aXz")] == MANY_EDGES
    lines = pl.Series(
        "line",
        [
            '{"aYz": "2", "aZz": "skipped", "aXz": "1", "other": "3"}',
            '{"aQz": "x", "nothing": "wanted"}',
            '{"aXz": "1", "aXz": "twice"}',
        ],
    )
    values, accepted = scan_json(lines, trie)
    assert accepted.tolist() == [True, True, False]  # a duplicate wanted key is DuckDB's
    assert values["first"].to_list() == ["1", None, None]
    assert values["second"].to_list() == ["2", None, None]
    assert values["third"].to_list() == ["3", None, None]


def test_numbers_are_taken_as_written_only_where_they_become_numbers():
    fmt = JSON_FORMATS["nginx-json"]
    lines = pl.Series("line", [EDGE_CASES[7], EDGE_CASES[9], EDGE_CASES[11]])
    assert fmt._common.trie is not None
    _, accepted = scan_json(lines, fmt._common.trie)
    # 0.120 as a latency is 0.12 either way; 0.5 and -0 as a host are DuckDB's to write
    assert accepted.tolist() == [True, False, True]
    values = fmt._common.run(lines)
    assert values["host"].to_list() == [None, "0.5", "123456789012345678"]
    assert values["method"][1] == "0"


def test_paths_other_than_plain_keys_have_no_trie():
    assert path_keys('$.request.headers."user-agent"') == ["request", "headers", "user-agent"]
    assert path_keys('$."@timestamp"') == ["@timestamp"]
    assert path_keys('$.request.headers."User-Agent"[0]') is None
    assert path_keys("$.a.*") is None
    assert compile_paths({"user_agent": ('$.headers."User-Agent"[0]',)}) is None
    caddy: JsonFormat = JSON_FORMATS["caddy-json"]
    assert caddy._everything.trie is None  # its header lists
    mapped = mapped_json_format({"status": "$.http.code", "method": ["$.verb", "$.http.method"]})
    assert mapped._everything.trie is not None


BODIES = [
    '{"error":{"code":"VERSION_MISMATCH","message":"reload it"}}',
    '{"code":"ORDER_ALREADY_SHIPPED","message":"shipped"}',
    '{"error":"EMAIL_TAKEN"}',
    '{"error":["x"]}',
    '{"error":{"message":"no code"}}',
    '{"type":"https://example.com/problems/email-taken","title":"Email taken"}',
    '{"title":"Conflict"}',
    '{"errorCode":"LOCKED","error_code":"OTHER"}',
    '{"error":{"code":{"nested":1}},"code":"FALLBACK"}',
    '{"error":{"code":"A\\u00e9"},"code":12}',
    '{"code":1.50}',
    "not json",
    "",
    '{"error":{"code":"DUP"},"error":{"code":"DUP2"}}',
]


def test_body_codes_from_the_scanner_equal_duckdbs():
    bodies = BODIES + mutations(BODIES, 5_000, seed=9, pieces=INSERTS)
    frame = pl.DataFrame(
        {"_body": bodies, "error_code": pl.Series([None] * len(bodies), dtype=pl.String)}
    )
    fast = with_body_codes(frame, scanner=True)["error_code"]
    reference = with_body_codes(frame, scanner=False)["error_code"]
    assert fast.equals(reference)
    assert fast.head(len(BODIES)).to_list()[:8] == [
        "VERSION_MISMATCH",
        "ORDER_ALREADY_SHIPPED",
        "EMAIL_TAKEN",
        '["x"]',
        None,
        "EMAIL_TAKEN",
        "Conflict",
        "LOCKED",
    ]
