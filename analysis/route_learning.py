"""Learned routes: variable path segments found from the values seen at each position.

Templating at import knows identifier shapes (numbers, UUIDs ...); many identifiers have none:
file names, slugs, user names, SKUs. As Drain does for log lines, the learner walks a prefix
tree over the segments of the distinct stored routes, one position at a time: a node is the
segments before the position (as generalised so far), and a node whose next values are many and
look like values rather than like the API's vocabulary becomes a placeholder. Every node of a
position is decided at once, with Polars; the loop is over positions, never over log lines.

The rules, and why:

* A node is variable with at least ``min_distinct`` distinct literal values. When nearly all
  of them are plain lower-case words (users, orders, search: the vocabulary of an API) it
  needs ``word_min_distinct`` of them, and small subtrees: a resource name has many routes
  under it, an identifier few. So ``/api/v1/users/{x}`` and ``/api/v1/orders/{x}`` stay apart.
* Static siblings stay literal. In a variable node, a plain word stays itself when, among
  the routes of some length, it has ``static_share`` of the node's hits and ``static_factor``
  times the median value's (``me``, ``search``); or when the node's values are seldom plain
  words (``export`` among SKUs) and it has more hits than the median value. Compared by
  length, /users/search weighs against /users/alice, not against all under /users/alice.
  Ids are skewed too: a plain-word id with a tenth of its family's traffic stays literal, the
  price of keeping ``me`` apart. Kept routes are written as identity rows, so that new lines
  do not fall into the learned template.
* Our own placeholders at a variable position ({id}, {token} ...) join the learned one:
  templating catches some values of a family (long file names as {token}) and not others.
* The placeholder's name comes from the values: {file} (a file extension), {version},
  {date}, {slug} (lower-case words joined by - or _), {code} (upper-case codes, SKUs),
  {hash} (short hex), else {name}; ``name_share`` of the values must agree. A node that
  already holds one of these names keeps it, so learning again renames nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from conflictlens.store.route_map import (
    PLACEHOLDER,
    apply_route_map,
    read_route_map,
    replace_route_map,
    stored_routes,
)

# (placeholder, regex its values match), tried in order.
PLACEHOLDER_NAMES: tuple[tuple[str, str], ...] = (
    ("{file}", r"\.[A-Za-z][A-Za-z0-9]{0,4}$"),
    ("{version}", r"^[vV]?[0-9]+(?:\.[0-9]+)+(?:[-+][0-9A-Za-z.]+)?$"),
    (
        "{date}",
        r"^(?:[0-9]{4}[-_./]?[0-9]{2}[-_./]?[0-9]{2}|[0-9]{1,2}[-_./][0-9]{1,2}[-_./][0-9]{4}"
        r"|[A-Za-z]{3}[-_][0-9]{1,2}[-_][0-9]{4}|[0-9]{4}-W[0-9]{2}|[0-9]{4}-[0-9]{2})$",
    ),
    ("{slug}", r"^[a-z0-9]+(?:[-_][a-z0-9]+)+$"),
    ("{code}", r"^[A-Z0-9]+(?:[-_.][A-Z0-9]+)*$"),
    ("{hash}", r"^[0-9a-f]{6,}$"),
)
FALLBACK_NAME = "{name}"
LEARNED_NAMES = (*(name for name, _ in PLACEHOLDER_NAMES), FALLBACK_NAME)

_WORD = r"^[a-z]+$"
# Positions past this many are left as they are (joined back as a tail).
MAX_LEARNED_SEGMENTS = 32


@dataclass(frozen=True)
class LearningSettings:
    """Thresholds of the learner (see the module docstring)."""

    min_distinct: int = 10
    word_min_distinct: int = 50
    word_share: float = 0.9  # a node this much plain words is vocabulary-like
    fanout_ratio: float = 4.0  # a vocabulary-like node: median subtree * this <= values
    static_share: float = 0.1  # a plain word with this share of its node's hits ...
    static_factor: float = 8.0  # ... and this many times the median value's is static
    nonword_share: float = 0.9  # a node this much not plain words: its busier words are static
    name_share: float = 0.8  # values that must agree on a placeholder name


def learn_routes(
    con: duckdb.DuckDBPyConnection, settings: LearningSettings | None = None
) -> pl.DataFrame:
    """route → mapped for the stored routes the learner generalises or keeps literal."""
    return learn_from_counts(stored_routes(con), settings or LearningSettings())


def learn_and_apply(
    con: duckdb.DuckDBPyConnection, settings: LearningSettings | None = None
) -> dict[str, Any]:
    """Learn, store the learned rows and rewrite the stored routes they change.

    Earlier learned rows are kept (new ones win): their routes are no longer stored as they
    were, so this run cannot learn them again, and new lines still need their templates.
    """
    counts = stored_routes(con)
    learned = learn_from_counts(counts, settings or LearningSettings())
    earlier = read_route_map(con).filter(pl.col("origin") == "learned")
    rows = pl.concat([learned, earlier.select("route", "mapped")]).unique(
        "route", keep="first", maintain_order=True
    )
    replace_route_map(con, rows, "learned")
    changed = learned.filter(pl.col("route") != pl.col("mapped"))
    return {
        "routes": counts.height,
        "templates": changed["mapped"].n_unique(),
        "routes_mapped": changed.height,
        "kept_literal": learned.height - changed.height,
        "rows_changed": apply_route_map(con),
    }


def learn_from_counts(counts: pl.DataFrame, settings: LearningSettings) -> pl.DataFrame:
    """route → mapped from distinct routes and their hits (columns route, hits).

    Returns the routes that get a template, and the static routes kept literal (mapped equal
    to route).
    """
    frame, names = _segments(counts)
    for position in range(len(names)):
        frame = _generalise(frame, names, position, settings)
    mapped = pl.concat_str(
        [*(pl.col(n) for n in names), pl.col("_tail")], separator="/", ignore_nulls=True
    )
    return (
        frame.with_columns(mapped.alias("mapped"))
        .filter((pl.col("mapped") != pl.col("route")) | pl.col("_kept"))
        .select("route", "mapped")
        .sort("route")
    )


def _segments(counts: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Segment i of every route as column ``_g{i}`` (null past its end)."""
    frame = counts.select(pl.col("route").cast(pl.String), pl.col("hits").cast(pl.Int64))
    frame = frame.drop_nulls("route").group_by("route").agg(pl.col("hits").sum())
    segments = frame["route"].str.split("/")
    longest = segments.list.len().max()
    count = min(int(longest) if isinstance(longest, int) else 0, MAX_LEARNED_SEGMENTS)
    names = [f"_g{i}" for i in range(count)]
    columns = [segments.list.get(i, null_on_oob=True).alias(n) for i, n in enumerate(names)]
    tail = segments.list.slice(MAX_LEARNED_SEGMENTS).list.join("/")
    tail = pl.select(pl.when(tail != "").then(tail)).to_series().alias("_tail")
    length = segments.list.len().alias("_len")
    return frame.with_columns(*columns, tail, length, _kept=pl.lit(False)), names


def _generalise(
    frame: pl.DataFrame, names: list[str], position: int, settings: LearningSettings
) -> pl.DataFrame:
    """Decide every node at ``position``: its values become a placeholder or stay."""
    column = names[position]
    node = (
        pl.concat_str([pl.col(n) for n in names[:position]], separator="/")
        if position
        else pl.lit("")
    )
    frame = frame.with_columns(node.alias("_node"))
    active = frame.filter(pl.col(column).is_not_null())
    values = (
        active.group_by("_node", pl.col(column).alias("_value"))
        .agg(pl.col("hits").sum(), pl.len().alias("fanout"))
        .join(_busy_values(active, column, settings), on=["_node", "_value"])
    )
    decisions = _decide(values, settings)
    if not decisions.height:
        return frame.drop("_node")
    return (
        frame.join(decisions, left_on=["_node", column], right_on=["_node", "_value"], how="left")
        .with_columns(
            pl.coalesce("_placeholder", column).alias(column),
            pl.col("_kept") | pl.col("_static").fill_null(False),
        )
        .drop("_node", "_placeholder", "_static")
    )


def _decide(values: pl.DataFrame, settings: LearningSettings) -> pl.DataFrame:
    """(node, value) → the placeholder it becomes (null: stays) and whether it is a static
    sibling kept literal, for the values of variable nodes only."""
    is_placeholder = pl.col("_value").str.contains(PLACEHOLDER)
    is_word = pl.col("_value").str.contains(_WORD)
    literal = values.filter(~is_placeholder)
    nodes = literal.group_by("_node").agg(
        pl.len().alias("_distinct"),
        pl.col("hits").median().alias("_median_hits"),
        pl.col("fanout").median().alias("_median_fanout"),
        is_word.mean().alias("_word_share"),
        _name_from_values(settings.name_share).alias("_name"),
    )
    vocabulary = pl.col("_word_share") >= settings.word_share
    variable = (pl.col("_distinct") >= settings.min_distinct) & (
        ~vocabulary
        | (
            (pl.col("_distinct") >= settings.word_min_distinct)
            & (pl.col("_median_fanout") * settings.fanout_ratio <= pl.col("_distinct"))
        )
    )
    nodes = nodes.filter(variable).join(_names_held(values), on="_node", how="left")
    odd_one_out = (pl.col("_word_share") <= 1 - settings.nonword_share) & (
        pl.col("hits") > pl.col("_median_hits")
    )
    static = is_word & (pl.col("_busy") | odd_one_out)
    return values.join(nodes, on="_node", how="inner").select(
        "_node",
        "_value",
        pl.when(~static).then(pl.coalesce("_held", "_name")).alias("_placeholder"),
        static.alias("_static"),
    )


def _busy_values(active: pl.DataFrame, column: str, settings: LearningSettings) -> pl.DataFrame:
    """(node, value) → whether it is much busier than its siblings: for routes of some length,
    ``static_share`` of the node's hits and ``static_factor`` times the median value's.

    Compared length by length, so that /users/search is weighed against /users/alice, not
    against /users/alice plus everything under it.
    """
    by_length = active.group_by("_node", "_len", pl.col(column).alias("_value")).agg(
        pl.col("hits").sum()
    )
    literal = ~pl.col("_value").str.contains(PLACEHOLDER)
    totals = by_length.group_by("_node", "_len").agg(
        pl.col("hits").sum().alias("_total"),
        pl.col("hits").filter(literal).median().alias("_median"),
    )
    busy = (pl.col("hits") >= settings.static_share * pl.col("_total")) & (
        pl.col("hits") >= settings.static_factor * pl.col("_median")
    )
    return (
        by_length.join(totals, on=["_node", "_len"])
        .group_by("_node", "_value")
        .agg(busy.fill_null(False).any().alias("_busy"))
    )


def _name_from_values(share: float) -> pl.Expr:
    """The placeholder name most of a node's values agree on (an aggregation)."""
    value = pl.col("_value")
    chosen: Any = pl
    for name, regex in PLACEHOLDER_NAMES:
        chosen = chosen.when(value.str.contains(regex).mean() >= share).then(pl.lit(name))
    result: pl.Expr = chosen.otherwise(pl.lit(FALLBACK_NAME))
    return result


def _names_held(values: pl.DataFrame) -> pl.DataFrame:
    """node → the learned placeholder it already holds (the busiest, if several)."""
    return (
        values.filter(pl.col("_value").is_in(LEARNED_NAMES))
        .sort("hits", descending=True)
        .group_by("_node", maintain_order=True)
        .agg(pl.col("_value").first().alias("_held"))
    )
