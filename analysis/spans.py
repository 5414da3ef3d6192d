"""Reading counts over a set of time spans from the cheapest place.

Whole hours before the store's summary watermark come from the hourly tables; the rest (the
edges of a span that does not start or end on the hour, and the newest hours) from the raw
tables. Every span becomes a plain range test on the time column, which lets DuckDB skip the
row groups outside it: four weeks of history are read as four days.
"""

from __future__ import annotations

import datetime as dt

from conflictlens.store.summaries import EPOCH, LEVELS

Span = tuple[dt.datetime, dt.datetime]

# A query ORs a few of these; the fragment is fixed text, its bounds bound parameters.
_RANGE = "({column} >= ${prefix}_start_{n}::TIMESTAMP AND {column} < ${prefix}_end_{n}::TIMESTAMP)"


def floor_to(moment: dt.datetime, width: dt.timedelta) -> dt.datetime:
    """``moment`` rounded down to a multiple of ``width`` since the epoch (UTC-aligned)."""
    return EPOCH + ((moment - EPOCH) // width) * width


def ceil_to(moment: dt.datetime, width: dt.timedelta) -> dt.datetime:
    floor = floor_to(moment, width)
    return floor if floor == moment else floor + width


def merged(spans: list[Span]) -> list[Span]:
    """The spans sorted, with touching or overlapping ones joined."""
    out: list[list[dt.datetime]] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(start, end) for start, end in out]


def split_by_summary(
    windows: list[Span], summarised_before: dt.datetime, width: dt.timedelta
) -> tuple[list[list[Span]], list[Span]]:
    """Per summary level (store.summaries.LEVELS, coarsest first) the spans it answers, and
    the raw spans left over, for ``windows`` of ``width``.

    A summary row is counted in the window its start falls in, so a level only answers whole
    units inside one window. When the windows' edges fall on the level's units, adjacent
    windows can be merged first (fast: a day of 5-minute windows is one span); else each
    window is split on its own, so no unit straddles two windows.
    """
    per_level: list[list[Span]] = []
    rest = list(windows)
    edges = {start for start, _ in windows} | {end for _, end in windows}
    for *_, unit in LEVELS:
        if unit > width:
            per_level.append([])
            continue
        aligned = all(floor_to(edge, unit) == edge for edge in edges)
        whole, rest = _whole_units(merged(rest) if aligned else rest, unit, summarised_before)
        per_level.append(merged(whole))
    return per_level, merged(rest)


def _whole_units(
    pieces: list[Span], unit: dt.timedelta, summarised_before: dt.datetime
) -> tuple[list[Span], list[Span]]:
    whole: list[Span] = []
    left: list[Span] = []
    limit = floor_to(summarised_before, unit)
    for start, end in pieces:
        first, last = ceil_to(start, unit), min(floor_to(end, unit), limit)
        if first < last:
            whole.append((first, last))
            left += [piece for piece in ((start, first), (last, end)) if piece[0] < piece[1]]
        else:
            left.append((start, end))
    return whole, left


def clause(column: str, prefix: str, spans: list[Span]) -> str:
    """``column`` in any of the spans (FALSE for none), with parameters named by prefix."""
    if not spans:
        return "FALSE"
    return " OR ".join(_RANGE.format(column=column, prefix=prefix, n=n) for n in range(len(spans)))


def values(prefix: str, spans: list[Span]) -> dict[str, dt.datetime]:
    bound: dict[str, dt.datetime] = {}
    for n, (start, end) in enumerate(spans):
        bound[f"{prefix}_start_{n}"], bound[f"{prefix}_end_{n}"] = start, end
    return bound
