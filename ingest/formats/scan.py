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

from ingest.arrow import to_series

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
        from ingest.formats import _scan  # type: ignore[attr-defined]
    except ImportError:
        return None
    library = ctypes.CDLL(_scan.__file__)
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    library.scan_lines.argtypes = [pointer, pointer, size, pointer, size, pointer]
    library.scan_lines.argtypes += [ctypes.c_int32, pointer, pointer]
    library.scan_lines.restype = None
    library.gather_field.argtypes = [pointer, pointer, size, pointer, ctypes.c_int32]
    library.gather_field.argtypes += [ctypes.c_int32, pointer, pointer, pointer]
    library.gather_field.restype = None
    # _json.c (see json_scan.py)
    library.json_scan_views.argtypes = [pointer, size, pointer, ctypes.c_int32, *[pointer] * 5]
    library.json_scan_views.argtypes += [ctypes.c_int32, *[pointer] * 4]
    library.json_scan_views.restype = ctypes.c_int
    library.json_view_columns.argtypes = [*[pointer] * 3, size, ctypes.c_int32, pointer, pointer]
    library.json_view_columns.restype = None
    library.find_newlines.argtypes = [pointer, size, pointer]
    library.find_newlines.restype = ctypes.c_int64
    # _times.c (see times.py)
    library.parse_iso_times.argtypes = [pointer, size, pointer, pointer, pointer]
    library.parse_iso_times.restype = None
    # _routes.c (see ingest/routes.py)
    library.template_paths.argtypes = [pointer, size, pointer, ctypes.c_int32, *[pointer] * 6]
    library.template_paths.argtypes += [size]
    library.template_paths.restype = ctypes.c_int64
    return library


_LIBRARY = _load()


def available() -> bool:
    """Whether the compiled scanners were built with the package."""
    return _LIBRARY is not None


def library() -> Any:
    """The compiled scanners' functions (only when available())."""
    return _LIBRARY


def scan(lines: pl.Series, program: Program) -> tuple[dict[str, pl.Series], np.ndarray]:
    """Each captured field of ``lines`` (null where the scanner left the line to the regex),
    and which lines it matched."""
    data, bounds = bytes_of(lines)
    count, width = len(bounds) - 1, len(program.fields)
    spans = np.zeros((count, width, 2), dtype=np.int32)
    matched = np.zeros(count, dtype=np.uint8)
    _LIBRARY.scan_lines(
        address(data),
        address(bounds),
        count,
        address(program.steps),
        len(program.steps),
        address(program.literals),
        width,
        address(spans),
        address(matched),
    )
    ok = matched.view(bool)
    validity = pa.py_buffer(np.packbits(ok, bitorder="little"))
    columns = {}
    for index, name in enumerate(program.fields):
        sizes = spans[:, index, 1] - spans[:, index, 0]
        out = np.empty(int(sizes[ok].sum()), dtype=np.uint8)
        offsets = np.empty(count + 1, dtype=np.int64)
        _LIBRARY.gather_field(
            address(data),
            address(bounds),
            count,
            address(spans),
            width,
            index,
            address(matched),
            address(offsets),
            address(out),
        )
        # Cut at ASCII bytes of valid UTF-8: each value is valid UTF-8 again.
        array = pa.LargeStringArray.from_buffers(
            count, pa.py_buffer(offsets), pa.py_buffer(out), validity
        )
        columns[name] = to_series(array).alias(name)
    return columns, ok


def bytes_of(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string column (nulls as empty strings), and where each value
    starts (plus the end of the last)."""
    array = texts.fill_null("").rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    bounds = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2] or b"\0", dtype=np.uint8)
    return data, np.ascontiguousarray(bounds)


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
