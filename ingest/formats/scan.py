"""The compiled fast path of CLF parsing: a format's tokens as a scanner program.

``compile_program`` turns a compiled format's tokens into the program that ``_scan.c`` runs
over a whole batch of lines at once (one call per chunk, no Python per line). The scanner only
accepts a line when it reads it exactly as the format's regex does; the lines it does not
accept are left to the regex, so the result never depends on whether the extension is built.
Without it (no C compiler at install time) ``available()`` is False and parsing is all regex.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens.ingest.arrow import bool_array, to_series

# Operations of _scan.c, each with the regex shape it stands for.
LITERAL = 1
QUOTED = 2  # [^"\\]*(?:\\.[^"\\]*)* between quotes
DIGITS = 3  # \d+
UNTIL_BYTE = 4  # [^X]* before a literal that starts with X
NONSPACE = 5  # \S*
TIME_ZONE = 6  # \S+ [+-]\d{4}
ADDRESS_LIST = 7  # [^\s,]*(?:, [^\s,]+)*
END_LENIENT = 8  # (?s:\s.*)?$
END_STRICT = 9  # \s*$


@dataclass(frozen=True)
class Program:
    """A scanner program: four int32 per step (operation, a, b, field or -1) and the bytes of
    its literals; ``fields`` names the captured fields in order."""

    steps: np.ndarray
    literals: np.ndarray
    fields: tuple[str, ...]


class ProgramBuilder:
    """Steps appended in token order; see compile_tokens."""

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._literals = bytearray()
        self._fields: list[str] = []

    def literal(self, text: str) -> None:
        data = text.encode()
        self._steps += [LITERAL, len(self._literals), len(data), -1]
        self._literals += data

    def variable(self, operation: int, field: str | None, byte: int = 0) -> None:
        index = -1
        if field is not None:
            index = len(self._fields)
            self._fields.append(field)
        self._steps += [operation, byte, 0, index]

    def end(self, *, lenient: bool) -> Program:
        self._steps += [END_LENIENT if lenient else END_STRICT, 0, 0, -1]
        return Program(
            np.array(self._steps, dtype=np.int32),
            np.frombuffer(bytes(self._literals) or b"\0", dtype=np.uint8).copy(),
            tuple(self._fields),
        )


def _load() -> Any:
    try:
        from conflictlens.ingest.formats import _scan  # type: ignore[attr-defined]
    except ImportError:
        return None
    library = ctypes.CDLL(_scan.__file__)
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    int32 = ctypes.c_int32
    library.scan_views.argtypes = [pointer, size, size, pointer, pointer, size, pointer, int32]
    library.scan_views.argtypes += [pointer, pointer]
    library.scan_views.restype = None
    library.split_requests.argtypes = [pointer, size, size, pointer, pointer, int32, int32]
    library.split_requests.argtypes += [pointer, pointer]
    library.split_requests.restype = None
    library.span_views.argtypes = [pointer, size, size, pointer, int32, pointer, int32]
    library.span_views.argtypes += [pointer, pointer, pointer, pointer, pointer]
    library.span_views.restype = None
    library.split_views.argtypes = [pointer, size, pointer, ctypes.c_uint8, pointer, pointer]
    library.split_views.argtypes += [pointer]
    library.split_views.restype = None
    library.views_with_bytes.argtypes = [pointer, size, pointer, pointer, ctypes.c_int32, pointer]
    library.views_with_bytes.restype = None
    # _json.c (see json_scan.py)
    library.json_scan_views.argtypes = [pointer, size, pointer, ctypes.c_int32, *[pointer] * 6]
    library.json_scan_views.argtypes += [ctypes.c_int32, ctypes.c_int32, pointer, size]
    library.json_scan_views.argtypes += [*[pointer] * 3]
    library.json_scan_views.restype = ctypes.c_int
    library.cut_lines.argtypes = [pointer, size, size, pointer, pointer, pointer]
    library.cut_lines.restype = ctypes.c_int64
    # _times.c (see times.py)
    library.parse_iso_times.argtypes = [pointer, size, pointer, pointer, pointer]
    library.parse_iso_times.restype = None
    library.parse_clf_times.argtypes = [pointer, size, pointer, pointer, pointer]
    library.parse_clf_times.restype = None
    # _routes.c (see ingest/routes.py)
    library.template_paths.argtypes = [pointer, size, pointer, ctypes.c_int32, *[pointer] * 6]
    library.template_paths.argtypes += [size]
    library.template_paths.restype = ctypes.c_int64
    # _otlp.c (see ingest/otlp_decode.py); an extension built before it has none, and OTLP
    # requests are then walked in Python
    if hasattr(library, "otlp_walk"):
        library.otlp_walk.argtypes = [pointer, size, *[pointer] * 12]
        library.otlp_walk.restype = ctypes.c_int
    return library


_LIBRARY = _load()


def available() -> bool:
    """Whether the compiled scanners were built with the package."""
    return _LIBRARY is not None


def library() -> Any:
    """The compiled scanners' functions (only when available())."""
    return _LIBRARY


# The request line split by the scanner: method, target, and whether that is the answer.
REQUEST_PARTS = ("_rq_method", "_rq_target")
REQUEST_SPLIT = "_rq_split"

# Fields that every line's conversion reads (times, paths, services): their values are copied
# side by side out of the lines (see span_views in _scan.c). The others (user agent, referer,
# the raw request line) are read for the few lines that become events, and stay in place.
DENSE_FIELDS = frozenset(
    {"time_clf", "time_iso", "time_nozone", "target", "path", "_rq_target", "service", "host"}
)


# Lines scanned at a time: each block is scanned, its request lines split and its values cut
# out while its lines are still in the core's cache (a 93k-line chunk does not fit).
SCAN_BLOCK_LINES = 4096


def scan(lines: pl.Series, program: Program) -> tuple[dict[str, pl.Series], np.ndarray]:
    """Each captured field of ``lines`` (null where the scanner left the line to the regex),
    and which lines it matched. The fields are string views, into the lines' own buffers or,
    for DENSE_FIELDS, into a buffer of their own.

    With a ``request`` field, also its method and target (REQUEST_PARTS) and REQUEST_SPLIT,
    true where they are what fields.split_request_line would make of it."""
    array = string_views(lines)
    views, data, addresses = view_buffers(array)
    count, width = len(array), len(program.fields)
    spans = np.empty((count, width, 2), dtype=np.int32)
    matched = np.empty(count, dtype=np.uint8)
    fields = _ViewColumns(views, count, data, program.fields)
    request = program.fields.index("request") if "request" in program.fields else -1
    parts = np.empty((count, 2, 2), dtype=np.int32)
    decided = np.empty(count, dtype=np.uint8)
    request_parts = _ViewColumns(views, count, data, REQUEST_PARTS if request >= 0 else ())
    for first in range(0, count, SCAN_BLOCK_LINES):
        last = min(first + SCAN_BLOCK_LINES, count)
        _LIBRARY.scan_views(
            address(views),
            first,
            last,
            address(addresses),
            address(program.steps),
            len(program.steps),
            address(program.literals),
            width,
            address(spans),
            address(matched),
        )
        fields.cut(first, last, addresses, spans)
        if request >= 0:
            _LIBRARY.split_requests(
                address(views),
                first,
                last,
                address(addresses),
                address(spans),
                width,
                request,
                address(parts),
                address(decided),
            )
            request_parts.cut(first, last, addresses, parts)
    columns = dict(zip(program.fields, fields.series(), strict=True))
    if request >= 0:
        columns.update(zip(REQUEST_PARTS, request_parts.series(), strict=True))
        columns[REQUEST_SPLIT] = to_series(bool_array(decided)).alias(REQUEST_SPLIT)
    return columns, matched.view(bool)


class _ViewColumns:
    """String-view columns cut from spans of lines (span_views in _scan.c), a block of lines
    at a time: DENSE_FIELDS copied side by side into a buffer of the block's own, the others
    views into the lines' buffers. Cut at ASCII bytes of valid UTF-8, each value is valid
    again."""

    def __init__(
        self, views: np.ndarray, count: int, data: list[pa.Buffer], names: tuple[str, ...]
    ) -> None:
        self._views, self._data, self._count = views, data, count
        self._dense = np.array([int(name in DENSE_FIELDS) for name in names] or [0], dtype=np.uint8)
        self._dense_columns = np.flatnonzero(self._dense[: len(names)])
        # One exactly sized buffer a block: one of the chunk's size, mostly unused, made
        # glibc's arenas grow by a few MB a chunk (100 MB more at the peak of an import).
        self._copies: list[np.ndarray] = []
        self._out = np.empty((len(names), 16 * count), dtype=np.uint8)
        self._validity = np.zeros((len(names), (count + 7) // 8), dtype=np.uint8)
        self._out_rows = row_addresses(self._out)
        self._validity_rows = row_addresses(self._validity)

    def cut(self, first: int, last: int, addresses: np.ndarray, spans: np.ndarray) -> None:
        """Lines [first, last): their values, from ``spans`` (line, column, start/end)."""
        dense = spans[first:last, self._dense_columns]
        lengths = dense[..., 1] - dense[..., 0]
        room = int(lengths[(dense[..., 0] >= 0) & (lengths > 12)].sum())  # what span_views copies
        copies = np.empty(max(room, 1), dtype=np.uint8)
        used = np.zeros(1, dtype=np.int64)  # named: alive through the call
        if room:
            self._copies.append(copies)
        _LIBRARY.span_views(
            address(self._views),
            first,
            last,
            address(addresses),
            len(self._data) + len(self._copies) - 1,  # the index of this block's buffer
            address(spans),
            spans.shape[1],
            address(self._dense),
            address(copies),
            address(used),
            address(self._out_rows),
            address(self._validity_rows),
        )

    def series(self) -> list[pl.Series]:
        buffers = [*self._data, *(pa.py_buffer(copies) for copies in self._copies)]
        return [
            to_series(
                pa.Array.from_buffers(
                    pa.string_view(),
                    self._count,
                    [pa.py_buffer(self._validity[k]), pa.py_buffer(self._out[k]), *buffers],
                )
            )
            for k in range(len(self._out))
        ]


def row_addresses(table: np.ndarray) -> np.ndarray:
    """The addresses of a 2-d array's rows (a C array of pointers)."""
    return np.array([row.ctypes.data for row in table] or [0], dtype=np.uint64)


def address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


def string_views(texts: pl.Series) -> pa.Array:
    """``texts`` as one Arrow string-view array (nulls as empty strings), without a copy."""
    if texts.null_count():
        texts = texts.fill_null("")
    array = texts.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    return array.cast(pa.string_view()) if array.type != pa.string_view() else array


def view_buffers(array: pa.Array) -> tuple[np.ndarray, list[pa.Buffer], np.ndarray]:
    """A string-view array's views (from its offset on), its data buffers, and their
    addresses (for the compiled functions)."""
    views = np.frombuffer(array.buffers()[1], dtype=np.uint8)[16 * array.offset :]
    data = array.buffers()[2:]
    addresses = np.array([b.address for b in data] or [0], dtype=np.uint64)
    return views, data, addresses


def split_once(texts: pl.Series, separator: str) -> tuple[pl.Series, pl.Series]:
    """Each text cut at its first ``separator`` (one ASCII character), as ``str.splitn(sep,
    2)`` cuts it: the part before (the whole text without one; null for null) and the part
    after (null without one). Zero-copy views where the compiled helpers are built."""
    if not available():
        parts = texts.str.splitn(separator, 2).struct
        return parts.field("field_0"), parts.field("field_1")
    array = string_views(texts)
    views, data, addresses = view_buffers(array)
    count = len(array)
    before = np.empty(16 * count, dtype=np.uint8)
    after = np.empty(16 * count, dtype=np.uint8)
    after_valid = np.empty((count + 7) // 8, dtype=np.uint8)
    _LIBRARY.split_views(
        address(views),
        count,
        address(addresses),
        ord(separator),
        address(before),
        address(after),
        address(after_valid),
    )
    nulls = texts.is_null()
    first = to_series(
        pa.Array.from_buffers(pa.string_view(), count, [None, pa.py_buffer(before), *data])
    )
    second = to_series(
        pa.Array.from_buffers(
            pa.string_view(), count, [pa.py_buffer(after_valid), pa.py_buffer(after), *data]
        )
    )
    if nulls.any():
        first = first.set(nulls, None)
    return first, second


def byte_set(chars: bytes, *, non_ascii: bool = False) -> np.ndarray:
    """A table for with_bytes: the bytes of ``chars``, and with ``non_ascii`` every byte of a
    character beyond ASCII."""
    table = np.zeros(256, dtype=np.uint8)
    table[list(chars)] = 1
    if non_ascii:
        table[0x80:] = 1
    return table


def with_bytes(texts: pl.Series, table: np.ndarray) -> np.ndarray:
    """Which texts hold a byte of ``table`` (see byte_set); false for null."""
    if not available():
        pattern = "".join(f"\\x{b:02x}" for b in np.flatnonzero(table[:0x80]))
        if table[0x80]:
            pattern += "\\x{80}-\\x{10FFFF}"
        if not pattern:
            return np.zeros(len(texts), dtype=bool)
        return texts.str.contains(f"[{pattern}]").fill_null(False).to_numpy()
    array = string_views(texts)
    views, _, addresses = view_buffers(array)
    found = np.empty(len(array), dtype=np.uint8)
    wanted = np.flatnonzero(table)
    single = int(wanted[0]) if len(wanted) == 1 else -1
    _LIBRARY.views_with_bytes(
        address(views), len(array), address(addresses), address(table), single, address(found)
    )
    return found.view(bool)
