"""End to end: generated logs with known ground truth → ingest → clusters, counted exactly."""

from __future__ import annotations

import datetime as dt
import gc
import gzip
import io
import random
import shutil
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from conflictlens.analysis import TimeRange, run_query
from conflictlens.ingest import IngestOptions, import_source
from conflictlens.ingest.lines import ReadBuffers, read_chunks
from conflictlens.sample_logs.generator import EXTENDED_LOG_FORMAT, write_log
from conflictlens.store import Writer, connect
from tests.helpers import (
    assert_store_matches_truth,
    clf_line,
    cli_json,
    merge_truths,
    store_counts,
    write_lines,
)


def ingest(run_cli, db: Path, *args, input: bytes | None = None) -> dict:
    return cli_json(run_cli("ingest", "--db", db, "--json", *args, input=input))


def clusters(run_cli, db: Path, *args) -> list[dict]:
    return cli_json(run_cli("clusters", "--db", db, "--json", "--limit", 100_000, *args))


def gzip_copy(source: Path, target: Path) -> Path:
    with source.open("rb") as plain, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    return target


def assert_clean_import(summary: dict, lines: int, conflicts: int) -> None:
    assert summary["lines"] == lines
    assert summary["parsed"] == lines
    assert summary["rejected"] == 0
    assert summary["reject_reasons"] == {}
    assert summary["conflicts"] == conflicts


def test_nginx_combined_auto_format_matches_ground_truth(run_cli, db_path, combined_log):
    log, truth = combined_log
    summary = ingest(run_cli, db_path, log)
    assert_clean_import(summary, truth["lines"], truth["conflicts"])
    assert summary["files"][0]["format"] == "nginx-combined"
    result = clusters(run_cli, db_path)
    assert all(c["error_code"] is None for c in result)  # combined lines carry no error code
    assert_store_matches_truth(db_path, result, truth)
    assert store_counts(db_path)["rejects"] == 0


def test_nginx_extended_with_log_format_matches_ground_truth(run_cli, db_path, extended_log):
    log, truth = extended_log
    summary = ingest(run_cli, db_path, "--log-format", EXTENDED_LOG_FORMAT, log)
    assert_clean_import(summary, truth["lines"], truth["conflicts"])
    result = clusters(run_cli, db_path)
    assert {c["error_code"] for c in result} >= {
        "VERSION_MISMATCH",
        "EMAIL_TAKEN",
        "RESOURCE_LOCKED",
    }
    assert_store_matches_truth(db_path, result, truth)
    assert store_counts(db_path)["rejects"] == 0


def test_extended_log_keeps_latency_and_error_code_per_event(run_cli, db_path, extended_log):
    log, truth = extended_log
    ingest(run_cli, db_path, "--log-format", EXTENDED_LOG_FORMAT, log)
    with closing(connect(db_path, read_only=True)) as con:
        missing = con.execute(
            "SELECT count(*) FROM conflict_events WHERE error_code IS NULL OR latency_ms IS NULL"
        ).fetchall()[0][0]
        latency = con.execute("SELECT sum(latency_count)::BIGINT FROM request_rollups").fetchall()[
            0
        ][0]
    assert missing == 0  # every generated conflict has an error code and a request time
    assert latency == truth["lines"]


def test_time_zone_of_the_log_does_not_change_counts_or_instants(run_cli, db_path, tmp_path):
    log = tmp_path / "berlin.log"
    truth = write_log(log, 3_000, style="nginx-combined", seed=11, tz="Europe/Berlin")
    assert b"+0100]" in log.read_bytes()[:200]
    ingest(run_cli, db_path, log)
    assert_store_matches_truth(db_path, clusters(run_cli, db_path), truth)
    with closing(connect(db_path, read_only=True)) as con:
        totals = run_query(con, "totals", TimeRange()).row(0, named=True)
    first = dt.datetime.fromisoformat(truth["from"]).astimezone(dt.UTC).replace(tzinfo=None)
    last = dt.datetime.fromisoformat(truth["to"]).astimezone(dt.UTC).replace(tzinfo=None)
    assert totals["first_minute"] == first.replace(second=0, microsecond=0)
    assert totals["last_minute"] == last.replace(second=0, microsecond=0)
    assert totals["requests"] == truth["lines"]
    assert totals["conflicts"] == truth["conflicts"]


def test_many_small_chunks_give_the_same_exact_counts(db_path, tmp_path):
    """Chunk boundaries fall mid-line all over the file; every line is still counted once."""
    log = tmp_path / "access.log"
    truth = write_log(log, 2_000, style="nginx-extended", seed=13)
    options = IngestOptions(chunk_bytes=16_384, workers=3)
    with closing(connect(db_path)) as con:
        summary = import_source(str(log), Writer(con), options, log_format=EXTENDED_LOG_FORMAT)
    assert log.stat().st_size > 20 * options.chunk_bytes
    assert (summary.lines, summary.parsed, summary.rejected) == (truth["lines"], truth["lines"], 0)
    assert summary.conflicts == truth["conflicts"]
    with closing(connect(db_path, read_only=True)) as con:
        frame = run_query(con, "clusters", TimeRange())
    assert_store_matches_truth(db_path, frame.to_dicts(), truth)
    counts = store_counts(db_path)
    assert counts["sources"] == [(1, log.stat().st_size, truth["lines"])]


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 4096, 1 << 20])
@pytest.mark.parametrize("last_line", [b"", b"last line without a newline"])
def test_chunks_hold_exactly_the_file_in_whole_lines(chunk_bytes, last_line):
    data = b"".join(b"x" * (i % 13) + b"\n" for i in range(300)) + last_line
    chunks = list(read_chunks(io.BytesIO(data), chunk_bytes=chunk_bytes))
    assert b"".join(c.data for c in chunks) == data
    assert all(bytes(c.data).endswith(b"\n") for c in chunks[:-1])
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
    assert all(c.data_start == c.start for c in chunks)  # no line skipped as too long


@pytest.mark.parametrize("chunk_bytes", [64, 1024, 1 << 20])
def test_with_the_size_known_a_last_line_without_a_newline_ends_the_last_chunk(chunk_bytes):
    # Not a chunk of its own: format detection, which reads the first chunk, sees it.
    data = b"".join(b"x" * (i % 13) + b"\n" for i in range(300)) + b"last line"
    chunks = list(read_chunks(io.BytesIO(data), chunk_bytes=chunk_bytes, size=len(data)))
    assert b"".join(c.data for c in chunks) == data
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
    assert bytes(chunks[-1].data).endswith(b"\nlast line")
    if chunk_bytes > len(data):
        assert len(chunks) == 1


@pytest.mark.parametrize("chunk_bytes", [30_000, 100_000, 300_000])
def test_lines_longer_than_the_newline_search_window_are_framed_exactly(chunk_bytes):
    # Lines around and beyond 64 KiB, the window that newlines are searched in; the reader
    # skips a line to its newline, across several reads, once it has outgrown the limit.
    lengths = [10, 70_000, 5, 65_535, 65_536, 131_073, 3, 250_000, 1]
    data = b"".join(b"y" * n + b"\n" for n in lengths)
    chunks = list(read_chunks(io.BytesIO(data), chunk_bytes=chunk_bytes, max_line_bytes=120_000))
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    assert [c.start for c in chunks[1:]] == [c.end for c in chunks[:-1]]
    skipped = []
    for chunk in chunks:
        at = chunk.start
        for line in chunk.overlong:  # whole lines, back to back, before the chunk's data
            assert line.offset == at and data[at : at + line.length].count(b"\n") == 1
            assert data[at + line.length - 1 : at + line.length] == b"\n"
            skipped.append(line.length - 1)
            at += line.length
        assert chunk.data_start == at and bytes(chunk.data) == data[at : chunk.end]
    assert all(n > 120_000 for n in skipped)
    if chunk_bytes < 120_000:  # the 250,000-byte line outgrows the limit before its newline
        assert 250_000 in skipped


@pytest.mark.parametrize(
    "data",
    [
        b"a\n" * 5_000,  # lines far shorter than the one-pass guess: a second pass
        b"x" * 300 + b"\n" + b"yy\n" * 200 + b"z" * 5_000,  # no newline at the end
        b"\n\n\n",  # empty lines only
        b"no newline at all",
        (b"y" * 63 + b"\n") * 1_000,  # exactly the guessed length
    ],
    ids=["short", "no-final-newline", "empty-lines", "one-unterminated", "guessed-length"],
)
def test_split_lines_cuts_where_bytes_split_does(data):
    from conflictlens.ingest.lines import Chunk, split_lines

    split = split_lines(Chunk(data, 100, 100 + len(data), 100))
    expected = data.splitlines(keepends=True)
    assert split.lines["line"].to_list() == [line.decode() for line in expected]
    starts = np.cumsum([0] + [len(line) for line in expected[:-1]]) + 100
    assert split.lines["offset"].to_list() == starts.tolist()


def test_a_last_line_without_a_newline_is_kept_whatever_its_length():
    # the compiled cut reads 16 bytes at a time: an unterminated tail that ends exactly on a
    # block must still be a line
    from conflictlens.ingest.lines import Chunk, split_lines

    for head in (b"", b"ab\n", b"x" * 14 + b"\n"):
        for tail in range(40):
            data = head + b"q" * tail + (b"\xc3\xa9" if tail % 3 == 0 and tail else b"")
            split = split_lines(Chunk(data, 0, len(data), 0))
            expected = [line.decode() for line in data.splitlines(keepends=True)]
            assert split.lines["line"].to_list() == expected, (head, tail)


def test_lines_that_are_not_utf8_are_found_as_python_finds_them():
    # the compiled cut checks UTF-8 itself: overlong forms, surrogates, code points above
    # U+10FFFF, truncated and stray continuation bytes, around the 8-byte ASCII fast path
    from conflictlens.ingest.lines import Chunk, _cut_lines, _cut_lines_with_polars, split_lines

    rng = random.Random(11)
    pieces = [
        b"a",
        b"abcdefgh",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
        b"\xf0\x9f\x98\x80",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xf4\x90\x80\x80",
        b"\xf5",
        b"\x80",
        b"\xc3",
        b"\xe2\x82",
        b"\xef\xbf\xbf",
        b"\xf4\x8f\xbf\xbf",
        b"\xed\x9f\xbf",
        b"\xee\x80\x80",
        b" ",
    ]
    lines = [
        b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) + b"\n"
        for _ in range(4_000)
    ]
    data = b"".join(lines)
    split = split_lines(Chunk(data, 7, 7 + len(data), 7))
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]]) + 7
    bad = [i for i, line in enumerate(lines) if not _decodes(line)]
    assert 0 < len(bad) < len(lines)
    assert split.invalid_offsets.tolist() == [int(starts[i]) for i in bad]
    assert split.lines["line"].to_list() == [line.decode() for line in lines if _decodes(line)]
    assert split.lines["offset"].to_list() == [
        int(starts[i]) for i in range(len(lines)) if i not in set(bad)
    ]
    raw = np.frombuffer(data, dtype=np.uint8)
    compiled, fallback = _cut_lines(raw, data), _cut_lines_with_polars(raw, data)
    assert compiled[0].equals(fallback[0])
    assert all(np.array_equal(a, b) for a, b in zip(compiled[1:3], fallback[1:3], strict=True))
    assert compiled[3] == fallback[3]


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_reimport_of_the_same_file_stores_nothing_twice(run_cli, db_path, combined_log):
    log, truth = combined_log
    ingest(run_cli, db_path, log)
    before = store_counts(db_path)
    again = ingest(run_cli, db_path, log)
    assert again["lines"] == 0 and again["conflicts"] == 0 and again["rejected"] == 0
    assert again["files"][0]["resumed_at"] == log.stat().st_size
    assert store_counts(db_path) == before
    assert before["events"] == truth["conflicts"] and before["requests"] == truth["lines"]


def test_grown_file_imports_only_the_new_lines(run_cli, db_path, tmp_path):
    log = tmp_path / "access.log"
    first = write_log(log, 3_000, style="nginx-combined", seed=21)
    size_before = log.stat().st_size
    assert ingest(run_cli, db_path, log)["lines"] == 3_000

    extra = tmp_path / "extra.log"
    second = write_log(extra, 1_000, style="nginx-combined", seed=22)
    with log.open("ab") as handle:
        handle.write(extra.read_bytes())

    summary = ingest(run_cli, db_path, log)
    assert summary["lines"] == 1_000
    assert summary["conflicts"] == second["conflicts"]
    assert summary["files"][0]["resumed_at"] == size_before
    counts = store_counts(db_path)
    assert counts["events"] == first["conflicts"] + second["conflicts"]
    assert counts["requests"] == 4_000
    assert counts["sources"] == [(1, log.stat().st_size, 4_000)]
    assert_store_matches_truth(db_path, clusters(run_cli, db_path), merge_truths(first, second))


def test_gzip_input_gives_the_same_counts(run_cli, db_path, tmp_path, extended_log):
    log, truth = extended_log
    packed = gzip_copy(log, tmp_path / "access.log.gz")
    summary = ingest(run_cli, db_path, "--log-format", EXTENDED_LOG_FORMAT, packed)
    assert_clean_import(summary, truth["lines"], truth["conflicts"])
    assert_store_matches_truth(db_path, clusters(run_cli, db_path), truth)
    # the offset counts bytes of the uncompressed stream
    assert store_counts(db_path)["sources"] == [(1, log.stat().st_size, truth["lines"])]


def test_gzip_after_the_plain_file_it_was_compressed_from_stores_nothing_twice(
    run_cli, db_path, tmp_path, combined_log
):
    log, truth = combined_log
    plain = tmp_path / "access.log.1"
    shutil.copyfile(log, plain)
    ingest(run_cli, db_path, plain)
    before = store_counts(db_path)
    packed = gzip_copy(plain, tmp_path / "access.log.1.gz")
    plain.unlink()  # logrotate's delaycompress: the plain sibling is gone once compressed
    again = ingest(run_cli, db_path, packed)
    assert again["lines"] == 0 and again["conflicts"] == 0
    assert store_counts(db_path) == before
    assert before["events"] == truth["conflicts"]


def test_plain_after_its_gzip_stores_nothing_twice(run_cli, db_path, tmp_path, combined_log):
    log, truth = combined_log
    packed = gzip_copy(log, tmp_path / "access.log.gz")
    assert ingest(run_cli, db_path, packed)["lines"] == truth["lines"]
    before = store_counts(db_path)
    assert ingest(run_cli, db_path, log)["lines"] == 0
    assert store_counts(db_path) == before


def test_small_gzip_after_its_plain_file_stores_nothing_twice(run_cli, db_path, tmp_path):
    plain = tmp_path / "small.log"
    write_lines(plain, [clf_line(f"/api/v1/users/{n}") for n in range(3)])
    assert plain.stat().st_size < 1024
    assert ingest(run_cli, db_path, plain)["lines"] == 3
    packed = gzip_copy(plain, tmp_path / "small.log.gz")
    again = ingest(run_cli, db_path, packed)
    assert again["lines"] == 0
    assert store_counts(db_path)["events"] == 3


def test_stdin_import_gives_the_same_counts(run_cli, db_path, combined_log):
    log, truth = combined_log
    summary = ingest(run_cli, db_path, "-", input=log.read_bytes())
    assert_clean_import(summary, truth["lines"], truth["conflicts"])
    assert summary["files"][0]["path"] == "-"
    assert_store_matches_truth(db_path, clusters(run_cli, db_path), truth)


def test_gzip_on_stdin_gives_the_same_counts(run_cli, db_path, extended_log):
    log, truth = extended_log
    packed = gzip.compress(log.read_bytes())
    summary = ingest(run_cli, db_path, "--log-format", EXTENDED_LOG_FORMAT, "-", input=packed)
    assert_clean_import(summary, truth["lines"], truth["conflicts"])
    assert_store_matches_truth(db_path, clusters(run_cli, db_path), truth)


def test_same_content_on_stdin_twice_stores_nothing_twice(run_cli, db_path, combined_log):
    log, truth = combined_log
    data = log.read_bytes()
    first = ingest(run_cli, db_path, "-", input=data)
    second = ingest(run_cli, db_path, "-", input=data)
    assert (first["lines"], second["lines"]) == (truth["lines"], 0)
    assert store_counts(db_path)["events"] == truth["conflicts"]


def test_small_content_on_stdin_twice_stores_nothing_twice(run_cli, db_path):
    data = b"\n".join(clf_line(f"/api/v1/users/{n}") for n in range(3)) + b"\n"
    first = ingest(run_cli, db_path, "-", input=data)
    second = ingest(run_cli, db_path, "-", input=data)
    assert (first["lines"], second["lines"]) == (3, 0)
    assert store_counts(db_path)["events"] == 3


def test_truncated_file_is_refused_with_a_clear_message(run_cli, db_path, tmp_path, combined_log):
    log, _ = combined_log
    copy = tmp_path / "access.log"
    shutil.copyfile(log, copy)
    ingest(run_cli, db_path, copy)
    before = store_counts(db_path)
    data = copy.read_bytes()
    with copy.open("r+b") as handle:  # same inode, same first bytes, shorter
        handle.truncate(data.index(b"\n", len(data) // 2) + 1)
    result = run_cli("ingest", "--db", db_path, copy)
    assert result.exit_code == 1
    assert "truncated" in result.stderr and "Traceback" not in result.output
    # The failed in-process run still holds its (writable) connection through the traceback;
    # drop it before reopening the file read-only.
    del result
    gc.collect()
    assert store_counts(db_path) == before


def test_read_buffers_are_reused_only_once_nothing_refers_to_them():
    pool = ReadBuffers()
    first = pool.take(1_000)
    chunk_view = memoryview(first[10:20])  # as a chunk holds its bytes
    second = pool.take(1_000)
    assert not np.shares_memory(first, second)
    del first, second
    third = pool.take(1_000)  # the second is free again; the first is still referred to
    assert third is pool._buffers[1]
    assert not np.shares_memory(third, np.frombuffer(chunk_view, dtype=np.uint8))
    del chunk_view, third
    again = pool.take(1_000)
    assert again is pool._buffers[0]  # all free again: the first is handed out, none is new
    assert len(pool._buffers) == 2


def test_chunks_kept_by_a_consumer_keep_their_bytes_while_later_ones_are_read():
    lines = [f"{i:07d} {'x' * (i % 50)}\n".encode() for i in range(20_000)]
    data = b"".join(lines)
    kept = []
    for number, chunk in enumerate(read_chunks(io.BytesIO(data), chunk_bytes=20_000)):
        assert bytes(chunk.data) == data[chunk.data_start : chunk.end]
        if number % 3 == 0:
            kept.append((chunk, bytes(chunk.data)))  # the others are dropped: buffers reused
    assert len(kept) > 10
    for chunk, copy in kept:
        assert bytes(chunk.data) == copy


def test_the_last_chunks_are_read_in_equal_parts_when_the_size_is_known():
    lines = [f"{i:07d} {'x' * (i % 90)}\n".encode() for i in range(60_000)]
    data = b"".join(lines)
    chunk_bytes = 1 << 20
    chunks = list(
        read_chunks(io.BytesIO(data), chunk_bytes=chunk_bytes, size=len(data), split_tail=2)
    )
    assert b"".join(bytes(c.data) for c in chunks) == data
    sizes = [c.end - c.start for c in chunks]
    assert all(abs(n - chunk_bytes) < 200 for n in sizes[:-2])  # full chunks, to a line
    last, before = sizes[-1], sizes[-2]
    assert abs(last - before) < 300 and last < chunk_bytes  # the tail, halved
