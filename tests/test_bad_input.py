"""Hostile input: every good line is stored, every bad line is a reject with a reason, no crash."""

from __future__ import annotations

import random
from contextlib import closing
from pathlib import Path

import pytest

from conflictlens.ingest import IngestOptions, import_source
from conflictlens.store import Writer, connect
from tests.helpers import clf_line, cli_json, line_offsets, query, store_counts, write_lines

REJECT_SAMPLE_BYTES = 512


def garbage(length: int, seed: int = 1) -> bytes:
    """Random bytes without a newline (the line terminator is added by the file writer)."""
    rng = random.Random(seed)
    return bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(length))


# (name, bad line, what its reject reason must contain: any of these)
BAD_LINES: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("truncated", clf_line("/api/v1/users/7")[:40], ("does not match",)),
    ("binary garbage", garbage(300), ("invalid UTF-8", "does not match")),
    ("1 MB line", b"A" * 1_000_000, ("longer than",)),
    (
        "invalid UTF-8",
        clf_line("/api/v1/users/8", user_agent="UA").replace(b'"UA"', b'"x\xff\xfe"'),
        ("invalid UTF-8",),
    ),
    (
        "impossible timestamp",
        clf_line("/api/v1/users/9", ts="32/Feb/2026:10:00:00 +0000"),
        ("invalid timestamp",),
    ),
    ("non-numeric status", clf_line("/api/v1/users/10", status="abc"), ("invalid status",)),
]


def mixed_log(
    path: Path,
) -> tuple[list[bytes], dict[int, tuple[str, tuple[str, ...]]], list[str], int]:
    """Each bad line between a good 200 and a good 409. Returns the lines, the offset of every
    bad line with its expectation, the paths of the good 409 lines, and the good line count."""
    lines: list[bytes] = []
    bad_at: dict[int, tuple[str, tuple[str, ...]]] = {}
    conflict_paths: list[str] = []
    good = 0
    for number, (name, bad, reasons) in enumerate(BAD_LINES):
        lines.append(clf_line(f"/api/v1/orders/{number}", status=200, method="GET"))
        bad_at[len(lines)] = (name, reasons)
        lines.append(bad)
        conflict_paths.append(f"/api/v1/users/{1000 + number}")
        lines.append(clf_line(conflict_paths[-1]))
        good += 2
    write_lines(path, lines)
    offsets = line_offsets(lines)
    return lines, {offsets[i]: v for i, v in bad_at.items()}, conflict_paths, good


def test_the_bad_lines_really_are_what_they_claim():
    by_name = {name: bad for name, bad, _ in BAD_LINES}
    assert b"\n" not in b"".join(by_name.values())
    assert len(by_name["1 MB line"]) == 1_000_000
    assert b"\xff\xfe" in by_name["invalid UTF-8"]
    with pytest.raises(UnicodeDecodeError):
        by_name["invalid UTF-8"].decode("utf-8")


def test_mixed_good_and_bad_lines(run_cli, db_path, tmp_path):
    log = tmp_path / "mixed.log"
    lines, bad_at, conflict_paths, good = mixed_log(log)

    result = run_cli("ingest", "--db", db_path, "--json", log)
    assert "Traceback" not in result.output
    summary = cli_json(result)
    assert summary["lines"] == len(lines)
    assert summary["parsed"] == good
    assert summary["rejected"] == len(BAD_LINES)
    assert summary["conflicts"] == len(conflict_paths)

    counts = store_counts(db_path)
    assert counts["requests"] == good
    assert counts["events"] == len(conflict_paths)
    assert counts["rejects"] == len(BAD_LINES)
    assert counts["sources"] == [(1, log.stat().st_size, len(lines))]
    stored_paths = [
        row[0] for row in query(db_path, 'SELECT path FROM conflict_events ORDER BY "offset"')
    ]
    assert stored_paths == conflict_paths

    rejects = query(db_path, 'SELECT "offset", reason FROM rejects ORDER BY "offset"')
    assert [offset for offset, _ in rejects] == sorted(bad_at)
    for offset, reason in rejects:
        name, wanted = bad_at[offset]
        assert any(w in reason for w in wanted), (name, reason)


@pytest.fixture(scope="module")
def mixed_rejects(tmp_path_factory) -> dict[str, tuple[bytes, bytes]]:
    """Bad-line name → (its bytes, the sample stored for it), from one import of the mixed log."""
    folder = tmp_path_factory.mktemp("mixed")
    log, db = folder / "mixed.log", folder / "t.duckdb"
    lines, bad_at, _, _ = mixed_log(log)
    with closing(connect(db)) as con:
        import_source(str(log), Writer(con), IngestOptions())
    line_at = dict(zip(line_offsets(lines), lines, strict=True))
    samples = dict(query(db, 'SELECT "offset", sample FROM rejects'))
    return {bad_at[offset][0]: (line_at[offset], bytes(samples[offset])) for offset in bad_at}


@pytest.mark.parametrize("name", [name for name, _, _ in BAD_LINES])
def test_reject_sample_is_the_first_bytes_of_the_line(mixed_rejects, name):
    line, sample = mixed_rejects[name]
    assert sample == line[:REJECT_SAMPLE_BYTES]


def test_mixed_log_in_human_mode_reports_rejects_without_traceback(run_cli, db_path, tmp_path):
    log = tmp_path / "mixed.log"
    mixed_log(log)
    result = run_cli("ingest", "--db", db_path, log)
    assert result.exit_code == 0 and result.exception is None
    assert "Traceback" not in result.output
    assert f"{len(BAD_LINES)} rejected" in result.stdout
    assert "rejected 1: invalid timestamp" in result.stdout


def test_empty_file(run_cli, db_path, tmp_path):
    log = tmp_path / "empty.log"
    log.write_bytes(b"")
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert (summary["lines"], summary["rejected"], summary["conflicts"]) == (0, 0, 0)
    counts = store_counts(db_path)
    assert (counts["events"], counts["requests"], counts["rejects"]) == (0, 0, 0)
    assert [offset for _, offset, _ in counts["sources"]] == [0]
    # and once it has lines, they are all imported
    write_lines(log, [clf_line("/api/v1/users/1"), clf_line("/api/v1/users/2", status=200)])
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert (summary["lines"], summary["conflicts"]) == (2, 1)


def test_file_without_trailing_newline_imports_its_last_line(run_cli, db_path, tmp_path):
    log = tmp_path / "no-newline.log"
    lines = [
        clf_line("/api/v1/users/1"),
        clf_line("/api/v1/users/2", status=200),
        clf_line("/api/v1/users/3"),
    ]
    data = write_lines(log, lines, trailing_newline=False)
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert (summary["lines"], summary["parsed"], summary["rejected"], summary["conflicts"]) == (
        3,
        3,
        0,
        2,
    )
    assert [r[0] for r in query(db_path, 'SELECT path FROM conflict_events ORDER BY "offset"')] == [
        "/api/v1/users/1",
        "/api/v1/users/3",
    ]
    assert store_counts(db_path)["sources"] == [(1, len(data), 3)]


def test_the_last_line_without_a_newline_is_seen_by_format_detection(run_cli, db_path, tmp_path):
    # Only the last line says the log is Apache's (nginx never writes "-" for the bytes):
    # detection must see it, or nginx-combined wins the tie and rejects it.
    log = tmp_path / "apache.log"
    line = '1.2.3.4 - - [30/Jun/2019:17:06:15 +0000] "GET /{} HTTP/1.1" 409 {} "-" "curl/8"'
    lines = [line.format(n, 10 + n).encode() for n in range(3)] + [line.format(3, "-").encode()]
    write_lines(log, lines, trailing_newline=False)
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    [file] = summary["files"]
    assert (file["format"], file["detection"]["sampled"]) == ("apache-combined", 4)
    assert (summary["parsed"], summary["rejected"]) == (4, 0)
    assert query(db_path, "SELECT bytes FROM conflict_events WHERE path = '/3'") == [(0,)]


def test_completing_a_last_line_later_adds_no_phantom_line(run_cli, db_path, tmp_path):
    log = tmp_path / "growing.log"
    write_lines(
        log, [clf_line("/api/v1/users/1"), clf_line("/api/v1/users/2")], trailing_newline=False
    )
    cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    with log.open("ab") as handle:
        handle.write(b"\n" + clf_line("/api/v1/users/3") + b"\n")
    # The file now holds exactly three well-formed lines.
    assert log.read_bytes().count(b"\n") == 3 and b"\n\n" not in log.read_bytes()
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert summary["rejected"] == 0
    assert summary["lines"] == 1
    counts = store_counts(db_path)
    assert (counts["events"], counts["rejects"]) == (3, 0)
    assert counts["sources"][0][2] == 3


def test_crlf_line_endings_are_accepted(run_cli, db_path, tmp_path):
    log = tmp_path / "crlf.log"
    lines = [clf_line(f"/api/v1/users/{n}") + b"\r" for n in range(5)]
    write_lines(log, lines)
    summary = cli_json(run_cli("ingest", "--db", db_path, "--json", log))
    assert (summary["lines"], summary["rejected"], summary["conflicts"]) == (5, 0, 5)
    assert query(db_path, "SELECT DISTINCT user_agent FROM conflict_events") == [("curl/8.5.0",)]


def test_reject_sample_of_short_multibyte_line_is_the_whole_line(db_path, tmp_path):
    log = tmp_path / "accents.log"
    write_lines(log, ["é".encode() * 100, clf_line()])
    with closing(connect(db_path)) as con:
        import_source(str(log), Writer(con), IngestOptions())
    [(sample,)] = query(db_path, "SELECT sample FROM rejects")
    assert bytes(sample) == "é".encode() * 100


def test_reject_sample_is_at_most_512_bytes_for_multibyte_text(db_path, tmp_path):
    log = tmp_path / "accents.log"
    write_lines(log, ["é".encode() * 1000, clf_line()])
    with closing(connect(db_path)) as con:
        import_source(str(log), Writer(con), IngestOptions())
    [(sample,)] = query(db_path, "SELECT sample FROM rejects")
    assert len(sample) <= REJECT_SAMPLE_BYTES
    assert bytes(sample) == "é".encode() * (REJECT_SAMPLE_BYTES // 2)


# --- lines longer than a read chunk (read_chunks skips them to their newline) -----------------

SMALL = IngestOptions(chunk_bytes=4096, max_line_bytes=1024, workers=1)


def import_direct(db: Path, log: Path, options: IngestOptions = SMALL):
    with closing(connect(db)) as con:
        return import_source(str(log), Writer(con), options)


def test_line_between_the_line_limit_and_the_chunk_size_is_rejected(db_path, tmp_path):
    log = tmp_path / "long.log"
    before = [clf_line(f"/api/v1/users/{n}") for n in range(30)]
    after = [clf_line(f"/api/v1/users/{n}") for n in range(30, 60)]
    lines = [*before, b"x" * 2_000, *after]
    data = write_lines(log, lines)
    summary = import_direct(db_path, log)
    assert (summary.lines, summary.parsed, summary.rejected, summary.conflicts) == (61, 60, 1, 60)
    assert query(db_path, 'SELECT "offset", reason FROM rejects') == [
        (line_offsets(lines)[30], "line longer than 1024 bytes")
    ]
    assert store_counts(db_path)["sources"] == [(1, len(data), 61)]


OVERLONG_CASES = {
    "between good lines": (30, 100_000, 30, True),
    "first line": (0, 100_000, 30, True),
    "last line": (30, 100_000, 0, True),
    "last line without newline": (30, 100_000, 0, False),
}


@pytest.mark.parametrize("case", list(OVERLONG_CASES))
def test_line_longer_than_the_chunk_is_one_reject(db_path, tmp_path, case):
    good_before, length, good_after, trailing_newline = OVERLONG_CASES[case]
    log = tmp_path / "overlong.log"
    lines = [
        *(clf_line(f"/api/v1/users/{n}") for n in range(good_before)),
        b"x" * length,
        *(clf_line(f"/api/v1/users/{n}") for n in range(100, 100 + good_after)),
    ]
    data = write_lines(log, lines, trailing_newline=trailing_newline)
    good = good_before + good_after
    summary = import_direct(db_path, log)
    assert (summary.lines, summary.parsed, summary.rejected, summary.conflicts) == (
        good + 1,
        good,
        1,
        good,
    )
    rejects = query(db_path, 'SELECT "offset", reason, octet_length(sample) FROM rejects')
    assert len(rejects) == 1
    offset, reason, sample_length = rejects[0]
    assert offset == line_offsets(lines)[good_before]
    assert "longer than" in reason
    assert sample_length == REJECT_SAMPLE_BYTES
    counts = store_counts(db_path)
    assert (counts["events"], counts["requests"]) == (good, good)
    assert counts["sources"] == [(1, len(data), good + 1)]


def test_valid_utf8_is_kept_and_only_the_invalid_line_is_rejected():
    from conflictlens.ingest.lines import Chunk, split_lines

    good = '1.2.3.4 - - [19/Nov/2026:10:00:00 +0000] "GET /caf\u00e9 HTTP/1.1" 409 1 "-" "ag\u00e9nt \u2603"\n'.encode()
    data = good * 3 + b"\xff\xfe broken\n" + good
    split = split_lines(Chunk(data, 0, len(data), 0))
    assert split.lines.height == 4 and "\u2603" in split.lines["line"][0]
    assert split.invalid_offsets.tolist() == [3 * len(good)]
    clean = split_lines(Chunk(good * 5, 0, 5 * len(good), 0))
    assert (clean.lines.height, len(clean.invalid_offsets)) == (5, 0)
