"""ISO-8601 timestamps (``time_iso``) → UTC datetimes, as Polars' ``%+`` reads them.

The compiled reader (_times.c) takes the one shape gateways write; the rest, and every
timestamp when the extension is not built, go to Polars. A test checks both agree.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from ingest.arrow import to_series
from ingest.formats import scan


def strptime_iso(texts: pl.Expr) -> pl.Expr:
    """Polars' reading: ``%+``, converted to UTC and made naive."""
    return texts.str.strptime(pl.Datetime("us", "UTC"), "%+", strict=False).dt.replace_time_zone(
        None
    )


def iso_times(texts: pl.Series) -> pl.Series:
    """Each text as a naive UTC datetime (microseconds), null where it is none."""
    if not scan.available():
        return texts.to_frame("t").select(strptime_iso(pl.col("t"))).to_series()
    array = scan.string_views(texts)
    views, _, addresses = scan.view_buffers(array)
    count = len(array)
    micros = np.empty(count, dtype=np.int64)
    parsed = np.empty(count, dtype=np.uint8)
    scan.library().parse_iso_times(
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
    # %+ needs a date written with dashes: a text without one (an epoch number, as Caddy logs
    # ts in one of its two fields) is no time to Polars either, and is not asked about.
    dashed = texts.str.contains("-", literal=True).fill_null(False).to_numpy()
    left = np.flatnonzero(~done & dashed)
    if len(left):
        rows = pl.Series(left, dtype=pl.UInt32)
        rest = texts.gather(rows).to_frame("t").select(strptime_iso(pl.col("t"))).to_series()
        values = values.scatter(rows, rest)
    return values.alias(texts.name)
