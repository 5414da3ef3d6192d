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


def _legend_on_right(figure: go.Figure) -> int:
    """The legend against the figure's right edge; returns the width it needs."""
    names = [trace.name for trace in figure.data if trace.name and trace.showlegend is not False]
    figure.update_layout(
        legend={"xref": "container", "x": 1, "xanchor": "right", "y": 1, "yanchor": "top"}
    )
    return 50 + _text_px(names)


def conflicts_over_time(timeline: pl.DataFrame, by: str) -> go.Figure:
    """Stacked conflicts per bucket, by error code or kind (the busiest, the rest as other),
    and the conflict ratio as a line on its own axis: one chart where two would each cost
    the browser a plot of its own."""
    frame = (
        _top_or_other(timeline.with_columns(safe(by)), by)
        .group_by("bucket", by)
        .agg(pl.col("conflicts").sum())
        .sort("bucket")
    )
    figure = _stacked_bars(frame, by)
    ratio = overall_ratio(timeline)
    figure.add_scatter(
        x=ratio["bucket"],
        y=ratio["ratio"],
        name="conflict ratio",
        mode="lines",
        yaxis="y2",
        line={"color": "black", "width": 1.5, "dash": "dot"},
        hovertemplate="%{y:.2%} of requests",
    )
    figure.update_layout(
        yaxis={"title": {"text": "conflicts"}},
        yaxis2={
            "title": {"text": "conflict ratio"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".1%",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    # The ratio axis' labels and title sit between the plot and the legend.
    _fixed_margins(figure, left=70, right=80 + _legend_on_right(figure))
    return _layout(figure, 360)


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
    rows = frame.select(
        "endpoint", "error_code", "conflicts", "requests", "ratio", "score", "new"
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
            text=[_bar_text(ratio, new) for *_, ratio, _, new in rows],
            textposition="auto",
            customdata=[
                [f"{endpoint} {code}", requests, score or 0]
                for endpoint, code, _, requests, _, score, _ in rows
            ],
            hovertemplate=(
                "%{customdata[0]}<br>%{x} conflicts of %{customdata[1]} requests"
                "<br>score %{customdata[2]:.1f}<extra></extra>"
            ),
        )
    )
    figure.update_yaxes(
        tickmode="array", tickvals=places, ticktext=[f"{a}<br>{b}" for a, b in lines]
    )
    figure.update_layout(showlegend=False)
    left = 12 + _text_px(line for pair in lines for line in pair)
    _fixed_margins(figure, left=left, right=20, bottom=30)
    return _layout(figure, 60 + 38 * max(len(rows), 1))


def _bar_text(ratio: float | None, new: bool | None) -> str:
    share = f"{ratio:.1%} of requests" if ratio is not None else ""
    return " · ".join(part for part in (share, "new" if new else "") if part)


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


def _stacked_bars(frame: pl.DataFrame, by: str, hover: str | None = None) -> go.Figure:
    """Stacked areas, one per value of ``by``: a path each, where bars would be an SVG
    rectangle per bucket and value (thousands, which a browser draws slowly)."""
    figure = go.Figure()
    order = frame.group_by(by).agg(pl.col("conflicts").sum()).sort("conflicts", descending=True)[by]
    buckets = frame.select("bucket").unique().sort("bucket")
    for index, name in enumerate(order):
        part = buckets.join(frame.filter(pl.col(by) == name), on="bucket", how="left")
        figure.add_scatter(
            x=part["bucket"],
            y=part["conflicts"].fill_null(0),
            name=name,
            mode="lines",
            stackgroup="conflicts",
            line={"width": 0.5, "color": COLORS[index % len(COLORS)]},
            customdata=part[hover].fill_null(0) if hover else None,
            hovertemplate=(f"%{{y}} conflicts, %{{customdata}} {hover}" if hover else None),
        )
    return figure


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


def route_heatmap(timeline: pl.DataFrame) -> go.Figure:
    """Conflicts per route (the busiest) and bucket."""
    labelled = timeline.with_columns(
        label=pl.concat_str(
            [pl.col("method").fill_null("-"), pl.col("route").fill_null("-")], separator=" "
        )
    ).with_columns(safe("label"))
    busiest = (
        labelled.group_by("label")
        .agg(pl.col("conflicts").sum())
        .sort("conflicts", descending=True)
        .head(HEATMAP_ROUTES)["label"]
    )
    cells = (
        _coarser(labelled.filter(pl.col("label").is_in(busiest.implode())), HEATMAP_COLUMNS)
        .group_by("label", "bucket")
        .agg(pl.col("conflicts").sum())
        .sort("bucket")
    )
    grid = cells.pivot(on="bucket", index="label", values="conflicts").fill_null(0)
    buckets = [c for c in grid.columns if c != "label"]
    labels = grid["label"].to_list()
    figure = go.Figure(
        go.Heatmap(
            z=grid.select(buckets).to_numpy(),
            x=buckets,
            y=labels,
            colorscale="YlOrRd",
            colorbar={"thickness": 16},
            hovertemplate="%{y}<br>%{x}<br>%{z} conflicts<extra></extra>",
        )
    )
    shown = [_cut(label) for label in labels]
    if shown != labels:
        figure.update_yaxes(tickmode="array", tickvals=labels, ticktext=shown)
    _fixed_margins(figure, left=12 + _text_px(shown), right=80)
    return _layout(figure, max(260, 24 * grid.height + 80))


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


def resource_timeline(frame: pl.DataFrame) -> go.Figure:
    """One resource's conflicts per bucket by error code, with distinct clients."""
    shown = _top_or_other(frame.with_columns(safe("error_code")), "error_code").sort("bucket")
    shown = shown.group_by("bucket", "error_code").agg(
        pl.col("conflicts").sum(), pl.col("clients").max()
    )
    figure = _stacked_bars(shown.sort("bucket"), "error_code", hover="clients")
    _fixed_margins(figure, left=50, right=10 + _legend_on_right(figure))
    return _layout(figure, 280)


# Beyond this many episodes the preview marks their starts instead of shading each one: a
# shape per episode makes a heavy figure.
SHADED_EPISODES = 40


def backtest_chart(series: pl.DataFrame, episodes: pl.DataFrame, metric: str) -> go.Figure:
    """A rule's metric per group (solid) against its threshold (dotted), with the episodes it
    would have fired shaded."""
    figure = go.Figure()
    frame = series.with_columns(safe("group"), pl.col("time").str.to_datetime(time_zone="UTC"))
    if frame.height:
        for index, (group, part) in enumerate(frame.group_by("group", maintain_order=True)):
            color = COLORS[index % len(COLORS)]
            name = str(group[0])
            figure.add_scatter(
                x=part["time"], y=part["value"], name=name, mode="lines", line={"color": color}
            )
            figure.add_scatter(
                x=part["time"],
                y=part["threshold"],
                name=f"{name} threshold",
                mode="lines",
                line={"color": color, "dash": "dot", "width": 1},
                showlegend=index == 0,
                legendgroup="threshold",
            )
    _mark_episodes(figure, episodes, frame["time"].max() if frame.height else None)
    figure.update_layout(yaxis_title=metric, hovermode="x unified")
    _fixed_margins(figure, left=80, right=10 + _legend_on_right(figure))
    return _layout(figure, 360)


def _mark_episodes(figure: go.Figure, episodes: pl.DataFrame, last: object) -> None:
    if episodes.height == 0:
        return
    starts = episodes["start"].str.to_datetime(time_zone="UTC")
    if episodes.height > SHADED_EPISODES:
        figure.add_scatter(
            x=starts, y=[0] * len(starts), mode="markers", name="fired", marker={"symbol": "x"}
        )
        return
    # An episode still firing at the range's end (no end) is shaded to the chart's end.
    ends = (
        episodes["end"]
        .str.to_datetime(time_zone="UTC")
        .fill_null(last if last is not None else starts.max())
    )
    for start, end in zip(starts, ends, strict=True):
        figure.add_vrect(x0=start, x1=end, fillcolor="crimson", opacity=0.15, line_width=0)
