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

# Segment classes, tried in order. Rust regex syntax (no look-around): a separate
# "has a digit" test keeps plain words such as "deadbeef" or "accepted" out of {hex}.
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
_CANDIDATE = r"[0-9@]|%40"
_NUMERIC = r"^[0-9]+$"
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
            reason = lines[0].removeprefix("error: ") if lines else str(exc).splitlines()[0]
            raise ValueError(f"invalid regex {self.pattern!r}: {reason}") from None

    @property
    def anchored(self) -> str:
        """The pattern made to match whole paths, alternations included (a|b → ^(?:a|b)$)."""
        return f"^(?:{self.pattern})$"


# Paths are templated position by position (segment 0, 1, ... of every path at once), which
# is several times faster in Polars than list.eval; segments past this many are kept as is.
MAX_TEMPLATED_SEGMENTS = 24


def _classify(segments: pl.Series) -> pl.Series:
    """The placeholder of each segment that is an identifier, else null.

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
    return _PLACEHOLDER_TABLE.gather(pl.Series(code))


_PLACEHOLDER_TABLE = pl.Series([None, *(p for p, _, _ in SEGMENT_CLASSES)], dtype=pl.String)


def _with_segments(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Materialise segment i of every path as column ``_seg{i}`` (eager Polars does not share
    sub-expressions, so each segment is computed once here and then only referenced)."""
    segments = frame["path"].str.split("/")
    longest = segments.list.len().max()
    count = min(int(longest) if isinstance(longest, int) else 0, MAX_TEMPLATED_SEGMENTS)
    names = [f"_seg{i}" for i in range(count)]
    columns: list[pl.Series] = []
    for index, name in enumerate(names):
        segment = segments.list.get(index, null_on_oob=True).alias(name)
        columns += [segment, _placeholders(segment).alias(f"{name}_ph")]
    tail = segments.list.slice(MAX_TEMPLATED_SEGMENTS).list.join("/")
    return frame.with_columns(*columns, tail.alias("_seg_tail")), names


def _placeholders(segment: pl.Series) -> pl.Series:
    """Placeholders for one segment position. Only numbers and segments of 5+ characters
    holding a digit or an @ can be identifiers, so the others (api, v1, users ...) skip the
    class tests altogether."""
    candidate = (
        segment.str.contains(_CANDIDATE)
        & ((segment.str.len_bytes() >= _SHORTEST_NON_NUMERIC_ID) | segment.str.contains(_NUMERIC))
    ).fill_null(False)
    result = pl.repeat(None, len(segment), dtype=pl.String, eager=True).alias(segment.name)
    if not candidate.any():
        return result
    rows = candidate.arg_true()
    found = _classify(segment.gather(rows))
    return result.scatter(rows, found)


def _route(names: list[str]) -> pl.Expr:
    parts = [pl.coalesce(pl.col(f"{n}_ph"), pl.col(n)) for n in names]
    parts.append(pl.when(pl.col("_seg_tail") != "").then(pl.col("_seg_tail")))
    return pl.when(pl.col("path").is_not_null()).then(
        pl.concat_str(parts, separator="/", ignore_nulls=True)
    )


def _resource_ids(names: list[str]) -> pl.Expr:
    if not names:
        return pl.lit([], dtype=pl.List(pl.String))
    ids = [pl.when(pl.col(f"{n}_ph").is_not_null()).then(pl.col(n)) for n in names]
    return pl.concat_list(ids).list.drop_nulls()


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
    frame, names = _with_segments(frame)
    path = pl.col("path")
    route = _route(names)
    ids = _resource_ids(names) if with_ids else None
    for rule in reversed(rules):  # the first rule listed takes precedence
        matches = path.str.contains(rule.anchored)
        route = pl.when(matches).then(pl.lit(rule.route)).otherwise(route)
        if ids is not None:
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
    if ids is not None:
        columns.append(ids.alias("resource_ids"))
    return frame.with_columns(columns).select(*original, *(c.meta.output_name() for c in columns))
