"""Arrow arrays built from numpy buffers, and handed to Polars, without the slow imports.

Two conveniences cost a second of start-up, more than importing a 2-million-line log takes at
full speed: ``pl.Series(<pyarrow array>)`` imports ``pyarrow.compute`` (about 0.5 s), and
``pa.array(<numpy array>)`` asks pyarrow's pandas shim about it, which imports pandas (about
1 s). Going through the Arrow C data interface and ``from_buffers`` avoids both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa


class _CArray:
    """A pyarrow array seen only through the Arrow C data interface."""

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self._array.__arrow_c_array__(requested_schema)


class _CStream:
    """A pyarrow table seen only through the Arrow C stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


def to_series(array: pa.Array) -> pl.Series:
    """A Polars Series of a pyarrow array (zero-copy where Polars can)."""
    return pl.Series(_CArray(array))


def to_frame(table: pa.Table) -> pl.DataFrame:
    """A Polars DataFrame of a pyarrow table (zero-copy where Polars can)."""
    return pl.DataFrame(_CStream(table))


def int64_array(values: np.ndarray) -> pa.Array:
    """A pyarrow int64 array of a numpy array's values."""
    contiguous = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(contiguous), [None, pa.py_buffer(contiguous)])


def bool_array(values: np.ndarray) -> pa.Array:
    """A pyarrow boolean array of a numpy array's truth values (bit-packed, as Arrow keeps
    them): ``pl.Series(<numpy array>)`` would import numpy.ma, 20 ms of a start-up."""
    packed = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed)])
