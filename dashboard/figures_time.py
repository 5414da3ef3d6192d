"""The time charts: conflicts over time with the ratio, the route heatmap, one resource's
timeline and a rule's backtest; with the incidents shaded and the deploys marked on each.

What makes them readable, the same on every chart:
- a series keeps its colour whatever the range (its name hashed into a fixed palette);
- a series is an error code, or endpoint + error code where the code spans endpoints (one
  VERSION_MISMATCH from two routes would hide which of them spiked);
- the hover shows every series at that time, with units and the zone (``x unified``);
- ratios are percentages on round ticks, times are UTC and say so;
- legends go below the plot, so a phone's narrow chart keeps its width for the data.
Labels from logs are HTML-escaped (``safe``) before they reach a figure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import itertools

import numpy as np
import plotly.graph_objects as go
import polars as pl

from conflictlens.dashboard.figures import (
    CHAR_PX,
    COLORS,
    HEATMAP_COLUMNS,
    HEATMAP_ROUTES,
    OTHER,
    STACKED,
    _coarser,
    _cut,
    _fixed_margins,
    _layout,
    _text_px,
    _top_or_other,
    overall_ratio,
    safe,
)

PALETTE = (*COLORS, "#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377")
TIME_HOVER = "%Y-%m-%d %H:%M UTC"
LEGEND_WIDTH_PX = 340  # legends are laid out for a phone's chart; wider screens use fewer rows
LEGEND_ROW_PX = 22
HEATMAP_LABEL_CHARS = 22  # a phone keeps more than half its width for the cells
INCIDENT_FILL = "rgba(220, 20, 60, 0.13)"
MARKER_COLOR = "#7f7f7f"
ONE_SECOND = dt.timedelta(seconds=1)


def color_for(name: str) -> str:
    """The colour of a series, the same on every chart and range: a hash of its name."""
    if name == OTHER:
        return "#bbbbbb"
    digest = hashlib.md5(html.unescape(name).encode(), usedforsecurity=False).digest()
    return str(PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)])


def series_names(timeline: pl.DataFrame, by: str) -> pl.DataFrame:
    """The timeline with a ``series`` column: the value of ``by``, and for an error code
    seen on several endpoints, the endpoint with it (``CODE · METHOD route``)."""
    if by == "endpoint":
        return timeline.with_columns(
            series=pl.concat_str(
                [pl.col("method").fill_null("-"), pl.col("route").fill_null("-")], separator=" "
            )
        )
    if by == "endpoint_code":
        return timeline.with_columns(
            series=pl.concat_str(
                [pl.col(c).fill_null("-") for c in ("method", "route", "error_code")],
                separator=" ",
            )
        )
    if by != "error_code":
        return timeline.with_columns(series=pl.col(by).cast(pl.String).fill_null("-"))
    code = pl.col("error_code").fill_null("-")
    spans = pl.struct("method", "route").n_unique().over(code) > 1
    return timeline.with_columns(
        series=pl.when(spans)
        .then(pl.concat_str([code, pl.col("method").fill_null("-"), pl.col("route")],
                            separator=" · ", ignore_nulls=True))
        .otherwise(code)
    )  # fmt: skip


def conflicts_over_time(timeline: pl.DataFrame, by: str) -> go.Figure:
    """Stacked conflicts per bucket by series (the busiest, the rest as other) and the
    conflict ratio as a line on its own axis. Drawn for a box to be dragged over it (a range)."""
    frame = (
        _top_or_other(series_names(timeline, by).with_columns(safe("series")), "series")
        .group_by("bucket", "series")
        .agg(pl.col("conflicts").sum())
        .sort("bucket")
    )
    figure = _stacked(frame)
    ratio = overall_ratio(timeline)
    figure.add_scatter(
        x=ratio["bucket"],
        y=ratio["ratio"],
        name="conflict ratio",
        mode="lines",
        yaxis="y2",
        line={"color": MARKER_COLOR, "width": 1.5, "dash": "dot"},
        hovertemplate="%{y:.2%} of requests",
    )
    figure.update_layout(
        yaxis={"title": {"text": "conflicts"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "conflict ratio"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "tickmode": "auto",  # not synced to the left axis: round percentages
            "nticks": 6,
            "rangemode": "tozero",
            "showgrid": False,
        },
        dragmode="select",
        selectdirection="h",
    )
    _time_axis(figure)
    bottom = _legend_below(figure)
    _fixed_margins(figure, left=60, right=60, bottom=bottom)
    return _layout(figure, 330 + bottom)


def _stacked(frame: pl.DataFrame) -> go.Figure:
    """Stacked areas, one per series: a path each, where bars would be an SVG rectangle per
    bucket and series (thousands, which a browser draws slowly)."""
    figure = go.Figure()
    totals = frame.group_by("series").agg(pl.col("conflicts").sum())
    order: list[str] = totals.sort(["conflicts", "series"], descending=[True, False])[
        "series"
    ].to_list()
    buckets = frame.select("bucket").unique().sort("bucket")
    for name in order:
        part = buckets.join(frame.filter(pl.col("series") == name), on="bucket", how="left")
        figure.add_scatter(
            x=part["bucket"],
            y=part["conflicts"].fill_null(0),
            name=_cut(name),
            mode="lines",
            stackgroup="conflicts",
            line={"width": 0.5, "color": color_for(name)},
            hovertemplate="%{y:,} conflicts",
        )
    return figure


def _time_axis(figure: go.Figure) -> None:
    figure.update_xaxes(hoverformat=TIME_HOVER, title={"text": "time (UTC)"}, nticks=8)
    figure.update_layout(hovermode="x unified")


def _legend_below(figure: go.Figure) -> int:
    """A horizontal legend under the plot; returns the bottom margin it needs, laid out for
    a phone's width (so a phone's chart is not squeezed by it)."""
    names = [trace.name for trace in figure.data if trace.name and trace.showlegend is not False]
    rows, used = 1, 0
    for name in names:
        width = 40 + CHAR_PX * len(html.unescape(name))
        if used and used + width > LEGEND_WIDTH_PX:
            rows, used = rows + 1, 0
        used += width
    figure.update_layout(
        legend={
            "orientation": "h",
            "xref": "container",
            "yref": "container",
            "x": 0,
            "y": 0,
            "yanchor": "bottom",
            "entrywidthmode": "pixels",
        }
    )
    return 60 + LEGEND_ROW_PX * rows if names else 50


def heatmap_labels(timeline: pl.DataFrame) -> pl.DataFrame:
    """The timeline with ``label`` ("METHOD route", escaped), as the heatmap's rows."""
    return timeline.with_columns(
        label=pl.concat_str(
            [pl.col("method").fill_null("-"), pl.col("route").fill_null("-")], separator=" "
        )
    ).with_columns(safe("label"))


def heatmap_cells(timeline: pl.DataFrame, usual: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per route (the busiest) and column: conflicts, the conflict ratio, and the ratio
    against the route's usual one (``usual``: method, route, usual_ratio), with the
    column's end."""
    labelled = heatmap_labels(timeline)
    busiest = (
        labelled.group_by("label")
        .agg(pl.col("conflicts").sum())
        .sort(["conflicts", "label"], descending=[True, False])
        .head(HEATMAP_ROUTES)["label"]
    )
    kept = labelled.filter(pl.col("label").is_in(busiest.implode()))
    coarse = _coarser(kept.with_columns(original=pl.col("bucket")), HEATMAP_COLUMNS)
    seconds = _column_seconds(timeline, coarse)
    keys = ["label", "bucket"]
    requests = None
    if "requests" in coarse.columns:  # a route's requests once per bucket, not per cluster
        requests = (
            coarse.unique([*keys, "service", "method", "route", "original"])
            .group_by(keys)
            .agg(pl.col("requests").sum())
        )
    cells = coarse.group_by([*keys, "method", "route"]).agg(pl.col("conflicts").sum())
    cells = cells.group_by(keys).agg(
        pl.col("conflicts").sum(), pl.col("method").first(), pl.col("route").first()
    )
    if requests is not None:
        cells = cells.join(requests, on=keys, how="left").with_columns(
            ratio=pl.when(pl.col("requests") > 0).then(pl.col("conflicts") / pl.col("requests"))
        )
    else:
        cells = cells.with_columns(requests=pl.lit(None, pl.Int64), ratio=pl.lit(None, pl.Float64))
    if usual is not None and usual.height:
        cells = cells.join(usual, on=["method", "route"], how="left", nulls_equal=True)
        cells = cells.with_columns(
            times_usual=pl.when(pl.col("usual_ratio") > 0).then(
                pl.col("ratio") / pl.col("usual_ratio")
            )
        )
    else:
        cells = cells.with_columns(times_usual=pl.lit(None, pl.Float64))
    return cells.with_columns(end=pl.col("bucket") + dt.timedelta(seconds=seconds)).sort("bucket")


def _column_seconds(timeline: pl.DataFrame, coarse: pl.DataFrame) -> int:
    buckets = coarse["bucket"].unique().sort()
    if buckets.len() > 1:
        return int(buckets.diff().drop_nulls().min().total_seconds())  # type: ignore[union-attr]
    if "bucket_seconds" in timeline.columns and timeline.height:
        return int(timeline["bucket_seconds"].max())  # type: ignore[arg-type]
    return 3600


HEAT_METRICS = {
    "conflicts": ("conflicts", "YlOrRd", "%{z:,} conflicts"),
    "ratio": ("ratio", "YlOrRd", "%{z:.1%} of requests"),
    "\N{MULTIPLICATION SIGN} usual": (
        "times_usual",
        "RdBu_r",
        "\N{MULTIPLICATION SIGN}%{z:.1f} the usual ratio",
    ),
}


def route_heatmap(
    timeline: pl.DataFrame, usual: pl.DataFrame | None = None, metric: str = "conflicts"
) -> go.Figure:
    """Per route (the busiest) and time: conflicts, the conflict ratio or the ratio against
    the route's usual one; the hover gives all three."""
    column, scale, shown = HEAT_METRICS.get(metric, HEAT_METRICS["conflicts"])
    cells = heatmap_cells(timeline, usual)
    labels = (
        cells.group_by("label").agg(pl.col("conflicts").sum())
        .sort(["conflicts", "label"], descending=[False, True])["label"].to_list()
    )  # fmt: skip
    buckets = cells["bucket"].unique().sort().to_list()

    # Pivoted on the bucket as text: one column per bucket, in time order.
    cells = cells.with_columns(pl.col("bucket").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    buckets_text = [b.strftime("%Y-%m-%dT%H:%M:%S") for b in buckets]

    def values(name: str) -> list[list[float | None]]:
        table = cells.pivot(on="bucket", index="label", values=name)
        table = pl.DataFrame({"label": labels}).join(table, on="label", how="left")
        present = [b for b in buckets_text if b in table.columns]
        return [list(r) for r in table.select(present).rows()]

    z = np.array(values(column), dtype=float)
    if column == "conflicts":
        z = np.nan_to_num(z)
    extra = [
        [[c, r, t] for c, r, t in zip(cs, rs, ts, strict=True)]
        for cs, rs, ts in zip(values("conflicts"), values("ratio"), values("times_usual"),
                              strict=True)
    ]  # fmt: skip
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=buckets,
            y=labels,
            customdata=extra,
            colorscale=scale,
            zmid=1 if column == "times_usual" else None,
            colorbar={"thickness": 12, "orientation": "h", "y": 0.02, "yanchor": "bottom",
                      "yref": "container", "len": 0.6, "tickformat": ".0%" if column == "ratio"
                      else None},
            hovertemplate=(
                "%{y}<br>%{x|" + TIME_HOVER + "}<br>" + shown
                + "<br>%{customdata[0]:,} conflicts, %{customdata[1]:.1%} of requests"
                + "<br>\N{MULTIPLICATION SIGN}%{customdata[2]:.1f} the usual ratio<extra></extra>"
            ),
            xgap=1,
            ygap=1,
            # A column starts at its bucket (Plotly would centre it there otherwise).
            xperiod=_column_ms(buckets),
            xperiodalignment="start",
        )
    )  # fmt: skip
    shown_labels = [_short(label) for label in labels]
    if shown_labels != labels:
        figure.update_yaxes(tickmode="array", tickvals=labels, ticktext=shown_labels)
    figure.update_xaxes(nticks=6, hoverformat=TIME_HOVER)
    _fixed_margins(figure, left=12 + _text_px(shown_labels), right=16, bottom=95)
    return _layout(figure, max(300, 26 * len(labels) + 130))


def _column_ms(buckets: list[dt.datetime]) -> int:
    if len(buckets) < 2:
        return 3_600_000
    return int(min(b - a for a, b in itertools.pairwise(buckets)).total_seconds() * 1000)


def _short(label: str) -> str:
    """A heatmap row's label cut for a phone, keeping the method and the route's end (what
    tells routes apart); whole in the hover."""
    text = html.unescape(label)
    if len(text) <= HEATMAP_LABEL_CHARS:
        return label
    method, _, route = text.partition(" ")
    keep = max(HEATMAP_LABEL_CHARS - len(method) - 2, 4)
    return html.escape(f"{method} \N{HORIZONTAL ELLIPSIS}{route[-keep:]}")


def resource_timeline(frame: pl.DataFrame) -> go.Figure:
    """One resource's conflicts per bucket by error code, with distinct clients."""
    shown = _top_or_other(frame.with_columns(safe("error_code")), "error_code", STACKED)
    shown = shown.group_by("bucket", "error_code").agg(
        pl.col("conflicts").sum(), pl.col("clients").max()
    )
    figure = _stacked(shown.rename({"error_code": "series"}).sort("bucket"))
    _time_axis(figure)
    bottom = _legend_below(figure)
    _fixed_margins(figure, left=50, right=16, bottom=bottom)
    return _layout(figure, 260 + bottom)


def add_incidents(figure: go.Figure, incidents: pl.DataFrame) -> go.Figure:
    """Each incident shaded over its window, labelled with how far above usual it went."""
    for row in incidents.iter_rows(named=True):
        times = row.get("times_usual")
        text = f"incident \N{MULTIPLICATION SIGN}{times:.0f}" if times else "incident"
        figure.add_vrect(x0=row["start"], x1=row["end"], fillcolor=INCIDENT_FILL, line_width=0,
                         layer="below")  # fmt: skip
        figure.add_annotation(
            x=row["start"], y=1, xref="x", yref="paper", text=text, showarrow=False,
            xanchor="right", yanchor="top", font={"size": 11, "color": "crimson"},
        )  # fmt: skip
    return figure


def add_markers(figure: go.Figure, annotations: pl.DataFrame) -> go.Figure:
    """A deploy (or any annotation) as a vertical line with its text."""
    for row in annotations.iter_rows(named=True):
        text = html.escape(str(row.get("text") or ""))[:60]
        figure.add_shape(
            type="line", x0=row["at"], x1=row["at"], y0=0, y1=1, xref="x", yref="paper",
            line={"color": MARKER_COLOR, "width": 1, "dash": "dash"},
        )  # fmt: skip
        figure.add_annotation(
            x=row["at"], y=0.98, xref="x", yref="paper", text=text, showarrow=False,
            xanchor="left", yanchor="top", textangle=0, font={"size": 10, "color": MARKER_COLOR},
            bgcolor="rgba(255,255,255,0.6)",
        )  # fmt: skip
    return figure


# Beyond this many episodes the preview marks their starts instead of shading each one: a
# shape per episode makes a heavy figure.
SHADED_EPISODES = 40
RATIO_METRICS = ("ratio", "conflict_ratio")


def backtest_chart(series: pl.DataFrame, episodes: pl.DataFrame, metric: str) -> go.Figure:
    """A rule's metric per group (solid) against its threshold (dotted), with the episodes it
    would have fired shaded; a ratio metric as a percentage, times as times (UTC)."""
    figure = go.Figure()
    frame = series.with_columns(safe("group"), pl.col("time").str.to_datetime(time_zone="UTC"))
    percent = metric in RATIO_METRICS or "ratio" in metric
    unit = "%{y:.1%}" if percent else "%{y:,.4~g}"
    for group, part in frame.group_by("group", maintain_order=True):
        name = str(group[0])
        color = color_for(name)
        figure.add_scatter(x=part["time"], y=part["value"], name=_cut(name), mode="lines",
                           line={"color": color}, hovertemplate=f"{unit} {metric}")  # fmt: skip
        figure.add_scatter(
            x=part["time"], y=part["threshold"], name=f"{_cut(name)} threshold", mode="lines",
            line={"color": color, "dash": "dot", "width": 1}, showlegend=False,
            hovertemplate=f"threshold {unit}",
        )  # fmt: skip
    _mark_episodes(figure, episodes, frame["time"].max() if frame.height else None)
    figure.update_layout(yaxis={"title": {"text": metric}, "rangemode": "tozero",
                                "tickformat": ".0%" if percent else None})  # fmt: skip
    _time_axis(figure)
    bottom = _legend_below(figure)
    _fixed_margins(figure, left=70, right=16, bottom=bottom)
    return _layout(figure, 300 + bottom)


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


def label_parts(label: str) -> tuple[str | None, str | None]:
    """(method, route) of a heatmap row's label (``METHOD route``, escaped)."""
    method, _, route = html.unescape(label).partition(" ")
    return (None if method == "-" else method), (None if route in ("", "-") else route)


Bands = tuple[tuple[dt.datetime, dt.datetime, float | None], ...]
Marks = tuple[tuple[dt.datetime, str], ...]


def overview_chart(timeline: pl.DataFrame, by: str, bands: Bands, marks: Marks) -> go.Figure:
    """Conflicts over time with the incidents shaded and the deploys marked (built once per
    answer by ``dashboard.data.drawn``: the bands and marks are part of its key)."""
    figure = conflicts_over_time(timeline, by)
    incidents = pl.DataFrame(
        [{"start": s, "end": e, "times_usual": t} for s, e, t in bands],
        schema={"start": pl.Datetime("us"), "end": pl.Datetime("us"), "times_usual": pl.Float64},
    )
    notes = pl.DataFrame(
        [{"at": a, "text": t} for a, t in marks],
        schema={"at": pl.Datetime("us"), "text": pl.String},
    )
    return add_markers(add_incidents(figure, incidents), notes)


Usual = tuple[tuple[str | None, str | None, float], ...]


def heatmap_figure(timeline: pl.DataFrame, usual: Usual, metric: str) -> go.Figure:
    """The route heatmap with a click target on every cell: Plotly cannot select a heatmap's
    cells, so an invisible marker at each cell's centre takes the click (and the hover)."""
    frame = pl.DataFrame(
        [{"method": m, "route": r, "usual_ratio": u} for m, r, u in usual],
        schema={"method": pl.String, "route": pl.String, "usual_ratio": pl.Float64},
    )
    figure = route_heatmap(timeline, frame, metric)
    cells = heatmap_cells(timeline, frame)
    if cells.height == 0:
        return figure
    # The markers answer the hover: the heatmap's own hover data (a third of the figure's
    # bytes, sent on every visit) is dropped.
    figure.update_traces(
        hoverinfo="skip", hovertemplate=None, customdata=None, selector={"type": "heatmap"}
    )
    figure.add_scatter(
        x=cells["bucket"] + (cells["end"] - cells["bucket"]) / 2,  # the cell's centre
        y=cells["label"],
        mode="markers",
        marker={"size": 2, "opacity": 0},  # a point: the nearest centre takes the click
        customdata=cells.select(
            "conflicts",
            pl.col("ratio").fill_null(0),
            pl.col("times_usual").fill_null(0),
            pl.col("end").dt.strftime("%Y-%m-%dT%H:%M:%S"),
            pl.col("bucket").dt.strftime("%Y-%m-%d %H:%M").alias("from"),
            pl.col("end").dt.strftime("%H:%M").alias("to"),
        ).rows(),
        hovertemplate=(
            "%{y}<br>%{customdata[4]}\N{EN DASH}%{customdata[5]} UTC<br>%{customdata[0]:,} conflicts, "
            "%{customdata[1]:.1%} of requests<br>\N{MULTIPLICATION SIGN}%{customdata[2]:.1f} the usual ratio"
            "<extra>click for its resources</extra>"
        ),
        showlegend=False,
    )  # fmt: skip
    figure.update_layout(clickmode="event+select", dragmode=False, hoverdistance=40)
    return figure
