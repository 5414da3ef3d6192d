"""The follower's store units on real files and a real DuckDB store: reading lines
(ingest.tail.reader), identifying a file's source (ingest.tail.identify) and committing
(ingest.tail.commit: rows and the offset in one transaction)."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conflictlens.ingest.lines import Chunk
from conflictlens.ingest.tail.commit import Committer, flush_due
from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.handle import OpenedFile, open_file
from conflictlens.ingest.tail.identify import identify
from conflictlens.ingest.tail.reader import LineReader, Pending, merge_chunks
from conflictlens.ingest.tail.spec import SourceSpec
from conflictlens.store import Writer, connect
from tests.helpers import clf_line

LINE = clf_line() + b"\n"
OK_LINE = clf_line("/api/v1/fine", status=200) + b"\n"
NEVER = 1e9  # a flush_ms no test reaches


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with closing(connect(db_path)) as con:
        yield con


def opened(path: Path) -> OpenedFile:
    return open_file(str(path))


# -- reader: complete lines, the partial last one held back --------------------------------


def test_a_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 3 + LINE[:20])
    reader = LineReader(opened(path), 0, continues_line=False)
    try:
        reader.read(path.stat().st_size, max_line_bytes=65536, budget=1 << 20, now=1.0)
        assert reader.read_offset == len(LINE) * 3
        assert reader.pending.lines == 3 and reader.pending.since == 1.0
        assert reader.caught_up(path.stat().st_size) is False  # lines pending
        reader.pending.take()
        assert reader.caught_up(path.stat().st_size)
        with path.open("ab") as handle:
            handle.write(LINE[20:])
        reader.read(path.stat().st_size, max_line_bytes=65536, budget=1 << 20, now=2.0)
        assert reader.read_offset == len(LINE) * 4
        assert b"".join(bytes(c.data) for c in reader.pending.take()) == LINE
    finally:
        reader.close()


def test_a_read_stops_at_its_budget_and_goes_on_from_there(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 100)
    size = path.stat().st_size
    reader = LineReader(opened(path), 0, continues_line=False)
    try:
        reader.read(size, max_line_bytes=65536, budget=len(LINE) * 10, now=0.0)
        assert reader.more and 0 < reader.read_offset < size
        while reader.more:
            reader.read(size, max_line_bytes=65536, budget=len(LINE) * 10, now=0.0)
        assert reader.read_offset == size and reader.pending.lines == 100
        merged = merge_chunks(reader.pending.take())
        assert len(merged) == 1 and bytes(merged[0].data) == LINE * 100
    finally:
        reader.close()


def test_a_compressed_file_is_read_to_its_end_from_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.log.1.gz"
    path.write_bytes(gzip.compress(LINE * 5 + LINE[:-1]))  # finished: the last line counts
    reader = LineReader(opened(path), len(LINE) * 2, continues_line=False)
    try:
        reader.read(None, max_line_bytes=65536, budget=1 << 20, now=0.0)
        assert reader.finished and reader.pending.lines == 3
        assert reader.read_offset == len(LINE) * 6 - 1
    finally:
        reader.close()


def test_rewind_forgets_what_was_read_after_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 4)
    reader = LineReader(opened(path), 0, continues_line=False)
    try:
        reader.read(path.stat().st_size, max_line_bytes=65536, budget=1 << 20, now=0.0)
        reader.rewind(len(LINE))
        assert not reader.pending and reader.read_offset == len(LINE)
        reader.read(path.stat().st_size, max_line_bytes=65536, budget=1 << 20, now=0.0)
        assert reader.pending.lines == 3
    finally:
        reader.close()


def test_merge_chunks_refuses_a_gap() -> None:
    with pytest.raises(ValueError, match="not contiguous"):
        merge_chunks(
            [
                Chunk(LINE, 0, len(LINE), 0),
                Chunk(LINE, len(LINE) + 1, 2 * len(LINE) + 1, len(LINE) + 1),
            ]
        )


# -- identify: which source, from where ----------------------------------------------------


def test_a_new_file_is_a_new_source_from_zero_or_from_its_last_line(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    writer = Writer(con)
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(LINE * 2)
    b.write_bytes(OK_LINE * 2 + OK_LINE[:30])  # other content: not a copy of a.log
    with closing(opened(a)) as oa, closing(opened(b)) as ob:
        first = identify(writer, oa, str(a), from_end=False, followed=[])
        second = identify(writer, ob, str(b), from_end=True, followed=[])
    assert first.record is not None and first.record.offset == 0
    assert second.record is not None and second.record.offset == len(OK_LINE) * 2
    assert first.record.source_id != second.record.source_id


def registered(writer: Writer, path: Path, offset: int) -> Any:
    """The stored source of the file at ``path``, read up to ``offset``."""
    with closing(opened(path)) as handle:
        return writer.register_source(
            device=handle.key[0],
            inode=handle.key[1],
            prefix=handle.prefix,
            path=str(path),
            offset=offset,
        )


def test_a_renamed_or_compressed_file_is_the_source_it_was(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    writer = Writer(con)
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 20)
    record = registered(writer, path, offset=len(LINE) * 5)
    path.rename(tmp_path / "a.log.1")
    with closing(opened(tmp_path / "a.log.1")) as moved:
        again = identify(writer, moved, str(tmp_path / "a.log.1"), from_end=True, followed=[])
    assert again.record is not None and again.record.source_id == record.source_id
    assert again.record.offset == len(LINE) * 5 and again.event is None
    (tmp_path / "a.log.1.gz").write_bytes(gzip.compress(LINE * 20))
    (tmp_path / "a.log.1").unlink()
    with closing(opened(tmp_path / "a.log.1.gz")) as compressed:
        found = identify(
            writer, compressed, str(tmp_path / "a.log.1.gz"), from_end=False, followed=[]
        )
    assert found.record is not None and found.record.source_id == record.source_id
    assert found.record.offset == len(LINE) * 5 and "same content" in (found.event or "")


def test_a_copy_waits_for_the_file_still_reading_its_source(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    writer = Writer(con)
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 20)
    with closing(opened(path)) as original:
        found = identify(writer, original, str(path), from_end=False, followed=[])
        assert found.record is not None
        reader = LineReader(original, 0, continues_line=False)
        followed = FollowedFile(str(path), 0, reader, found.record.source_id, 0)
        shutil.copy(path, tmp_path / "a.log.1")
        with closing(opened(tmp_path / "a.log.1")) as copy:
            waits = identify(
                writer, copy, str(tmp_path / "a.log.1"), from_end=False, followed=[followed]
            )
    assert (
        waits.record is None
        and waits.waiting == f"same content as {path}, which is still being read"
    )


def test_truncation_while_not_followed_is_a_new_source_but_a_short_copy_is_settled(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    writer = Writer(con)
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 20)
    old = registered(writer, path, offset=len(LINE) * 20)
    (tmp_path / "copy.log").write_bytes(LINE * 19)  # taken before the last line was read
    with closing(opened(tmp_path / "copy.log")) as copy:
        assert identify(
            writer, copy, str(tmp_path / "copy.log"), from_end=False, followed=[]
        ).settle
    with path.open("r+b") as handle:
        handle.truncate(len(LINE) * 15)
    with closing(opened(path)) as truncated:
        new = identify(writer, truncated, str(path), from_end=False, followed=[])
    assert (
        new.record is not None and new.record.source_id != old.source_id and new.record.offset == 0
    )
    assert "truncated while not followed" in (new.event or "")


def test_a_file_without_a_complete_line_is_not_identified_yet(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE[:40])
    with closing(opened(path)) as half:
        found = identify(Writer(con), half, str(path), from_end=False, followed=[])
    assert found.record is None and found.waiting is None and not found.settle


# -- commit: rows and the offset in one transaction ----------------------------------------


def _follow(path: Path, writer: Writer, source_id: int | None = None) -> FollowedFile:
    handle = opened(path)
    if source_id is None:
        source_id = identify(
            writer, handle, str(path), from_end=False, followed=[]
        ).record.source_id  # type: ignore[union-attr]
    f = FollowedFile(str(path), 0, LineReader(handle, 0, continues_line=False), source_id, 0)
    f.check(0.0)
    f.read(max_line_bytes=65536, budget=1 << 20, now=0.0)
    return f


def test_flush_is_due_every_n_lines_or_t_seconds() -> None:
    pending = Pending()
    assert not flush_due(pending, 100.0, flush_lines=2, flush_s=1.0)  # nothing pending
    pending.add(Chunk(LINE, 0, len(LINE), 0), now=10.0)
    assert not flush_due(pending, 10.5, flush_lines=2, flush_s=1.0)
    assert flush_due(pending, 11.0, flush_lines=2, flush_s=1.0)
    pending.add(Chunk(LINE, len(LINE), 2 * len(LINE), len(LINE)), now=10.1)
    assert flush_due(pending, 10.5, flush_lines=2, flush_s=1.0)


def test_a_flush_stores_the_rows_and_the_offset_together(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 7 + OK_LINE * 5 + LINE[:25])  # 7 conflicts, a line unfinished
    writer = Writer(con)
    committer = Committer(writer, [SourceSpec(str(path))], flush_lines=100, flush_s=NEVER)
    f = _follow(path, writer)
    try:
        assert committer.flush(f, 1.0, force=False) and f.pending  # not due yet: kept
        assert committer.flush(f, 1.0, force=True) and not f.pending
    finally:
        f.close()
    offset, lines, conflicts = con.execute(
        'SELECT "offset", lines, conflicts FROM sources WHERE source_id = ?', [f.source_id]
    ).fetchone()  # type: ignore[misc]
    assert (offset, lines, conflicts) == (len(LINE) * 7 + len(OK_LINE) * 5, 12, 7)
    assert con.execute("SELECT count(*) FROM conflict_events").fetchone() == (7,)
    assert (f.offset, f.totals.lines, f.totals.conflicts) == (offset, 12, 7)


def test_lines_committed_already_are_refused_and_the_store_offset_wins(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    """Two readers of one source (a process that died after committing, then its restart
    from an old offset): the second commit is refused, nothing is stored twice."""
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 6)
    writer = Writer(con)
    committer = Committer(writer, [SourceSpec(str(path))], flush_lines=100, flush_s=NEVER)
    first = _follow(path, writer)
    second = _follow(path, writer, first.source_id)
    try:
        assert committer.flush(first, 0.0, force=True)
        assert not committer.flush(second, 0.0, force=True)
        assert "commit failed" in (second.last_error or "")
        assert committer.stored_offset(second) == len(LINE) * 6
    finally:
        first.close()
        second.close()
    assert con.execute("SELECT count(*) FROM conflict_events").fetchone() == (6,)
