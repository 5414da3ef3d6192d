"""The route map: stored routes rewritten to learned or declared (OpenAPI) templates.

Templating at import only knows identifier shapes. Route learning and OpenAPI import know
more (``/files/report-2026-q3.pdf`` → ``/files/{file}``) and write it here as rows
route → mapped. The map applies to stored events and rollups (``apply_route_map``) and, through
the Writer, to every new batch:

* a route that is a key of the map takes its mapped value (keys are exact routes);
* any other route takes the best template of the map that matches it: a placeholder segment
  matches any segment, a literal segment only itself. So a file name never seen before still
  lands on the learned ``/files/{file}``.

A row whose mapped value equals its route keeps that route literal (``/users/me`` beside
``/users/{name}``): as a key it wins over template matching. Declared (OpenAPI) rows take
precedence over learned ones, for keys and for templates alike.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import duckdb
import polars as pl

from conflictlens.store import summaries

ORIGINS = ("learned", "openapi")
# Higher wins when a learned and a declared row or template compete.
_PRIORITY = {"learned": 1, "openapi": 2}

# A whole segment that is a placeholder: {id}, {userId}.
PLACEHOLDER = r"^\{[^{}/]+\}$"
_PARAM_IN_SEGMENT = re.compile(r"\{[^{}/]+\}")

# Chains (learned /users/alice → /users/{name}, declared /users/{name} → /users/{userId}) are
# followed this many hops; a cycle stops where it closes.
_MAX_HOPS = 8
# Template matches of routes that are not keys are remembered per Writer, up to this many.
_MATCH_CACHE_LIMIT = 200_000
BATCH_ROUTES = "_batch_routes"

# The map changes only through replace_route_map, in this process: DuckDB lets no other
# process open the file while one writes. Writers compare this number to know whether the
# map they hold is current, so a store without a map costs them one query per Writer.
_generation = 0


def generation() -> int:
    """A number that changes whenever this process changes a route map."""
    return _generation


def _changed() -> None:
    global _generation
    _generation += 1


def to_arrow(frame: pl.DataFrame) -> object:
    """A frame as DuckDB registers it."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- Reading and writing the map -----------------------------------------------------------------


def read_route_map(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every row of the map: route, mapped, origin, updated_at."""
    frame: pl.DataFrame = con.sql(
        "SELECT route, mapped, origin, updated_at FROM route_map ORDER BY mapped, route"
    ).pl()
    return frame


def stored_routes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Each distinct stored route with its hits: requests from the rollups, or the number of
    events for a route the rollups do not have."""
    frame: pl.DataFrame = con.sql(
        """
        WITH requests AS (
            SELECT route, sum(requests)::BIGINT AS hits FROM request_rollups
            WHERE route IS NOT NULL GROUP BY route
        ), events AS (
            SELECT route, count(*)::BIGINT AS hits FROM conflict_events
            WHERE route IS NOT NULL GROUP BY route
        )
        SELECT route, greatest(coalesce(r.hits, 0), coalesce(e.hits, 0))::BIGINT AS hits
        FROM requests r FULL JOIN events e USING (route)
        ORDER BY route
        """
    ).pl()
    return frame


def replace_route_map(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, origin: str) -> int:
    """Replace the rows of ``origin`` with ``rows`` (route, mapped), in one transaction.

    A route a higher-priority origin already maps is left to it; rows of lower priority for
    the same routes are dropped. Returns the rows written.
    """
    if origin not in _PRIORITY:
        raise ValueError(f"unknown route map origin {origin!r}; known: {', '.join(ORIGINS)}")
    frame = (
        rows.select(pl.col("route").cast(pl.String), pl.col("mapped").cast(pl.String))
        .drop_nulls()
        .unique("route", keep="first", maintain_order=True)
        .with_columns(origin=pl.lit(origin), updated_at=pl.lit(_now(), pl.Datetime("us")))
    )
    lower = [name for name, rank in _PRIORITY.items() if rank < _PRIORITY[origin]]
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_route_map_rows", to_arrow(frame))
        try:
            con.execute(
                "DELETE FROM route_map WHERE origin = $origin OR (list_contains($lower, origin) "
                "AND route IN (SELECT route FROM _route_map_rows))",
                {"origin": origin, "lower": lower},
            )
            written = con.execute(
                "INSERT INTO route_map BY NAME SELECT * FROM _route_map_rows "
                "WHERE route NOT IN (SELECT route FROM route_map)"
            ).fetchall()
        finally:
            con.unregister("_route_map_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    _changed()
    return int(written[0][0])


# --- Chains and templates ------------------------------------------------------------------------


def _rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    frame: pl.DataFrame = con.sql("SELECT route, mapped, origin FROM route_map").pl()
    return frame


def closed_map(rows: pl.DataFrame) -> pl.DataFrame:
    """route → the end of its chain of mappings, for every row (route, mapped)."""
    current = rows.select("route", "mapped")
    for _ in range(_MAX_HOPS):
        following = current.rename({"route": "mapped", "mapped": "_next"})
        step = current.join(following, on="mapped", how="left").with_columns(
            _next=pl.coalesce("_next", "mapped")
        )
        moved = bool((step["_next"] != step["mapped"]).any())
        current = step.select("route", pl.col("_next").alias("mapped"))
        if not moved:
            break
    return current


def templates_of(rows: pl.DataFrame) -> pl.DataFrame:
    """The templates a map declares (mapped values with a placeholder) and their priority."""
    priority = pl.col("origin").replace_strict(_PRIORITY, return_dtype=pl.Int8)
    return (
        rows.filter(pl.col("mapped").str.contains("{", literal=True))
        .group_by(pl.col("mapped").alias("template"))
        .agg(priority.max().alias("priority"))
        .sort("template")
    )


def _segment_regex(segment: str) -> str | None:
    """A regex for a segment mixing text and parameters (``report-{n}.pdf``), else None."""
    if "{" not in segment or re.fullmatch(PLACEHOLDER, segment):
        return None
    parts = _PARAM_IN_SEGMENT.split(segment)
    return "^" + "[^/]+?".join(re.escape(part) for part in parts) + "$"


def match_templates(routes: pl.Series, templates: pl.DataFrame) -> pl.DataFrame:
    """route → the best template (template, priority) matching it; unmatched routes get no row.

    Segment by segment, a template's placeholder matches anything (a literal value or one of
    our placeholders), its literal only the same text, and a segment mixing both its regex.
    Among matches the higher priority wins, then the most literal segments (``/users/me``
    before ``/users/{userId}``), then the first template in text order.
    """
    wanted = pl.DataFrame({"route": routes.cast(pl.String)}).drop_nulls().unique()
    if not wanted.height or not templates.height:
        return pl.DataFrame(schema={"route": pl.String, "mapped": pl.String})
    regexes = [[_segment_regex(s) for s in t.split("/")] for t in templates["template"]]
    mixed = any(r is not None for rs in regexes for r in rs)
    candidates = templates.select("template", "priority").with_columns(
        _tsegs=pl.col("template").str.split("/"),
        _tregex=pl.Series(regexes, dtype=pl.List(pl.String)),
    )
    # Only templates with as many segments as the route can match it.
    pairs = wanted.with_columns(_segs=pl.col("route").str.split("/")).join(
        candidates,
        left_on=pl.col("_segs").list.len(),
        right_on=pl.col("_tsegs").list.len(),
    )
    if not pairs.height:
        return pl.DataFrame(schema={"route": pl.String, "mapped": pl.String})
    longest = int(pairs["_segs"].list.len().max())  # type: ignore[arg-type]
    ok, score = _segment_matches(longest, mixed)
    return (
        pairs.with_columns(_ok=ok, _score=score)
        .filter(pl.col("_ok"))
        .sort(["priority", "_score", "template"], descending=[True, True, False])
        .unique("route", keep="first", maintain_order=True)
        .select("route", pl.col("template").alias("mapped"))
    )


def _segment_matches(longest: int, mixed: bool) -> tuple[pl.Expr, pl.Expr]:
    """Whether every segment matches, and the specificity score, over (route, template) pairs
    of equal length: 2 per equal literal, 1 per equal placeholder or mixed segment."""
    ok: pl.Expr = pl.lit(True)
    score: pl.Expr = pl.lit(0, pl.Int32)
    for i in range(longest):
        seg = pl.col("_segs").list.get(i, null_on_oob=True)
        tseg = pl.col("_tsegs").list.get(i, null_on_oob=True)
        is_param = tseg.str.contains(PLACEHOLDER)
        equal = seg == tseg
        hit = equal | is_param
        points = pl.when(equal & ~is_param).then(2).when(equal).then(1).otherwise(0)
        if mixed:
            regex = pl.col("_tregex").list.get(i, null_on_oob=True)
            fits = regex.is_not_null() & (seg.str.contains(PLACEHOLDER) | seg.str.contains(regex))
            hit = hit | fits.fill_null(False)
            points = pl.when(fits.fill_null(False)).then(1).otherwise(points)
        # Past the end of a pair's segments everything is null: that position matches.
        ok = ok & hit.fill_null(True)
        score = score + points.fill_null(0).cast(pl.Int32)
    return ok, score


# --- Applying the map ----------------------------------------------------------------------------


# resource_ids recomputed from the raw path (b) and the mapped template (m): the path's
# segments where the template has a placeholder, in path order. A template of another length
# (a user rule's {path} spanning segments) keeps the ids templating found.
_IDS_SQL = """
    CASE WHEN b.path IS NOT NULL
              AND len(string_split(b.path, '/')) = len(string_split(m.mapped, '/'))
         THEN list_filter(
                list_transform(
                    list_zip(string_split(b.path, '/'), string_split(m.mapped, '/')),
                    lambda pair: CASE WHEN pair[2] LIKE '{%}' THEN pair[1] END),
                lambda id: id IS NOT NULL)
         ELSE b.resource_ids END
"""

# Inserts of a batch whose routes the map changes: BATCH_ROUTES holds route → mapped.
MAPPED_INSERTS = {
    "conflict_events": f"""
        INSERT INTO conflict_events BY NAME
        SELECT b.* REPLACE (
            coalesce(m.mapped, b.route) AS route,
            CASE WHEN m.mapped IS NULL THEN b.resource_ids ELSE {_IDS_SQL} END AS resource_ids)
        FROM _batch_rows b LEFT JOIN {BATCH_ROUTES} m ON m.route = b.route
    """,  # noqa: S608 - fixed fragments only; the map's values are rows of a registered frame
    "request_rollups": f"""
        INSERT INTO request_rollups BY NAME
        SELECT b.* REPLACE (coalesce(m.mapped, b.route) AS route)
        FROM _batch_rows b LEFT JOIN {BATCH_ROUTES} m ON m.route = b.route
    """,  # noqa: S608
}

_UPDATE_EVENTS = f"""
    UPDATE conflict_events AS b SET route = m.mapped, resource_ids = {_IDS_SQL}
    FROM _route_changes m WHERE b.route = m.route
"""  # noqa: S608 - fixed fragments only

_UPDATE_ROLLUPS = """
    UPDATE request_rollups AS b SET route = m.mapped
    FROM _route_changes m WHERE b.route = m.route
"""


def apply_route_map(con: duckdb.DuckDBPyConnection) -> int:
    """Rewrite stored events and rollups whose route the map changes, in one transaction.

    Events also get their resource_ids recomputed from the path. Returns the rows changed;
    running it again changes nothing.
    """
    changes = closed_map(_rows(con)).filter(pl.col("route") != pl.col("mapped"))
    if not changes.height:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_route_changes", to_arrow(changes))
        try:
            events = con.execute(_UPDATE_EVENTS).fetchall()
            rollups = con.execute(_UPDATE_ROLLUPS).fetchall()
        finally:
            con.unregister("_route_changes")
        if int(events[0][0]) + int(rollups[0][0]):
            # Stored routes changed anywhere in time: the summaries are rebuilt.
            summaries.invalidate_from(con, summaries.EPOCH)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(events[0][0]) + int(rollups[0][0])


@dataclass
class RouteResolver:
    """The map as a Writer applies it to new batches: exact keys first, then templates.

    ``known`` holds route → mapped for the map's keys and for every route matched since
    (mapped is null when no template matched), so each distinct route is matched once.
    """

    keys: pl.DataFrame
    templates: pl.DataFrame
    known: pl.DataFrame

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> RouteResolver:
        rows = _rows(con)
        keys = closed_map(rows)
        return cls(keys, templates_of(rows), keys)

    @property
    def empty(self) -> bool:
        return not self.keys.height

    def resolve(self, routes: pl.Series) -> pl.DataFrame:
        """route → mapped for those of ``routes`` the map changes."""
        distinct = pl.DataFrame({"route": routes.cast(pl.String)}).drop_nulls().unique()
        missing = distinct.join(self.known, on="route", how="anti")
        if missing.height:
            found = match_templates(missing["route"], self.templates)
            if self.known.height > _MATCH_CACHE_LIMIT:
                self.known = self.keys
            self.known = pl.concat([self.known, missing.join(found, on="route", how="left")])
        return distinct.join(self.known, on="route", how="inner").filter(
            pl.col("mapped").is_not_null() & (pl.col("mapped") != pl.col("route"))
        )
