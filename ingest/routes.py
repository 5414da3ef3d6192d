"""Route templating, vectorized: path segments that are identifiers become placeholders.

``/api/v1/users/123/orders/9f1c2d4e-…`` → ``/api/v1/users/{id}/orders/{uuid}``. The removed
segments are the resource ids that hot-resource analysis needs. User rules (a regex that must
match the whole path, and the route to give it) take precedence over the built-in classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from conflictlens._errors import first_line
from conflictlens.ingest.arrow import int64_array, to_series
from conflictlens.ingest.formats import scan

# Segment classes, tried in order. Rust regex syntax (no look-around): a separate
# "has a digit" test keeps plain words such as "deadbeef" or "accepted" out of {hex}.
# ingest/_routes.c writes these tests out as code: a change here needs the same change there
# (tests/test_routes_compiled.py compares the two on the classes' edges).
SEGMENT_CLASSES: tuple[tuple[str, str, bool], ...] = (
    # (placeholder, full-segment regex, needs a digit)
    ("{id}", r"^[0-9]+$", False),
    (
        "{uuid}",
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        False,
    ),
    ("{ulid}", r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$", True),
    ("{date}", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?$", False),
    ("{email}", r"^[^@/]+(?:@|%40)[^@/]+\.[A-Za-z]{2,}$", False),
    ("{hex}", r"^(?:0x)?[0-9a-fA-F]{8,}$", True),
    ("{id}", r"^[A-Za-z]{1,8}[_-][A-Za-z0-9]{4,}$", True),  # prefixed ids: ord_8f3k2j, cus-12345
    ("{token}", r"^[A-Za-z0-9_~.=-]{16,}$", True),  # long base64-ish / hash-like tokens
)

_HAS_DIGIT = r"[0-9]"
# Every class but plain numbers needs at least this many characters (a@b.c, ord_1234), so
# version segments such as "v1" or "2fa" never reach the class tests.
_SHORTEST_NON_NUMERIC_ID = 5


@dataclass(frozen=True)
class RouteRule:
    """A user rule: paths matching ``pattern`` (whole path) get ``route``; groups are the ids."""

    pattern: str
    route: str

    def __post_init__(self) -> None:
        # Rules run in Polars (Rust regex syntax: no look-around or back-references); the
        # group count comes from Python's re, which must accept the pattern too.
        try:
            re.compile(self.pattern)
            pl.Series([""]).str.contains(self.pattern)
        except (re.error, pl.exceptions.ComputeError) as exc:
            lines = [line for line in str(exc).splitlines() if line.startswith("error:")]
            reason = lines[0].removeprefix("error: ") if lines else first_line(exc)
            raise ValueError(f"invalid regex {self.pattern!r}: {reason}") from None

    @property
    def anchored(self) -> str:
        """The pattern made to match whole paths, alternations included (a|b → ^(?:a|b)$)."""
        return f"^(?:{self.pattern})$"


# Segments past this many are kept as they are: an id that deep is no part of a route.
MAX_TEMPLATED_SEGMENTS = 24


def _classify(segments: pl.Series) -> np.ndarray:
    """Each segment's class number: 1 + the index of the first class it matches, else 0.

    A segment takes the first class it matches. Each class is tested only on the segments
    no earlier class took, so a column of numeric ids costs one regex pass, not eight.
    """
    code = np.zeros(len(segments), dtype=np.int8)
    remaining = np.arange(len(segments))
    for number, (_, regex, needs_digit) in enumerate(SEGMENT_CLASSES, start=1):
        if not len(remaining):
            break
        candidates = segments.gather(remaining)
        matches = candidates.str.contains(regex).fill_null(False).to_numpy()
        if needs_digit:
            matches &= candidates.str.contains(_HAS_DIGIT).fill_null(False).to_numpy()
        code[remaining[matches]] = number
        remaining = remaining[~matches]
    return code


# The placeholders, each with a slash after it, in one buffer to copy routes from.
_PLACEHOLDER_BYTES = np.frombuffer(
    "".join(f"{p}/" for p, _, _ in SEGMENT_CLASSES).encode(), dtype=np.uint8
)
_PLACEHOLDER_LENGTHS = np.array([len(p) for p, _, _ in SEGMENT_CLASSES], dtype=np.int64)
_PLACEHOLDER_STARTS = np.concatenate([[0], np.cumsum(_PLACEHOLDER_LENGTHS + 1)[:-1]])


@dataclass(frozen=True)
class _Segments:
    """Every segment of every path, found on the paths' bytes with numpy: the tests that
    decide which segments can be identifiers then cost a few passes over the chunk's path
    bytes, not a string operation per segment, and only those go to the class regexes."""

    data: np.ndarray  # the paths' UTF-8 bytes, one after another
    starts: np.ndarray  # segment i is data[starts[i]:ends[i]], path after path
    ends: np.ndarray
    first: np.ndarray  # path i's segments are first[i] to first[i + 1] - 1
    classes: np.ndarray  # per segment: 0 to keep it, else 1 + its SEGMENT_CLASSES index

    @classmethod
    def of(cls, paths: pl.Series) -> _Segments:
        # A null path is templated as "" (nothing to replace); callers null its route.
        data, bounds = _buffers(paths.fill_null(""))
        slashes = np.flatnonzero(data == ord("/"))
        count = np.diff(np.searchsorted(slashes, bounds)) + 1  # segments per path
        first = np.zeros(len(count) + 1, dtype=np.int64)
        np.cumsum(count, out=first[1:])
        # A path's first segment starts where the path does, the others after a slash; its
        # last one ends where the path does, the others at a slash.
        starts = np.empty(first[-1], dtype=np.int64)
        ends = np.empty(first[-1], dtype=np.int64)
        opens = np.zeros(first[-1], dtype=bool)
        opens[first[:-1]] = True
        closes = np.zeros(first[-1], dtype=bool)
        closes[first[1:] - 1] = True
        starts[opens], starts[~opens] = bounds[:-1], slashes + 1
        ends[closes], ends[~closes] = bounds[1:], slashes
        position = np.arange(first[-1]) - np.repeat(first[:-1], count)
        classes = _classes(data, starts, ends, position < MAX_TEMPLATED_SEGMENTS)
        return cls(data, starts, ends, first, classes)

    def routes(self) -> pl.Series:
        """Each path with its identifier segments replaced by their placeholders."""
        replaced = self.classes > 0
        last = np.zeros(len(self.starts), dtype=bool)
        last[self.first[1:] - 1] = True
        # Each segment is copied with the slash after it (none after a path's last one),
        # from the paths' bytes or, when it is replaced, from a table of placeholders.
        source = np.concatenate([self.data, _PLACEHOLDER_BYTES])
        code = self.classes[replaced] - 1
        starts = self.starts.copy()
        starts[replaced] = len(self.data) + _PLACEHOLDER_STARTS[code]
        lengths = self.ends - self.starts
        lengths[replaced] = _PLACEHOLDER_LENGTHS[code]
        lengths += ~last
        return _strings(source, starts, lengths, groups=self.first)

    def resource_ids(self) -> pl.Series:
        """Each path's replaced segments, in path order."""
        replaced = np.flatnonzero(self.classes > 0)
        ids = _strings(self.data, self.starts[replaced], (self.ends - self.starts)[replaced])
        offsets = np.searchsorted(replaced, self.first)
        return to_series(pa.LargeListArray.from_arrays(int64_array(offsets), ids.to_arrow()))


def _buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string column without nulls, and where each value starts
    (plus the end of the last)."""
    array = texts.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string
    bounds = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[bounds[0] : bounds[-1]]
    return data, bounds - bounds[0]


def _strings(
    source: np.ndarray, starts: np.ndarray, lengths: np.ndarray, groups: np.ndarray | None = None
) -> pl.Series:
    """The byte ranges source[starts[i]:starts[i] + lengths[i]] as strings, or with
    ``groups`` (the index of each string's first range), each group's ranges joined."""
    ends = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ends[1:])
    gather = np.repeat(starts - ends[:-1], lengths) + np.arange(ends[-1])
    bounds = ends if groups is None else ends[groups]
    # Cut at slashes (ASCII) of valid UTF-8, or placeholders: valid UTF-8 again.
    array = pa.LargeStringArray.from_buffers(
        len(bounds) - 1, pa.py_buffer(bounds), pa.py_buffer(source[gather])
    )
    return to_series(array)


def _classes(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, templated: np.ndarray
) -> np.ndarray:
    """Each segment's class number (0: kept). Only numbers and segments of 5+ bytes holding a
    digit, an @ or %40 can be identifiers: the others (api, v1, users ...) skip the class
    tests. A number is an {id} (the first class) without a regex."""
    lengths = ends - starts
    digits = _counts((data >= ord("0")) & (data <= ord("9")), starts, ends)
    marked = digits + _counts(data == ord("@"), starts, ends)
    if b"%40" in data.tobytes():  # an @ written as %40 (where it begins, inside the segment)
        encoded_at = (data[:-2] == ord("%")) & (data[1:-1] == ord("4")) & (data[2:] == ord("0"))
        marked += _counts(
            np.append(encoded_at, [False, False]), starts, np.maximum(ends - 2, starts)
        )
    numeric = (digits == lengths) & (lengths > 0)
    candidate = (marked > 0) & ((lengths >= _SHORTEST_NON_NUMERIC_ID) | numeric) & templated
    classes = np.zeros(len(starts), dtype=np.int8)
    classes[numeric & templated] = 1
    others = np.flatnonzero(candidate & ~numeric)
    if len(others):
        text = _strings(data, starts[others], lengths[others])
        classes[others] = _classify(text)
    return classes


def _counts(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many of flags[starts[i]:ends[i]] are set, for each i (by prefix sums)."""
    sums = np.zeros(len(flags) + 1, dtype=np.int32)
    np.cumsum(flags, out=sums[1:])
    counts: np.ndarray = sums[ends] - sums[starts]
    return counts


def template(paths: pl.Series, *, with_ids: bool) -> tuple[pl.Series, pl.Series | None]:
    """Each path's route (a null path templates as ""), and with ``with_ids`` its removed
    segments: by the compiled templater where it is built, else with numpy and regexes."""
    if scan.available():
        return _compiled(paths, with_ids=with_ids)
    segments = _Segments.of(paths)
    return segments.routes(), segments.resource_ids() if with_ids else None


# The placeholders back to back, and where each ends, for _routes.c.
_PLACEHOLDER_TEXT = np.frombuffer("".join(p for p, _, _ in SEGMENT_CLASSES).encode(), np.uint8)
_PLACEHOLDER_ENDS = np.cumsum(_PLACEHOLDER_LENGTHS).astype(np.int32)


def _compiled(paths: pl.Series, *, with_ids: bool) -> tuple[pl.Series, pl.Series | None]:
    array = scan.string_views(paths)
    views, data, addresses = scan.view_buffers(array)
    count = len(array)
    size = int(views.view(np.int32)[: 4 * count : 4].sum())
    route_data = np.empty(4 * size + 4 * count + 16, dtype=np.uint8)  # see template_paths
    route_views = np.empty(16 * count, dtype=np.uint8)
    id_offsets = np.empty(count + 1, dtype=np.int64)
    capacity = count + 16
    while True:
        id_views = np.empty(16 * capacity, dtype=np.uint8)
        ids = scan.library().template_paths(
            *(scan.address(a) for a in (views,)),
            count,
            scan.address(addresses),
            MAX_TEMPLATED_SEGMENTS,
            *(scan.address(a) for a in (_PLACEHOLDER_TEXT, _PLACEHOLDER_ENDS, route_data)),
            *(scan.address(a) for a in (route_views, id_offsets, id_views)),
            capacity,
        )
        if ids <= capacity:
            break
        capacity = ids
    # Cut at slashes (ASCII) of valid UTF-8, or placeholders: valid UTF-8 again.
    routes = pa.Array.from_buffers(
        pa.string_view(), count, [None, pa.py_buffer(route_views), pa.py_buffer(route_data)]
    )
    if not with_ids:
        return to_series(routes), None
    values = pa.Array.from_buffers(
        pa.string_view(), int(ids), [None, pa.py_buffer(id_views[: 16 * ids]), *data]
    )
    lists = pa.LargeListArray.from_arrays(int64_array(id_offsets), values)
    return to_series(routes), to_series(lists)


def apply_routes(
    frame: pl.DataFrame,
    rules: tuple[RouteRule, ...] = (),
    *,
    with_route: bool = True,
    with_ids: bool,
) -> pl.DataFrame:
    """Add ``route`` and/or ``resource_ids`` for the ``path`` column."""
    replaced = {"route"} if with_route else set()
    if with_ids:
        replaced.add("resource_ids")
    original = [c for c in frame.columns if c not in replaced]
    routes, resource_ids = template(frame["path"], with_ids=with_ids)
    path = pl.col("path")
    frame = frame.with_columns(
        _route=pl.when(path.is_not_null()).then(routes),
        _ids=resource_ids if resource_ids is not None else pl.lit(None, pl.List(pl.String)),
    )
    route, ids = pl.col("_route"), pl.col("_ids")
    for rule in reversed(rules):  # the first rule listed takes precedence
        matches = path.str.contains(rule.anchored)
        route = pl.when(matches).then(pl.lit(rule.route)).otherwise(route)
        if with_ids:
            groups = re.compile(rule.pattern).groups
            rule_ids = (
                pl.concat_list(
                    [path.str.extract(rule.anchored, i + 1) for i in range(groups)]
                ).list.drop_nulls()  # groups of an alternative that did not match
                if groups
                else pl.lit([], dtype=pl.List(pl.String))
            )
            ids = pl.when(matches).then(rule_ids).otherwise(ids)
    columns = [route.alias("route")] if with_route else []
    if with_ids:
        columns.append(ids.alias("resource_ids"))
    return frame.select(*original, *columns)
