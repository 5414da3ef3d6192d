"""The compiled time readers (ingest/formats/_times.c) read every timestamp as Polars does:
ISO-8601 as %+ reads it, on generated timestamps around every edge (fractions of 0 to 12
digits, offsets, leap days, impossible dates, 60th seconds, other shapes), CLF times as
nginx's format reads them, and mutations of both."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import polars as pl

from conflictlens.ingest.formats import scan
from conflictlens.ingest.formats.times import clf_times, iso_times, strptime_clf, strptime_iso
from tests.mutations import mutate

PIECES = ["0", "9", ":", "-", "+", "T", "Z", ".", " ", "x", "é"]


def valid_timestamp(rng: random.Random) -> str:
    moment = 1 + rng.randrange(4_000_000_000)
    digits = rng.choice([0, 3, 6, 9])
    fraction = "." + "".join(rng.choice("0123456789") for _ in range(digits)) if digits else ""
    text = np.datetime64(moment, "s").astype(str)
    return text + fraction + rng.choice(["Z", "+00:00", "-07:00", "+05:30"])


def timestamp(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return valid_timestamp(rng)
    year = rng.choice([1969, 1970, 1999, 2000, 2024, 2026, 2100, 9999, rng.randint(1000, 9999)])
    month = rng.choice([1, 2, 4, 12, 0, 13, rng.randint(1, 12)])
    day = rng.choice([1, 28, 29, 30, 31, 0, 32, rng.randint(1, 28)])
    hour = rng.choice([0, 23, 24, rng.randint(0, 23)])
    minute = rng.choice([0, 59, 60, rng.randint(0, 59)])
    second = rng.choice([0, 59, 60, rng.randint(0, 59)])
    separator = rng.choice(["T"] * 8 + ["t", " "])
    digits = rng.choice([0, 0, 1, 3, 6, 7, 9, 10, 12])
    fraction = "." + "".join(rng.choice("0123456789") for _ in range(digits)) if digits else ""
    if rng.random() < 0.05:
        fraction = "."
    zone = rng.choice(
        [
            "Z",
            "Z",
            "+00:00",
            "-07:00",
            "+05:30",
            "+14:00",
            "-23:59",
            "+24:00",
            "+0100",
            "+01",
            "z",
            "",
            "+01:60",
            " Z",
        ]
    )
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        f"{fraction}{zone}"
    )


def cases(count: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = [timestamp(rng) for _ in range(count)]
    texts += [mutate(t, rng, PIECES, truncate=False) for t in texts[: count // 3] if t is not None]
    texts += [None, "", "-", "2026-11-19", "1700000000.5", "2026-11-19T00:00:00.130772949Z"]
    texts += ["20261119T000000Z", "Tue, 19 Nov 2026 00:00:00 +0000", "1795072995.392397"]
    return texts


def test_the_time_reader_is_built():
    assert scan.available(), "ingest/formats/_times.c was not built: is a C compiler installed?"


def assert_readings_agree(
    texts: pl.Series, fast: pl.Series, reading: Callable[[pl.Expr], pl.Expr], most_null: float
) -> None:
    """The compiled reading ``fast`` of ``texts`` equals Polars' ``reading``, and reads more
    than the share ``1 - most_null`` of them."""
    reference = texts.to_frame().select(reading(pl.col(texts.name))).to_series()
    assert fast.dtype == reference.dtype
    mismatch = np.flatnonzero(~fast.eq_missing(reference).to_numpy())
    assert not len(mismatch), [
        (texts[int(i)], fast[int(i)], reference[int(i)]) for i in mismatch[:5]
    ]
    assert fast.null_count() < most_null * len(texts)  # the valid half and more are read


def test_compiled_and_polars_readings_agree():
    texts = pl.Series("time_iso", cases(60_000, seed=5), dtype=pl.String)
    assert_readings_agree(texts, iso_times(texts), strptime_iso, 0.6)


def test_fractions_are_truncated_to_microseconds_and_offsets_applied():
    texts = pl.Series(["2026-11-19T00:00:00.130772949Z", "2026-11-19T02:30:00.5+02:30"])
    assert [str(t) for t in iso_times(texts).to_list()] == [
        "2026-11-19 00:00:00.130772",
        "2026-11-19 00:00:00.500000",
    ]


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def clf_timestamp(rng: random.Random) -> str:
    if rng.random() < 0.5:  # a valid one, as nginx writes it
        moment = np.datetime64(1 + rng.randrange(4_000_000_000), "s").astype(object)
        zone = rng.choice(["+0000", "-0700", "+0530", "+1400"])
        return f"{moment:%d}/{MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} {zone}"
    day = rng.choice(["01", "28", "29", "30", "31", "00", "32", "1", f"{rng.randint(1, 28):02d}"])
    month = rng.choice([*MONTHS, "jan", "NOV", "Sept", "Foo"])
    year = rng.choice(["1969", "1970", "2000", "2024", "2026", "9999", "26"])
    hour = rng.choice(["00", "23", "24", f"{rng.randint(0, 23):02d}"])
    minute = rng.choice(["00", "59", "60"])
    second = rng.choice(["00", "59", "60", f"{rng.randint(0, 59):02d}"])
    zone = rng.choice(["+0000", "-0700", "+2400", "+0160", "+00:00", "Z", "", "+01", "-2359"])
    space = rng.choice([" "] * 8 + ["", "  "])
    return f"{day}/{month}/{year}:{hour}:{minute}:{second}{space}{zone}"


def test_compiled_and_polars_clf_readings_agree():
    rng = random.Random(7)
    texts: list[str | None] = [clf_timestamp(rng) for _ in range(60_000)]
    texts += [mutate(t, rng, [*PIECES, "/"], truncate=False) for t in texts[:20_000] if t]
    texts += [None, "", "-", "19/Nov/2026:10:00:00 +0000", "29/Feb/2024:23:59:59 -2359"]
    series = pl.Series("time_clf", texts, dtype=pl.String)
    assert_readings_agree(series, clf_times(series), strptime_clf, 0.7)


def test_clf_offsets_are_applied():
    texts = pl.Series(["19/Nov/2026:10:00:00 +0000", "19/Nov/2026:02:30:00 -0730", None])
    assert [str(t) for t in clf_times(texts).to_list()] == [
        "2026-11-19 10:00:00",
        "2026-11-19 10:00:00",
        "None",
    ]
