"""The commands that ask the analysis catalog: clusters, hotspots, resources, storms, incidents.

Each is a thin layer: it names a catalog entry, passes the range, filters and options on
(through serve when it runs), and prints a table or JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import polars as pl

from conflictlens import output
from conflictlens.analysis.reports.text import resolution
from conflictlens.cli_support import (
    common_options,
    friendly_errors,
    json_option,
    range_options,
    read_query,
    resolve_config,
)
from conflictlens.output import Cell, count, decimal, percent, text, when, yes

F = TypeVar("F", bound=Callable[..., Any])

BUCKET_CHOICES = click.Choice(["auto", "minute", "5m", "hour", "day"])


def reading(func: F) -> F:
    """The options every reading command has: store, range, filters, --json, clean errors."""
    return common_options(range_options(json_option(friendly_errors(func))))


def ask(name: str, options: dict[str, Any]) -> tuple[pl.DataFrame, bool]:
    """Run catalog entry ``name`` with the command's options; also say whether JSON is wanted."""
    config, db = resolve_config(options.pop("config_file"), options.pop("db_path"))
    since, until = options.pop("since"), options.pop("until")
    as_json = bool(options.pop("as_json"))
    values = {k: v for k, v in options.items() if v is not None}
    return read_query(config, db, name, since, until, values), as_json


def show(
    frame: pl.DataFrame, as_json: bool, columns: Sequence[tuple[str, str, Cell]], empty: str
) -> None:
    if as_json:
        click.echo(json.dumps(output.records(frame)))
    else:
        output.print_table(frame, columns, empty=empty)


CLUSTER_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("method", "method", text),
    ("route", "route", text),
    ("status", "status", text),
    ("error_code", "error code", text),
    ("kind", "kind", text),
    ("conflicts", "conflicts", count),
    ("requests", "requests", count),
    ("ratio", "ratio", percent),
)

TIMELINE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("bucket", "bucket (UTC)", when),
    *(c for c in CLUSTER_COLUMNS if c[0] != "status"),
    ("share", "share", percent),
)


@click.command()
@reading
@click.option("--limit", default=50, show_default=True, help="At most this many clusters.")
@click.option("--over-time", is_flag=True, help="One row per cluster and time bucket.")
@click.option(
    "--bucket",
    type=BUCKET_CHOICES,
    help="With --over-time: the bucket width (default: chosen from the range).",
)
def clusters(**options: Any) -> None:
    """Conflicts grouped by method, route template, status and error code, with ratios.

    With --over-time, the same per time bucket (minute, 5m, hour or day by the range's span),
    with each cluster's share of the bucket's conflicts.

    Example:

        conflictlens clusters --since 24h --method PUT --json
    """
    over_time, bucket = options.pop("over_time"), options.pop("bucket")
    if over_time:
        options.pop("limit")
        frame, as_json = ask("timeline", {**options, "bucket": bucket})
        show(frame, as_json, TIMELINE_COLUMNS, "no conflicts in this range")
        return
    frame, as_json = ask("clusters", options)
    show(frame, as_json, CLUSTER_COLUMNS, "no conflicts in this range")


HOTSPOT_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("method", "method", text),
    ("route", "route", text),
    ("error_code", "error code", text),
    ("conflicts", "conflicts", count),
    ("requests", "requests", count),
    ("ratio", "ratio", percent),
    ("baseline", "baseline", decimal),
    ("score", "score", decimal),
    ("new", "new", yes),
)


@click.command()
@reading
@click.option(
    "--sort",
    type=click.Choice(["growth", "volume", "ratio", "new"]),
    default="growth",
    show_default=True,
    help="growth: score against the baseline; ratio: only clusters past --min-conflicts "
    "and --min-requests rank; new: first seen in the range.",
)
@click.option(
    "--min-conflicts",
    type=int,
    default=5,
    show_default=True,
    help="Fewer conflicts (and a baseline below this): sparse, not scored or ranked by ratio.",
)
@click.option(
    "--min-requests",
    type=int,
    default=20,
    show_default=True,
    help="Fewest requests for --sort ratio.",
)
@click.option("--limit", default=20, show_default=True, help="At most this many clusters.")
def hotspots(**options: Any) -> None:
    """The clusters that matter: growing against their baseline, busiest, worst ratio, or new.

    The range defaults to the last 24 hours of data. The baseline is the same period in
    past weeks (median and MAD) when three weeks of history exist, else the periods before
    it, else the range's own buckets; the score is the period's or its busiest bucket's.

    Example:

        conflictlens hotspots --since 24h --sort ratio --json
    """
    frame, as_json = ask("hotspots", options)
    show(frame, as_json, HOTSPOT_COLUMNS, "no conflicts in this range")


RESOURCE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("method", "method", text),
    ("route", "route", text),
    ("resource", "resource", text),
    ("conflicts", "conflicts", count),
    ("peak_conflicts", "peak", count),
    ("peak_start", "peak at (UTC)", when),
    ("clients", "clients", count),
    ("max_overlap", "in flight", count),
    ("top_error_code", "error code", text),
)


@click.command()
@reading
@click.option("--resource", help="Only this resource (ids joined by '/', e.g. 7/3).")
@click.option(
    "--by",
    type=click.Choice(["peak", "conflicts"]),
    default="peak",
    show_default=True,
    help="peak: most conflicts in one bucket (a fight); conflicts: most in the whole range.",
)
@click.option(
    "--per-route", type=int, default=5, show_default=True, help="At most this many per route."
)
@click.option("--limit", default=20, show_default=True, help="At most this many resources.")
def resources(**options: Any) -> None:
    """Hot resources: the single ids clients fight over, with clients and overlapping writes.

    Example:

        conflictlens resources --route '/api/v2/documents/{hex}' --json
    """
    frame, as_json = ask("resources", options)
    show(frame, as_json, RESOURCE_COLUMNS, "no conflicts on identified resources in this range")


STORM_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("client", "client", text),
    ("method", "method", text),
    ("route", "route", text),
    ("resource", "resource", text),
    ("count", "tries", count),
    ("start", "start (UTC)", when),
    ("end", "end (UTC)", when),
    ("median_interval_ms", "interval ms", decimal),
    ("resolution_ms", "stamped to", resolution),
    ("user_agent", "user agent", text),
)


@click.command()
@reading
@click.option("--min-count", type=int, default=5, show_default=True, help="Fewest tries.")
@click.option(
    "--max-gap",
    "max_gap_s",
    type=float,
    default=10.0,
    show_default=True,
    help="Most seconds between two tries of one storm.",
)
@click.option("--limit", default=20, show_default=True, help="At most this many storms.")
def storms(**options: Any) -> None:
    """Retry storms: a client repeating a conflicting request without backing off.

    Example:

        conflictlens storms --since 2h --min-count 10
    """
    frame, as_json = ask("storms", options)
    show(frame, as_json, STORM_COLUMNS, "no retry storms in this range")


INCIDENT_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("start", "start (UTC)", when),
    ("end", "end (UTC)", when),
    ("conflicts", "conflicts", count),
    ("peak_ratio", "peak ratio", percent),
    ("times_usual", "x usual", decimal),
    ("involved", "clusters", text),
    ("change", "after", text),
)


@click.command()
@reading
@click.option("--bucket", type=BUCKET_CHOICES, help="Bucket width (default: from the range).")
@click.option(
    "--threshold",
    type=float,
    default=4.0,
    show_default=True,
    help="Robust spreads above baseline.",
)
def incidents(**options: Any) -> None:
    """Incidents: windows in which one or more clusters rose together, newest first.

    The range defaults to the last 24 hours of data.

    Example:

        conflictlens incidents --since 7d --json
    """
    frame, as_json = ask("incidents", options)
    if not as_json and frame.height:
        frame = frame.with_columns(involved=_involved(frame), change=_change(frame))
    show(frame, as_json, INCIDENT_COLUMNS, "no incidents in this range")


def _involved(frame: pl.DataFrame) -> pl.Series:
    return pl.Series(
        [
            "; ".join(
                f"{c['method']} {c['route']} {c['error_code'] or '-'}" for c in row["clusters"]
            )
            for row in frame.iter_rows(named=True)
        ]
    )


def _change(frame: pl.DataFrame) -> pl.Series:
    """ "began 3 min after orders v1.42", where an annotation preceded the incident."""
    return pl.Series(
        [
            None
            if row.get("annotation") is None
            else f"began {row['minutes_after_annotation']} min after {row['annotation']}"
            for row in frame.iter_rows(named=True)
        ],
        dtype=pl.String,
    )


COMMANDS = (clusters, hotspots, resources, storms, incidents)
