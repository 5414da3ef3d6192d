"""Line framing: bytes in bounded chunks → Arrow arrays of complete lines with their offsets.

Pure functions over bytes; no parsing and no I/O beyond the stream handed in. A chunk always
ends on a line boundary, so a line is never split between two batches. A line longer than
``max_line_bytes`` never enters memory whole: it is skipped to its newline and reported.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens.ingest.arrow import int64_array, to_series
from conflictlens.ingest.envelopes import unwrap
from conflictlens.ingest.formats import scan

REJECT_SAMPLE_BYTES = 512
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 64 * 1024

ChunkData = bytes | memoryview  # a view of the read buffer, or bytes of its own


@dataclass(frozen=True)
class OverlongLine:
    offset: int
    length: int
    sample: bytes


@dataclass
class Chunk:
    """Lines accounting for the source bytes [start, end).

    ``data`` holds complete lines beginning at byte ``data_start``; any lines skipped as too
    long lie between ``start`` and ``data_start`` and are listed in ``overlong``. Consecutive
    chunks are contiguous: one's ``end`` is the next one's ``start``.
    """

    data: ChunkData  # bytes, or a view of the read buffer
    start: int
    end: int
    data_start: int
    overlong: list[OverlongLine] = field(default_factory=list)


def read_chunks(
    stream: BinaryIO,
    start: int = 0,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    eof_ends_line: bool = True,
    continues_line: bool = False,
    size: int | None = None,
    split_tail: int = 1,
) -> Iterator[Chunk]:
    """Yield chunks of whole lines read from ``stream``, whose first byte is at ``start``.

    With ``eof_ends_line`` a last line without a newline is yielded at end of input (batch
    import of a finished file); without it, it is left unread for a later call (tailing).
    ``continues_line`` says the bytes before ``start`` ended without a newline (an earlier
    import took end of file as end of line): a newline right at ``start`` only completes that
    line and is not an empty line of its own.

    With the input's ``size`` known, the last ``split_tail`` chunks' worth of it is read in
    that many equal parts: workers parsing chunks side by side then finish together, instead
    of one parsing the whole last chunk alone.
    """
    accounted = start  # the next chunk starts here
    pos = start  # offset of pending[0]: everything before it is accounted or overlong
    pending = b""  # an incomplete line
    skipping: OverlongLine | None = None  # an overlong line being skipped to its newline
    overlong: list[OverlongLine] = []  # complete overlong lines not yet yielded
    first = continues_line
    buffers = ReadBuffers()
    base_chunk = chunk_bytes
    while True:
        # The new bytes are read in after the pending partial line, and a chunk is a view of
        # this buffer: its lines are never copied on their way to the parser.
        if size is not None and split_tail > 1 and chunk_bytes == base_chunk:
            left = size - pos - len(pending)
            if 0 < left < chunk_bytes * split_tail:  # the tail: from here on, equal parts
                chunk_bytes = max(-(-left // split_tail), 1 << 16)
        buf, got = _read_after(stream, pending, chunk_bytes, buffers)
        if not got:
            break
        lo, hi = 0, len(buf)  # buf[lo:hi] is pending + the new bytes
        if first:
            first = False
            if buf[0] == NEWLINE:
                lo += 1
                pos += 1
        if skipping is not None:  # pending is empty while skipping
            newline = _find_newline(buf, lo, hi)
            if newline < 0:
                skipping = OverlongLine(skipping.offset, skipping.length + hi - lo, skipping.sample)
                continue
            done = OverlongLine(
                skipping.offset, skipping.length + newline - lo + 1, skipping.sample
            )
            overlong.append(done)
            skipping = None
            pos = done.offset + done.length
            lo = newline + 1
        cut = _rfind_newline(buf, lo, hi)
        if cut < 0:
            buffer = buf[lo:hi].tobytes()
            if len(buffer) > max_line_bytes:
                skipping = OverlongLine(pos, len(buffer), buffer[:REJECT_SAMPLE_BYTES])
                buffer = b""
            pending = buffer
            if overlong:
                yield Chunk(b"", accounted, pos, pos, overlong)
                accounted, overlong = pos, []
            continue
        if eof_ends_line and size is not None and pos + hi - lo == size:
            # The whole rest of the file is read: its last line, without a newline, ends this
            # chunk instead of coming alone after it (format detection sees it with the rest).
            cut = hi - 1
        end = pos + cut + 1 - lo
        yield Chunk(buf[lo : cut + 1].data, accounted, end, pos, overlong)
        accounted, pos, overlong = end, end, []
        pending = buf[cut + 1 : hi].tobytes()
    if skipping is not None and eof_ends_line:
        overlong.append(skipping)
        pos = skipping.offset + skipping.length
    if eof_ends_line and pending:
        yield Chunk(pending, accounted, pos + len(pending), pos, overlong)
    elif overlong or pos > accounted:
        yield Chunk(b"", accounted, pos, pos, overlong)


def _references_to_a_free_buffer() -> int:
    """What getrefcount says of a buffer only the pool holds, in ReadBuffers.take's own loop
    (measured, not assumed: interpreters differ in the references they count)."""
    pool = [np.empty(1, dtype=np.uint8)]
    for buffer in pool:
        return sys.getrefcount(buffer)
    raise AssertionError("unreachable")


_FREE_REFERENCES = _references_to_a_free_buffer()


class ReadBuffers:
    """Read buffers, each handed out again once nothing refers to it any more.

    A fresh buffer of tens of MB costs the kernel a page fault and a zero-fill per 4 KiB as it
    is first written (glibc maps every allocation above 32 MB anew): a few percent of an
    import. A buffer is free when only this pool refers to it: every chunk, view, Arrow buffer
    or Polars column made from its bytes holds a reference to it (which is what keeps its
    memory alive at all), so its reference count tells whether any of them is left.
    """

    KEEP = 8  # more than can be in flight: the workers' chunks, one read ahead, one pending

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []

    def take(self, size: int) -> np.ndarray:
        """A buffer of at least ``size`` bytes that nothing else refers to."""
        for buffer in self._buffers:
            # referred to by the pool, this loop and getrefcount's call only: nothing else
            if len(buffer) >= size and sys.getrefcount(buffer) <= _FREE_REFERENCES:
                return buffer
        # A little more than asked: the line carried over from the last read varies.
        buffer = np.empty(size + (size >> 4), dtype=np.uint8)
        if len(self._buffers) < self.KEEP:
            self._buffers.append(buffer)
        return buffer


def _read_after(
    stream: BinaryIO, pending: bytes, size: int, buffers: ReadBuffers
) -> tuple[np.ndarray, int]:
    """``pending`` followed by up to ``size`` bytes read from ``stream``, in one buffer nothing
    else uses, and how many bytes were read (0 at end of input).

    The buffer is a numpy array: unlike ``bytearray(n)`` it is not zero-filled first, which
    made reading cost four times as much.
    """
    start = len(pending)
    buf = buffers.take(start + size)
    buf[:start] = np.frombuffer(pending, dtype=np.uint8)
    got = cast(io.RawIOBase, stream).readinto(buf[start : start + size].data) or 0
    return buf[: start + got], got


NEWLINE = 10
SEARCH_WINDOW = 1 << 16  # lines are searched a window at a time: most are far shorter


def _find_newline(buf: np.ndarray, lo: int, hi: int) -> int:
    """Index of the first newline in ``buf[lo:hi]``, or -1."""
    for start in range(lo, hi, SEARCH_WINDOW):
        found = np.flatnonzero(buf[start : min(hi, start + SEARCH_WINDOW)] == NEWLINE)
        if len(found):
            return start + int(found[0])
    return -1


def _rfind_newline(buf: np.ndarray, lo: int, hi: int) -> int:
    """Index of the last newline in ``buf[lo:hi]``, or -1."""
    for end in range(hi, lo, -SEARCH_WINDOW):
        start = max(lo, end - SEARCH_WINDOW)
        found = np.flatnonzero(buf[start:end] == NEWLINE)
        if len(found):
            return start + int(found[-1])
    return -1


def newline_count(data: ChunkData) -> int:
    """How many newlines ``data`` holds."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


@dataclass(frozen=True)
class SplitLines:
    """The lines of a chunk: decodable text lines and the ones that are not valid UTF-8."""

    lines: pl.DataFrame  # columns: line (str, with its line ending), offset (i64)
    invalid_offsets: np.ndarray  # source offsets of lines that are not valid UTF-8
    invalid_samples: list[bytes]


def split_lines(chunk: Chunk) -> SplitLines:
    """Cut a chunk into lines without copying them one by one (numpy + Arrow buffers)."""
    data = chunk.data
    if not data:
        empty = pl.DataFrame(schema={"line": pl.String, "offset": pl.Int64})
        return SplitLines(empty, np.empty(0, dtype=np.int64), [])
    raw = np.frombuffer(data, dtype=np.uint8)
    cut = _cut_lines if scan.available() else _cut_lines_with_polars
    text, offsets, invalid, samples = cut(raw, data)
    # Lines keep their "\n" (formats tolerate trailing white space): stripping it would copy
    # every line once more.
    offsets += chunk.data_start
    frame = pl.DataFrame({"line": text, "offset": to_series(int64_array(offsets))})
    return SplitLines(unwrap(frame), invalid + chunk.data_start, samples)


Cut = tuple[pl.Series, np.ndarray, np.ndarray, list[bytes]]  # lines, their starts, and the
# starts and first bytes of those that are not UTF-8 (left out of the lines)


def _cut_lines(raw: np.ndarray, data: ChunkData) -> Cut:
    """The compiled cut (cut_lines in _scan.c): one pass finds the lines, checks they are
    UTF-8 and writes them as string views into the chunk."""
    cut = scan.library().cut_lines
    capacity = len(raw) // GUESSED_LINE_BYTES + 1
    while True:
        starts = np.empty(capacity, dtype=np.int64)
        views = np.empty((capacity, 16), dtype=np.uint8)
        valid = np.empty(capacity, dtype=np.uint8)
        count = cut(
            raw.ctypes.data, len(raw), capacity, *(a.ctypes.data for a in (starts, views, valid))
        )
        if count <= capacity:
            break
        capacity = count  # lines shorter than guessed: once more, with room for them all
    starts, views, good = starts[:count], views[:count], valid[:count].view(bool)
    invalid, samples = np.empty(0, dtype=np.int64), []
    if not good.all():
        bad = np.flatnonzero(~good)
        ends = np.append(starts[1:], len(raw))
        samples = [
            bytes(data[starts[i] : ends[i]]).rstrip(b"\r\n")[:REJECT_SAMPLE_BYTES] for i in bad
        ]
        invalid, starts, views = starts[bad], starts[good], views[good]
    lines = pa.Array.from_buffers(
        pa.string_view(), len(starts), [None, pa.py_buffer(views), pa.py_buffer(data)]
    )
    return to_series(lines), starts, invalid, samples


def _cut_lines_with_polars(raw: np.ndarray, data: ChunkData) -> Cut:
    """The cut without the compiled helpers: newlines by numpy, UTF-8 checked by Polars."""
    bounds = _line_bounds(raw)
    count = len(bounds) - 1
    binary = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), count, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
    )
    offsets = bounds[:-1].copy()
    invalid, samples = np.empty(0, dtype=np.int64), []
    try:
        # The cast checks that every line is UTF-8: for the usual valid chunk no scan of
        # our own is needed.
        text = to_series(binary).cast(pl.String)
    except pl.exceptions.ComputeError:  # some line is not UTF-8: find which, drop them
        invalid = _invalid_utf8_rows(raw, bounds, data)
        samples = [
            bytes(data[bounds[i] : bounds[i + 1]]).rstrip(b"\r\n")[:REJECT_SAMPLE_BYTES]
            for i in invalid
        ]
        keep = np.ones(count, dtype=bool)
        keep[invalid] = False
        text = to_series(binary).filter(pl.Series(keep)).cast(pl.String)
        offsets, invalid = offsets[keep], offsets[invalid]
    return text, offsets, invalid, samples


def _invalid_utf8_rows(raw: np.ndarray, bounds: np.ndarray, data: ChunkData) -> np.ndarray:
    """Rows holding bytes that are not valid UTF-8: of the lines with a byte >= 0x80, those
    that do not decode (only for the rare chunk that has one)."""
    high = np.flatnonzero(raw >= 0x80)
    rows = np.unique(np.searchsorted(bounds, high, side="right") - 1)
    bad = []
    for row in rows:
        try:
            bytes(data[bounds[row] : bounds[row + 1]]).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(row)
    return np.asarray(bad, dtype=np.int64)


NEWLINE_SCAN_BLOCK = 1 << 20
# Room for the lines of a chunk whose lines are this long on average, cut in one pass; shorter
# lines (rare in access logs) cost a second pass.
GUESSED_LINE_BYTES = 64


def _line_bounds(raw: np.ndarray) -> np.ndarray:
    """Where each line of ``raw`` starts, then where the last one ends: 0, one past each
    newline, and the end of ``raw`` when it does not end with a newline."""
    newlines = _newlines(raw)
    ends_with_newline = len(newlines) > 0 and newlines[-1] == len(raw) - 1
    bounds = np.empty(len(newlines) + (1 if ends_with_newline else 2), dtype=np.int64)
    bounds[0] = 0
    np.add(newlines, 1, out=bounds[1 : len(newlines) + 1])
    if not ends_with_newline:
        bounds[-1] = len(raw)
    return bounds


def _newlines(raw: np.ndarray) -> np.ndarray:
    """Positions of the newlines in ``raw``, by numpy a block at a time (the comparison's
    temporary then stays in cache)."""
    found = [
        np.flatnonzero(raw[start : start + NEWLINE_SCAN_BLOCK] == 10) + start
        for start in range(0, len(raw), NEWLINE_SCAN_BLOCK)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)
