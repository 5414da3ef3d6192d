"""Incidents as the pages show them: one plain row each (when, which endpoints and error codes,
conflicts, peak ratio against the usual one, the deploy it began after) and the query of the
incident's own view.

The catalog's ``incidents`` query gains these columns with issue 19's backend (requests,
usual_ratio, times_usual, endpoints, error_codes, annotation, minutes_after_annotation); until
then they are worked out here from the clusters each incident lists and from the
``annotations`` query when the catalog has it (absent, no deploy is named).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from conflictlens.analysis.catalog import QUERIES
from conflictlens.dashboard.data import ask
from conflictlens.dashboard.filters import View
from conflictlens.dashboard.state import cluster_param, iso

ANNOTATION_WINDOW = dt.timedelta(hours=2)  # a deploy longer before an incident is not named
AROUND = dt.timedelta(minutes=30)  # an incident's view shows this much on each side


def has_annotations() -> bool:
    return "annotations" in QUERIES


def deploy_notes(since: str | None, until: str | None, service: str | None = None) -> pl.DataFrame:
    """Deploys and other annotations in the range (at, text, service); none without the
    backend's ``annotations`` query."""
    if not has_annotations():
        return pl.DataFrame(schema={"at": pl.Datetime("us"), "text": pl.String})
    found = ask("annotations", since, until, service=service)
    if "at" in found.columns and isinstance(found.schema["at"], pl.Datetime):
        found = found.with_columns(pl.col("at").dt.replace_time_zone(None))
    return found


def incident_rows(view: View) -> list[dict[str, Any]]:
    """The incidents overlapping the view, newest first, each a plain dict for a card."""
    found = ask("incidents", view.since, view.until, **view.filters)
    if found.height == 0:
        return []
    notes = _notes_before(found)
    return [_row(incident, notes) for incident in found.iter_rows(named=True)]


def _notes_before(found: pl.DataFrame) -> pl.DataFrame:
    if "minutes_after_annotation" in found.columns or not has_annotations():
        return pl.DataFrame()
    start = found["start"].min()
    end = found["end"].max()
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return pl.DataFrame()
    return deploy_notes(iso(start - ANNOTATION_WINDOW), iso(end))


def _row(incident: dict[str, Any], notes: pl.DataFrame) -> dict[str, Any]:
    clusters = incident.get("clusters") or []
    start, end = _naive(incident["start"]), _naive(incident["end"])
    endpoints = incident.get("endpoints") or _unique(
        f"{c['method']} {c['route']}" for c in clusters
    )
    codes = incident.get("error_codes") or _unique(c.get("error_code") or "-" for c in clusters)
    usual = incident.get("usual_ratio")
    if usual is None:
        usual = _usual(clusters, incident.get("peak_ratio"))
    times = incident.get("times_usual")
    if times is None and usual and incident.get("peak_ratio") is not None:
        times = incident["peak_ratio"] / usual
    note, minutes = incident.get("annotation"), incident.get("minutes_after_annotation")
    if note is None and notes.height:
        note, minutes = _latest_note(notes, start)
    return {
        "start": start,
        "end": end,
        "conflicts": incident.get("conflicts"),
        "requests": incident.get("requests"),
        "peak_ratio": incident.get("peak_ratio"),
        "usual_ratio": usual,
        "times_usual": times,
        "endpoints": list(endpoints),
        "error_codes": list(codes),
        "clusters": [cluster_param(c["method"], c["route"], c.get("error_code")) for c in clusters],
        "annotation": note,
        "minutes_after_annotation": minutes,
    }


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


def _usual(clusters: list[dict[str, Any]], peak: float | None) -> float | None:
    """The usual ratio of the cluster that peaked highest (the incident's peak is its)."""
    rated = [c for c in clusters if c.get("peak_ratio") is not None]
    if not rated:
        return None
    top = max(rated, key=lambda c: c["peak_ratio"])
    usual = top.get("baseline_ratio")
    return float(usual) if usual else None


def _latest_note(notes: pl.DataFrame, start: dt.datetime) -> tuple[str | None, float | None]:
    before = notes.filter(
        (pl.col("at") <= start) & (pl.col("at") >= start - ANNOTATION_WINDOW)
    ).sort("at")
    if before.height == 0:
        return None, None
    last = before.row(-1, named=True)
    return str(last["text"]), (start - last["at"]).total_seconds() / 60


def card_title(row: dict[str, Any]) -> str:
    """``2026-11-19 15:35\N{EN DASH}15:50 UTC``."""
    start, end = row["start"], row["end"]
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M}\N{EN DASH}{until} UTC"


def card_numbers(row: dict[str, Any]) -> str:
    """The incident's size against normal, in one line of plain text."""
    parts = [f"{row['conflicts']:,} conflicts" if row["conflicts"] is not None else ""]
    if row["peak_ratio"] is not None:
        peak = f"peak {row['peak_ratio']:.1%} of requests"
        if row["usual_ratio"]:
            peak += f" against a usual {row['usual_ratio']:.1%}"
        parts.append(peak)
    if row["times_usual"]:
        parts.append(f"\N{MULTIPLICATION SIGN}{row['times_usual']:.1f} vs usual")
    return " · ".join(p for p in parts if p)


def began_after(row: dict[str, Any]) -> str | None:
    """``began 3 min after orders v1.42`` when a deploy came shortly before it."""
    if not row["annotation"] or row["minutes_after_annotation"] is None:
        return None
    return f"began {row['minutes_after_annotation']:.0f} min after {row['annotation']}"


def incident_query(row: dict[str, Any]) -> dict[str, Any]:
    """The incident's own view: its window and clusters, shown with some time around."""
    return {
        "since": iso(row["start"] - AROUND),
        "until": iso(row["end"] + AROUND),
        "from": iso(row["start"]),
        "to": iso(row["end"]),
        "cluster": row["clusters"],
    }


def requests_query(row: dict[str, Any]) -> dict[str, Any]:
    """Explore's query for the incident's requests: its window, its clusters."""
    return {"since": iso(row["start"]), "until": iso(row["end"]), "cluster": row["clusters"]}
