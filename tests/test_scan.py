"""The compiled CLF scanner reads every line exactly as the format's regex does.

Each case parses the same lines twice through ``ClfFormat.parse``: with the scanner (lines it
does not accept go to the regex) and with the regex alone. The lines are the peer fixtures,
the samples, and mutations of them built to hit every place where the scanner must hand a
line over: escapes, stray quotes, non-ASCII bytes, Unicode white space, address lists,
truncations at every byte.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import polars as pl
import pytest

from conflictlens.ingest.formats import PRESETS, ClfFormat, compile_log_format, scan
from conflictlens.ingest.formats.fields import PARSED_COLUMNS
from conflictlens.sample_logs.generator import EXTENDED_LOG_FORMAT
from tests.mutations import mutations, truncations
from tests.peer_fixtures import FIXTURES, require_fixtures

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_logs"
SAMPLES = ["nginx-combined", "nginx-common", "nginx-extended", "apache-combined", "apache-common"]
CUSTOM = {
    "extended": EXTENDED_LOG_FORMAT,
    "iso-time-host-first": '$host $remote_addr [$time_iso8601] "$request" $status $bytes_sent '
    '$request_time "$http_user_agent" $upstream_addr',
    "time-without-brackets": '$remote_addr $time_local "$request" $status $body_bytes_sent',
    "colon-separated": "$remote_addr:$msec:$status:$request_time:$request_uri",
    "apache-vhost-timing": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i" %D',
}


def base_lines() -> list[str]:
    lines: list[str] = []
    for name in SAMPLES:
        with (SAMPLE_DIR / f"{name}.log").open(encoding="utf-8") as log:
            lines += [next(log) for _ in range(200)]
    require_fixtures()
    for folder in ("nginx", "apache"):
        for path in sorted((FIXTURES / folder).glob("*.log")):
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    return lines


INSERTS = ['"', "\\", '\\"', "\\x22", "é", "\u00a0", "\u0085", "\u2003", "\t", " ", ",", ", "]
INSERTS += ["]", "[", "-", "0", "x", "\n", "\r", ":", "+0000", "\u0661"]  # an Arabic-Indic digit


def parse_both(fmt: ClfFormat, lines: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = pl.DataFrame(
        {"line": pl.Series(lines, dtype=pl.String), "offset": pl.Series(range(len(lines)))}
    )
    regex_only = dataclasses.replace(fmt, program=None)
    # what becomes rows (the columns in between differ: the scanner splits request lines)
    kept = ["line", "offset", *PARSED_COLUMNS, "reject"]
    return fmt.parse(frame).select(kept), regex_only.parse(frame).select(kept)


def formats() -> list[ClfFormat]:
    custom = [compile_log_format(text, name=name) for name, text in CUSTOM.items()]
    return [*PRESETS.values(), *custom]


def test_the_scanner_is_built():
    # make builds it with the package (setup.py); without a C compiler parsing still works,
    # all by regex, but several times slower: a CI without it should say so.
    assert scan.available(), "ingest/formats/_scan.c was not built: is a C compiler installed?"


@pytest.mark.parametrize("fmt", formats(), ids=lambda f: f.name)
def test_every_format_string_compiles_to_a_program(fmt):
    assert fmt.program is not None
    assert fmt.program.fields == fmt.fields


@pytest.mark.parametrize("fmt", formats(), ids=lambda f: f.name)
def test_scanner_and_regex_agree_on_real_and_mutated_lines(fmt):
    lines = base_lines()
    cases = (
        lines
        + mutations(lines, 20_000, seed=len(fmt.name), pieces=INSERTS)
        + truncations(lines[:: len(lines) // 8])
    )
    fast, reference = parse_both(fmt, cases)
    assert fast.equals(reference)
    if fmt.name in SAMPLES:  # the scanner takes the ordinary lines: it is not always handing over
        matched = fast.filter(pl.col("reject").is_null()).height
        assert matched >= 200


def test_the_scanner_hands_over_what_only_the_regex_reads():
    fmt = PRESETS["apache-combined"]
    lines = [
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 409 12 "-" "agent \\"q\\" x"\n',
        '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /é HTTP/1.0" 409 12 "-" "-"\u0085tail\n',
        '10.0.0.2, 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /b HTTP/1.0" 409 1 "-" "-"\n',
    ]
    frame = pl.DataFrame({"line": lines})
    assert fmt.program is not None
    _, matched = scan.scan(frame["line"], fmt.program)
    assert matched.tolist() == [False, False, True]
    fast, reference = parse_both(fmt, lines)
    assert fast.equals(reference)
    assert fast["user_agent"][0] == 'agent "q" x'
    assert fast["client"][2] == "1.2.3.4"


def test_split_once_cuts_as_polars_splitn_does():
    rng = random.Random(3)
    alphabet = "ab/?=&é€😀 -"
    texts: list[str | None] = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5_000)
    ]
    texts += [None, "", "?", "??", "a?", "?a", "x" * 12 + "?" + "y" * 13]
    series = pl.Series("target", texts, dtype=pl.String)
    before, after = scan.split_once(series, "?")
    parts = series.str.splitn("?", 2).struct
    assert before.equals(parts.field("field_0"), check_names=False)
    assert after.equals(parts.field("field_1"), check_names=False)


@pytest.mark.parametrize(
    ("chars", "non_ascii"),
    [(b"?", False), (b"\\", False), (b' \t\n\v\f\r,"', True), (b"%&", False), (b"", True)],
)
def test_with_bytes_finds_what_a_regex_finds(chars, non_ascii):
    rng = random.Random(5)
    alphabet = 'ab/?=&%\\,"\t é€😀-'
    texts: list[str | None] = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5_000)
    ]
    texts += [None, "", "x" * 12 + "?", "x" * 13 + "%", "\u00a0", "é" * 20]
    series = pl.Series("text", texts, dtype=pl.String)
    table = scan.byte_set(chars, non_ascii=non_ascii)
    found = scan.with_bytes(series, table)
    klass = "".join(f"\\x{b:02x}" for b in chars) + ("\\x{80}-\\x{10FFFF}" if non_ascii else "")
    expected = series.str.contains(f"[{klass}]").fill_null(False) if klass else None
    assert found.tolist() == (expected.to_list() if expected is not None else [False] * len(texts))
    assert found.any() or not klass
