"""Plotly figure builders and the small reshaping they need, kept apart from the pages.

Routes, error codes and clients come from the internet. Plotly renders a few HTML tags in
labels and hover text, so every log-derived label goes through ``safe`` (HTML-escaped)
before it reaches a figure. Series are bounded: time buckets come from the range (a few
hundred at most), and heatmaps keep the busiest routes only.

Charts with axes get margins sized here from their labels. Left to itself, Plotly measures
every tick label, legend entry and colorbar in the browser, and when they push the margins
it draws the whole figure a second time: on the Hot spots heatmap that was half of its
drawing time.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import plotly.colors
import plotly.graph_objects as go
import polars as pl

HEATMAP_ROUTES = 25
HEATMAP_COLUMNS = 96
STACKED = 8  # stacked series shown by name; the rest are summed as OTHER
TREEMAP_ENDPOINTS = 30
SPARKLINE_POINTS = 40  # a sparkline cell is ~100 px wide; the grid formats every point
OTHER = "other"
COLORS = plotly.colors.qualitative.Safe
CHAR_PX = 7  # a generous width of one character of the charts' 12 px font
LABEL_CHARS = 48  # longer axis labels are cut (whole in the hover); legends get this room


_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))


def safe(column: str) -> pl.Expr:
    """An HTML-escaped text column (null shown as '-'), as html.escape does it."""
    expr = pl.col(column).cast(pl.String).fill_null("-")
    for raw, escaped in _ESCAPES:
        expr = expr.str.replace_all(raw, escaped, literal=True)
    return expr.alias(column)


def _layout(figure: go.Figure, height: int) -> go.Figure:
    figure.update_layout(height=height, legend_title_text="")
    return figure


def _fixed_margins(
    figure: go.Figure, *, left: int, right: int, top: int = 30, bottom: int = 45
) -> None:
    """Margins fixed here, so the browser lays the figure out once (see the module's doc).
    The bottom fits a time axis' two lines of tick labels."""
    figure.update_layout(margin={"l": left, "r": right, "t": top, "b": bottom, "autoexpand": False})
    figure.update_xaxes(automargin=False, ticklabeloverflow="allow", tickangle=0)
    figure.update_yaxes(automargin=False, ticklabeloverflow="allow")


def _text_px(labels: Iterable[str]) -> int:
    """The width of the longest (HTML-escaped) label as drawn, up to LABEL_CHARS."""
    longest = max((len(html.unescape(label)) for label in labels), default=0)
    return CHAR_PX * min(longest, LABEL_CHARS)


def hot_spot_bars(spots: pl.DataFrame) -> go.Figure:
    """The top clusters as bars of their conflicts, the first at the top, each labelled with
    its endpoint over its error code; the share of requests and "new" on each bar, requests
    and score in the hover. Bars, not a table: the Overview draws Plotly already, and a table
    would load the grid's bundle for ten rows (0.16 s of the page)."""
    frame = spots.with_columns(
        endpoint=pl.concat_str(
            [pl.col("method").fill_null("-"), pl.col("route").fill_null("-")], separator=" "
        )
    ).with_columns(safe("endpoint"), safe("error_code"))
    if "baseline_ratio" not in frame.columns:
        frame = frame.with_columns(baseline_ratio=pl.lit(None, pl.Float64))
    rows = frame.select(
        "endpoint", "error_code", "conflicts", "requests", "ratio", "baseline_ratio", "new"
    ).rows()
    # Positions, not the labels, place the bars: two clusters may share a label (they differ
    # by service or kind), and categories would merge them.
    places = list(range(len(rows)))[::-1]
    lines = [(_cut(endpoint), _cut(code)) for endpoint, code, *_ in rows]
    figure = go.Figure(
        go.Bar(
            x=[conflicts for _, _, conflicts, *_ in rows],
            y=places,
            orientation="h",
            marker={"color": COLORS[0]},
            text=[_bar_text(ratio, new, usual) for *_, ratio, usual, new in rows],
            textposition="auto",
            customdata=[
                [f"{endpoint} {code}", requests, against_usual(ratio, usual, new)]
                for endpoint, code, _, requests, ratio, usual, new in rows
            ],
            hovertemplate=(
                "%{customdata[0]}<br>%{x:,} conflicts of %{customdata[1]:,} requests"
                "<br>%{customdata[2]}<extra></extra>"
            ),
        )
    )
    # Each bar's name above it, not beside it: a name column would take a phone's width.
    for place, (endpoint, code) in zip(places, lines, strict=True):
        figure.add_annotation(
            x=0, y=place + 0.42, xref="x", yref="y", text=f"{endpoint} · {code}",
            showarrow=False, xanchor="left", yanchor="bottom", font={"size": 11},
        )  # fmt: skip
    figure.update_yaxes(
        tickmode="array", tickvals=places, ticktext=[""] * len(places),
        range=[-0.6, len(rows) - 0.1],
    )  # fmt: skip
    figure.update_traces(width=0.5)
    figure.update_layout(showlegend=False)
    _fixed_margins(figure, left=10, right=20, bottom=30)
    return _layout(figure, 50 + 52 * max(len(rows), 1))


def _bar_text(ratio: float | None, new: bool | None, usual: float | None = None) -> str:
    share = f"{ratio:.1%} of requests" if ratio is not None else ""
    times = times_usual(ratio, usual)
    against = f"\N{MULTIPLICATION SIGN}{times:.1f} usual" if times is not None and not new else ""
    return " · ".join(part for part in (share, against, "new" if new else "") if part)


def times_usual(ratio: float | None, usual: float | None) -> float | None:
    """How many times its usual ratio a cluster's ratio is (None without a usual one)."""
    if ratio is None or usual is None or usual <= 0:
        return None
    return ratio / usual


def against_usual(ratio: float | None, usual: float | None, new: bool | None = False) -> str:
    """A cluster's ratio against its usual one, in words for a hover or a card."""
    if new:
        return "new: not seen before this range"
    times = times_usual(ratio, usual)
    if times is None or usual is None:
        return "no usual ratio to compare with"
    return f"\N{MULTIPLICATION SIGN}{times:.1f} the usual ratio ({usual:.1%})"


def _top_or_other(frame: pl.DataFrame, column: str, top: int = STACKED) -> pl.DataFrame:
    """``column`` kept for its ``top`` busiest values, "other" for the rest: a trace per
    value is what a browser draws, and a legend of dozens helps nobody."""
    busiest = (
        frame.group_by(column)
        .agg(pl.col("conflicts").sum())
        .sort(["conflicts", column], descending=[True, False])
        .head(top)[column]
    )
    return frame.with_columns(
        pl.when(pl.col(column).is_in(busiest.implode()))
        .then(pl.col(column))
        .otherwise(pl.lit(OTHER))
        .alias(column)
    )


def overall_ratio(timeline: pl.DataFrame) -> pl.DataFrame:
    """Conflicts over requests per bucket; each route's requests counted once per bucket."""
    conflicts = timeline.group_by("bucket").agg(pl.col("conflicts").sum())
    requests = (
        timeline.unique(["bucket", "service", "method", "route"])
        .group_by("bucket")
        .agg(pl.col("requests").sum())
    )
    return (
        conflicts.join(requests, on="bucket")
        .with_columns(
            ratio=pl.when(pl.col("requests") > 0).then(pl.col("conflicts") / pl.col("requests"))
        )
        .sort("bucket")
    )


def _cut(label: str) -> str:
    """An escaped label cut to LABEL_CHARS characters as shown (never inside an entity)."""
    text = html.unescape(label)
    if len(text) <= LABEL_CHARS:
        return label
    return html.escape(text[: LABEL_CHARS - 1]) + "…"


def _coarser(timeline: pl.DataFrame, columns: int) -> pl.DataFrame:
    """Buckets merged into wider ones (a whole multiple) until at most ``columns`` remain:
    a heatmap cell narrower than a few pixels shows nothing, and costs the browser."""
    count = timeline["bucket"].n_unique()
    if count <= columns or "bucket_seconds" not in timeline.columns:
        return timeline
    seconds = int(timeline.select(pl.col("bucket_seconds").max()).item()) * -(-count // columns)
    return timeline.with_columns(pl.col("bucket").dt.truncate(f"{seconds}s"))


def cluster_treemap(clusters: pl.DataFrame) -> go.Figure:
    """Endpoint → error code → kind, sized by conflicts (the busiest endpoints). Two levels
    are drawn at a time (a click on an endpoint shows its kinds): Plotly measures every label
    it draws, and the third level cost the Hot spots page 0.09 s for labels mostly too small
    to read."""
    frame = clusters.with_columns(
        safe("route"), safe("error_code"), safe("kind"), safe("method")
    ).with_columns(endpoint=pl.concat_str(["method", "route"], separator=" "))
    busiest = (
        frame.group_by("endpoint")
        .agg(pl.col("conflicts").sum())
        .sort(["conflicts", "endpoint"], descending=[True, False])
        .head(TREEMAP_ENDPOINTS)["endpoint"]
    )
    frame = frame.filter(pl.col("endpoint").is_in(busiest.implode()))
    levels = (["endpoint"], ["endpoint", "error_code"], ["endpoint", "error_code", "kind"])
    nodes = pl.concat(
        [
            frame.group_by(keys)
            .agg(pl.col("conflicts").sum())
            .select(
                id=pl.concat_str(keys, separator="\x1f"),
                parent=pl.concat_str(keys[:-1], separator="\x1f") if len(keys) > 1 else pl.lit(""),
                label=pl.col(keys[-1]),
                conflicts=pl.col("conflicts"),
            )
            for keys in levels
        ]
    )
    figure = go.Figure(
        go.Treemap(
            ids=nodes["id"],
            parents=nodes["parent"],
            labels=nodes["label"],
            values=nodes["conflicts"],
            branchvalues="total",
            maxdepth=2,
            pathbar={"visible": False},
        )
    )
    figure.update_layout(treemapcolorway=COLORS, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return _layout(figure, 420)


def sparklines(timeline: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per cluster, its conflicts per bucket as a list (for a sparkline column)."""
    timeline = _coarser(timeline, SPARKLINE_POINTS)
    buckets = timeline.select("bucket").unique().sort("bucket")
    clusters = timeline.select(keys).unique()
    dense = clusters.join(buckets, how="cross").join(
        timeline.group_by([*keys, "bucket"]).agg(pl.col("conflicts").sum()),
        on=[*keys, "bucket"],
        how="left",
        nulls_equal=True,
    )
    return (
        dense.with_columns(pl.col("conflicts").fill_null(0))
        .sort("bucket")
        .group_by(keys, maintain_order=True)
        .agg(trend=pl.col("conflicts"))
    )
