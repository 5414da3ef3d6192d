"""The store: migrations on open, read-only opens, and the exactly-once write funnel."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conflictlens.ingest import IngestOptions
from conflictlens.ingest.batch import parse_chunk
from conflictlens.ingest.formats import get_format
from conflictlens.ingest.lines import Chunk
from conflictlens.store import SCHEMA_VERSION, Batch, StoreError, Writer, connect
from conflictlens.store.schema import current_version
from tests.helpers import clf_line, query, store_counts

TABLES = {"schema_version", "sources", "conflict_events", "request_rollups", "rejects"}


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def versions(db: Path) -> list[int]:
    return [row[0] for row in query(db, "SELECT version FROM schema_version ORDER BY version")]


def test_schema_version_is_positive():
    assert isinstance(SCHEMA_VERSION, int) and SCHEMA_VERSION >= 1


def test_writable_open_creates_and_migrates(db_path):
    assert not db_path.exists()
    with closing(connect(db_path)) as con:
        assert tables(con) >= TABLES
        assert current_version(con) == SCHEMA_VERSION
    assert db_path.exists()
    assert versions(db_path) == list(range(1, SCHEMA_VERSION + 1))


def test_reopening_is_idempotent(db_path):
    with closing(connect(db_path)) as con:
        con.execute(
            "INSERT INTO rejects VALUES (1, 0, 'kept', 'x'::BLOB, TIMESTAMP '2026-11-20 00:00:00')"
        )
    for _ in range(3):
        with closing(connect(db_path)) as con:
            assert current_version(con) == SCHEMA_VERSION
    assert versions(db_path) == list(range(1, SCHEMA_VERSION + 1))
    assert query(db_path, "SELECT reason FROM rejects") == [("kept",)]


def test_read_only_open_of_a_missing_file_is_an_error(tmp_path):
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(StoreError, match="no database at"):
        connect(missing, read_only=True)
    assert not missing.exists()


def test_read_only_open_of_an_unmigrated_file_is_an_error(db_path):
    duckdb.connect(str(db_path)).close()  # an empty DuckDB file, never opened by conflictlens
    with pytest.raises(StoreError, match="schema version 0"):
        connect(db_path, read_only=True)
    with closing(connect(db_path)) as con:  # a writable open migrates it
        assert current_version(con) == SCHEMA_VERSION
    with closing(connect(db_path, read_only=True)) as con:
        assert tables(con) >= TABLES


def test_read_only_open_refuses_writes(db_path):
    connect(db_path).close()
    with closing(connect(db_path, read_only=True)) as con, pytest.raises(duckdb.Error):
        con.execute("DELETE FROM sources")


def test_writable_open_in_a_missing_folder(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        connect(tmp_path / "no" / "such" / "t.duckdb")


def test_a_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(b"this is not a duckdb file\n" * 200)
    with pytest.raises(StoreError, match="cannot open database"):
        connect(bogus)


def test_connections_store_times_in_utc(db_path):
    with closing(connect(db_path)) as con:
        assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


@pytest.mark.parametrize("batch_import", [False, True])
def test_a_batch_import_checkpoints_every_few_megabytes(db_path, batch_import):
    # so that the last checkpoint, which runs alone after the parsing, stays small
    from conflictlens.store import prepare_batch_import

    wal = db_path.with_name(db_path.name + ".wal")
    with closing(connect(db_path)) as con:
        if batch_import:
            prepare_batch_import(con)
        con.execute("CREATE TABLE filler (s VARCHAR)")
        sizes = []
        for _ in range(4):  # 2 MB of WAL each
            con.execute(
                "INSERT INTO filler SELECT md5(i::VARCHAR) || md5((i * 7)::VARCHAR) FROM range(30000) r(i)"
            )
            sizes.append(wal.stat().st_size if wal.exists() else 0)
    assert sizes[2] > 5_000_000
    assert (
        sizes[3] < 1_000_000
    ) == batch_import  # checkpointed past 6 MB; DuckDB's default waits for 16


def test_store_from_a_newer_version_is_a_store_error(db_path):
    with closing(connect(db_path)) as con:
        con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match="newer"):
        connect(db_path)


# --- Writer: the exactly-once funnel -------------------------------------------------------------


DATA = b"".join(
    line + b"\n"
    for line in (
        clf_line("/api/v1/users/1"),
        clf_line("/api/v1/users/2", status=200),
        b"not a log line",
        clf_line("/api/v1/users/3", status=412),
    )
)


def parsed(source_id: int, start: int = 0, data: bytes = DATA) -> Batch:
    chunk = Chunk(data, start, start + len(data), start)
    return parse_chunk(chunk, get_format("nginx-combined"), IngestOptions(), source_id)


def batch_of(chunk: Batch, source_id: int, **changes) -> Batch:
    return dataclasses.replace(chunk, source_id=source_id, **changes)


@pytest.fixture
def writer(db_path):
    con = connect(db_path)
    yield Writer(con)
    con.close()


def new_source(writer: Writer, prefix: bytes = DATA) -> int:
    record = writer.resolve_source(
        device=1, inode=42, prefix=prefix, path="access.log", full_prefix_len=1024
    )
    assert (record.offset, record.lines) == (0, 0)
    return record.source_id


def table_counts(writer: Writer) -> tuple[int, int, int]:
    one = lambda sql: writer.con.execute(sql).fetchall()[0][0]  # noqa: E731
    return (
        one("SELECT count(*) FROM conflict_events"),
        one("SELECT count(*) FROM request_rollups"),
        one("SELECT count(*) FROM rejects"),
    )


def source_row(writer: Writer, source_id: int) -> tuple:
    return writer.con.execute(
        'SELECT "offset", lines, rejects, conflicts FROM sources WHERE source_id = ?', [source_id]
    ).fetchall()[0]


def test_parsed_chunk_is_what_the_batch_tests_expect():
    chunk = parsed(1)
    assert (chunk.lines, chunk.events.height, chunk.rejects.height) == (4, 2, 1)
    assert chunk.rollups["requests"].sum() == 3


def test_commit_stores_rows_and_moves_the_offset(writer):
    source_id = new_source(writer)
    writer.commit(batch_of(parsed(source_id), source_id))
    assert table_counts(writer)[0] == 2 and table_counts(writer)[2] == 1
    assert writer.con.execute("SELECT sum(requests) FROM request_rollups").fetchall() == [(3,)]
    assert source_row(writer, source_id) == (len(DATA), 4, 1, 2)


def test_batch_not_starting_at_the_source_offset_is_refused_and_leaves_no_rows(writer):
    source_id = new_source(writer)
    chunk = parsed(source_id)
    with pytest.raises(RuntimeError, match="no longer at offset"):
        writer.commit(batch_of(chunk, source_id, start=100, end=100 + len(DATA)))
    assert table_counts(writer) == (0, 0, 0)
    assert source_row(writer, source_id) == (0, 0, 0, 0)
    # the connection is still usable, and the right batch commits
    writer.commit(batch_of(chunk, source_id))
    assert source_row(writer, source_id) == (len(DATA), 4, 1, 2)


def test_the_same_batch_twice_is_stored_once(writer):
    source_id = new_source(writer)
    batch = batch_of(parsed(source_id), source_id)
    writer.commit(batch)
    before = table_counts(writer)
    with pytest.raises(RuntimeError, match="another writer imported it meanwhile"):
        writer.commit(batch)  # e.g. a retry after a crash that happened just after COMMIT
    assert table_counts(writer) == before == (2, len(parsed(source_id).rollups), 1)
    assert source_row(writer, source_id) == (len(DATA), 4, 1, 2)


def test_batches_in_sequence(writer):
    source_id = new_source(writer)
    first = parsed(source_id, 0)
    second = parsed(source_id, len(DATA))
    writer.commit(batch_of(first, source_id))
    writer.commit(batch_of(second, source_id))
    assert source_row(writer, source_id) == (2 * len(DATA), 8, 2, 4)
    offsets = [
        r[0] for r in writer.con.execute('SELECT "offset" FROM rejects ORDER BY 1').fetchall()
    ]
    bad = DATA.index(b"not a log line")
    assert offsets == [bad, len(DATA) + bad]


def test_a_failing_insert_rolls_back_the_whole_batch(writer):
    source_id = new_source(writer)
    chunk = parsed(source_id)
    broken = chunk.rejects.with_columns(reason=pl.lit(None, pl.String))  # reason is NOT NULL
    with pytest.raises(duckdb.Error):
        writer.commit(batch_of(chunk, source_id, rejects=broken))
    assert table_counts(writer) == (0, 0, 0)  # the events inserted before the failure are gone
    assert source_row(writer, source_id) == (0, 0, 0, 0)
    writer.commit(batch_of(chunk, source_id))
    assert source_row(writer, source_id) == (len(DATA), 4, 1, 2)


def test_commit_for_another_source_does_not_move_this_one(writer):
    first = new_source(writer)
    second = writer.resolve_source(
        device=1, inode=43, prefix=b"other content" * 100, path="other.log", full_prefix_len=1024
    ).source_id
    assert second != first
    writer.commit(batch_of(parsed(second), second))
    assert source_row(writer, first) == (0, 0, 0, 0)
    assert source_row(writer, second) == (len(DATA), 4, 1, 2)


def test_resolve_source_follows_a_renamed_file_and_a_grown_prefix(writer):
    source_id = new_source(writer, prefix=DATA[:100])
    writer.commit(batch_of(parsed(source_id), source_id))
    record = writer.resolve_source(
        device=1, inode=42, prefix=DATA, path="access.log.1", full_prefix_len=1024
    )
    assert (record.source_id, record.offset, record.lines, record.path) == (
        source_id,
        len(DATA),
        4,
        "access.log.1",
    )
    rows = writer.con.execute("SELECT path, fingerprint_len FROM sources").fetchall()
    assert rows == [("access.log.1", len(DATA))]


def test_resolve_source_same_inode_different_content_is_a_new_source(writer):
    source_id = new_source(writer)
    other = writer.resolve_source(
        device=1, inode=42, prefix=b"x" * 2000, path="access.log", full_prefix_len=1024
    )
    assert other.source_id != source_id and other.offset == 0


def test_import_counts_match_store_counts(db_path, tmp_path):
    """The summary an import returns is what the store holds."""
    from conflictlens.ingest import import_source

    log = tmp_path / "a.log"
    log.write_bytes(DATA * 3)
    with closing(connect(db_path)) as con:
        summary = import_source(str(log), Writer(con), IngestOptions())
    counts = store_counts(db_path)
    assert (summary.lines, summary.rejected, summary.conflicts) == (12, 3, 6)
    assert (counts["events"], counts["rejects"], counts["requests"]) == (6, 3, 9)
    assert counts["sources"] == [(1, 3 * len(DATA), 12)]
