"""The follower's file units on real files: opening and identity (ingest.tail.handle), the
glob scan (ingest.tail.scan) and rotation detection (ingest.tail.rotation)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from conflictlens.ingest.identity import FINGERPRINT_BYTES
from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.handle import NotRegularFile, current_name, last_line_end, open_file
from conflictlens.ingest.tail.reader import LineReader
from conflictlens.ingest.tail.rotation import Change, look, track_names
from conflictlens.ingest.tail.scan import scan_globs
from tests.helpers import clf_line

LINE = clf_line() + b"\n"


# -- handle: identity from the open handle ------------------------------------------------


def test_a_plain_file_is_known_by_device_inode_and_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    data = LINE * 20  # more than a fingerprint
    path.write_bytes(data)
    opened = open_file(str(path))
    try:
        st = os.stat(path)
        assert opened.key == (st.st_dev, st.st_ino)
        assert not opened.gz
        assert opened.prefix == data[:FINGERPRINT_BYTES]
    finally:
        opened.close()


def test_a_compressed_file_is_fingerprinted_by_its_uncompressed_content(tmp_path: Path) -> None:
    path = tmp_path / "a.log.1.gz"
    data = LINE * 20
    path.write_bytes(gzip.compress(data))
    opened = open_file(str(path))
    try:
        assert opened.gz
        assert opened.prefix == data[:FINGERPRINT_BYTES]
    finally:
        opened.close()


def test_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)  # opening it blocking would hang this test: no writer ever comes
    with pytest.raises(NotRegularFile, match="a FIFO"):
        open_file(str(fifo))
    (tmp_path / "dir.log").mkdir()
    with pytest.raises(NotRegularFile, match="a directory"):
        open_file(str(tmp_path / "dir.log"))


def test_the_current_name_of_an_open_file_follows_renames_and_deletion(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE)
    opened = open_file(str(path))
    try:
        assert current_name(opened) == str(path)
        path.rename(tmp_path / "a.log.1")
        assert current_name(opened) == str(tmp_path / "a.log.1")
        (tmp_path / "a.log.1").unlink()
        assert current_name(opened) is None
    finally:
        opened.close()


def test_last_line_end_is_after_the_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 3 + b"half a li")
    opened = open_file(str(path))
    try:
        assert last_line_end(opened.raw, path.stat().st_size) == len(LINE) * 3
    finally:
        opened.close()


# -- scan: the globs, by identity ----------------------------------------------------------


def test_the_scan_finds_regular_files_once_each_and_reports_the_rest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.log").write_bytes(LINE)
    os.link(tmp_path / "a.log", tmp_path / "b.log")  # the same file under two names
    (tmp_path / "sub" / "c.log").write_bytes(LINE)
    (tmp_path / "store.log").write_bytes(LINE)  # the store's own file: never a log
    os.mkfifo(tmp_path / "pipe.log")
    scan = scan_globs([f"{tmp_path}/**/*.log"], {str(tmp_path / "store.log")})
    assert sorted(scan.paths().values()) == [
        str(tmp_path / "a.log"),
        str(tmp_path / "sub" / "c.log"),
    ]
    assert scan.problems == {str(tmp_path / "pipe.log"): (0, "a FIFO, not a log file: skipped")}


# -- rotation: what happened to an open file -----------------------------------------------


def _look(path: Path, *, size: int | None, read_offset: int, prefix: bytes) -> Change:
    fd = os.open(path, os.O_RDONLY)
    try:
        return look(fd, size=size, read_offset=read_offset, continues_line=False, prefix=prefix)
    finally:
        os.close(fd)


def test_look_tells_growth_from_truncation_and_rewriting(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE * 4)
    read = len(LINE) * 4
    prefix = (LINE * 4)[:FINGERPRINT_BYTES]
    same = _look(path, size=read, read_offset=read, prefix=prefix)
    assert (same.grew, same.truncated) == (False, None)

    path.write_bytes(LINE * 5)
    grown = _look(path, size=read, read_offset=read, prefix=prefix)
    assert grown.grew and grown.truncated is None and grown.size == len(LINE) * 5

    path.write_bytes(LINE)  # copytruncate, then one line written again
    assert "truncated from" in _look(path, size=read, read_offset=read, prefix=prefix).truncated

    other = clf_line("/other") + b"\n"
    path.write_bytes(other * 5)  # longer than read, but other first bytes
    assert (
        "first bytes changed" in _look(path, size=read, read_offset=read, prefix=prefix).truncated
    )

    # Same first bytes, longer, but no line ends where the last read one did.
    path.write_bytes(LINE[:-1] + b"x" + LINE * 5)
    assert (
        "past the offset read"
        in _look(path, size=len(LINE), read_offset=len(LINE), prefix=LINE[:10]).truncated
    )


def test_look_grows_a_short_fingerprint_and_sees_deletion(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINE)
    fd = os.open(path, os.O_RDONLY)
    try:
        with path.open("ab") as handle:
            handle.write(LINE * 20)
        change = look(fd, size=len(LINE), read_offset=len(LINE), continues_line=False, prefix=LINE)
        assert change.prefix == (LINE * 21)[:FINGERPRINT_BYTES]
        path.unlink()
        assert look(
            fd, size=change.size, read_offset=len(LINE), continues_line=False, prefix=LINE
        ).deleted
    finally:
        os.close(fd)


def _followed(path: Path) -> FollowedFile:
    opened = open_file(str(path))
    return FollowedFile(str(path), 0, LineReader(opened, 0, continues_line=False), 1, 0)


def test_track_names_follows_a_rename_and_detaches_what_left_the_glob(tmp_path: Path) -> None:
    renamed, rotated = tmp_path / "a.log", tmp_path / "b.log"
    renamed.write_bytes(LINE)
    rotated.write_bytes(LINE * 2)
    a, b = _followed(renamed), _followed(rotated)
    try:
        renamed.rename(tmp_path / "a2.log")  # still matching the glob
        rotated.rename(tmp_path / "b.log.1")  # no longer matching
        scan = scan_globs([f"{tmp_path}/*.log"], set())
        rebound: list[str] = []
        track_names([a, b], scan.paths(), 5.0, lambda f: rebound.append(f.path))
        assert (a.path, a.attached) == (str(tmp_path / "a2.log"), True)
        assert (b.path, b.attached, b.detached_at) == (str(tmp_path / "b.log.1"), False, 5.0)
        assert rebound == [str(tmp_path / "a2.log"), str(tmp_path / "b.log.1")]
        assert "no longer matching" in (b.last_event or "")
    finally:
        a.close()
        b.close()
