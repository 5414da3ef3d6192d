"""Timestamps → UTC datetimes: ISO-8601 (``time_iso``) as Polars' ``%+`` reads them, CLF
(``time_clf``) as Polars reads nginx's ``$time_local``.

The compiled readers (_times.c) take the one shape each is written in; the rest, and every
timestamp when the extension is not built, go to Polars. Tests check both agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens.ingest.arrow import int64_array, to_series
from conflictlens.ingest.formats import scan


def strptime_iso(texts: pl.Expr) -> pl.Expr:
    """Polars' reading: ``%+``, converted to UTC and made naive."""
    return texts.str.strptime(pl.Datetime("us", "UTC"), "%+", strict=False).dt.replace_time_zone(
        None
    )


CLF_FORMAT = "%d/%b/%Y:%H:%M:%S %z"
# Apache's %{%d/%b/%Y:%H:%M:%S}t.%{msec_frac}t and servers that copied it (gunicorn's talisker)
CLF_FRACTION_FORMAT = "%d/%b/%Y:%H:%M:%S%.f %z"


def strptime_clf(texts: pl.Expr) -> pl.Expr:
    """Polars' reading of nginx's $time_local and Apache's %t (with or without a fraction of
    a second), in UTC and naive."""
    return pl.coalesce(
        texts.str.strptime(pl.Datetime("us", "UTC"), form, strict=False)
        for form in (CLF_FORMAT, CLF_FRACTION_FORMAT)
    ).dt.replace_time_zone(None)


def iso_times(texts: pl.Series) -> pl.Series:
    """Each text as a naive UTC datetime (microseconds), null where it is none."""
    if not scan.available():
        return _by_polars(texts, strptime_iso)
    values, done = _compiled(texts, scan.library().parse_iso_times)
    # %+ needs a date written with dashes: a text without one (an epoch number, as Caddy logs
    # ts in one of its two fields) is no time to Polars either, and is not asked about.
    dashed = texts.str.contains("-", literal=True).fill_null(False).to_numpy()
    return _rest_by_polars(texts, values, np.flatnonzero(~done & dashed), strptime_iso)


def clf_times(texts: pl.Series) -> pl.Series:
    """As iso_times, for CLF times (19/Nov/2026:10:00:00 +0000)."""
    if not scan.available():
        return _by_polars(texts, strptime_clf)
    values, done = _compiled(texts, scan.library().parse_clf_times)
    left = np.flatnonzero(~done & texts.is_not_null().to_numpy())
    return _rest_by_polars(texts, values, left, strptime_clf)


def _compiled(texts: pl.Series, parse: Any) -> tuple[pl.Series, np.ndarray]:
    """The times a compiled reader reads (null elsewhere), and which it read."""
    array = scan.string_views(texts)
    views, _, addresses = scan.view_buffers(array)
    count = len(array)
    micros = np.empty(count, dtype=np.int64)
    parsed = np.empty(count, dtype=np.uint8)
    parse(
        scan.address(views),
        count,
        scan.address(addresses),
        scan.address(micros),
        scan.address(parsed),
    )
    done = parsed.view(bool)
    values = to_series(
        pa.Array.from_buffers(
            pa.timestamp("us"),
            count,
            [pa.py_buffer(np.packbits(done, bitorder="little")), pa.py_buffer(micros)],
        )
    )
    return values, done


def _by_polars(texts: pl.Series, reading: Callable[[pl.Expr], pl.Expr]) -> pl.Series:
    return texts.to_frame("t").select(reading(pl.col("t"))).to_series().alias(texts.name)


def _rest_by_polars(
    texts: pl.Series,
    values: pl.Series,
    left: np.ndarray,
    reading: Callable[[pl.Expr], pl.Expr],
) -> pl.Series:
    """``values``, with the rows ``left`` to Polars read by ``reading``."""
    if len(left):
        rows = to_series(int64_array(left)).cast(pl.UInt32)  # (not via numpy.ma)
        values = values.scatter(rows, _by_polars(texts.gather(rows), reading))
    return values.alias(texts.name)
