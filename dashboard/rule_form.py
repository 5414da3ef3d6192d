"""The Alerts page's rule editor: form fields for one [[alerts.rules]] table, filled from the
rule being edited, and the table they describe (defaults left out, as a person would write
it). Validation is the config loader's, where the rule is backtested or saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from conflictlens.analysis.alerts.rules import MATCH_KEYS, METRICS, SEVERITIES

CONDITIONS = ("anomaly", "above")
# Keys a rule may carry that the form has no field for: kept as they are when it is saved.
_KEPT = ("labels",)
_DEFAULTS = {"for": "0s", "keep_firing_for": "0s", "repeat_interval": "4h"}


def rule_fields(start: Mapping[str, Any], channels: Sequence[str], key: str) -> dict[str, Any]:
    """Draw the fields (inside a form) with ``start``'s values; the rule table they give.
    ``key`` tells the rules apart, so picking another rule fills the fields again."""
    name = st.text_input("Name", start.get("name", ""), key=f"name-{key}")
    left, middle, right = st.columns(3)
    metric = left.selectbox(
        "Metric", METRICS, _index(METRICS, start.get("metric", "ratio")), key=f"metric-{key}"
    )
    window = middle.text_input("Window", start.get("window", "5m"), key=f"window-{key}")
    severity = right.selectbox(
        "Severity",
        SEVERITIES,
        _index(SEVERITIES, start.get("severity", "warning")),
        key=f"sev-{key}",
    )
    condition = left.radio(
        "Fires when the value is",
        CONDITIONS,
        index=0 if "above" not in start else 1,
        format_func=lambda c: (
            "above the baseline by k spreads" if c == "anomaly" else "above a fixed level"
        ),
        key=f"cond-{key}",
    )
    level = middle.number_input(
        "k (anomaly) or level (above; a ratio is 0 to 1)",
        min_value=0.0,
        value=float(start.get("anomaly", start.get("above", 4.0))),
        step=0.01,
        format="%g",
        key=f"level-{key}",
    )
    least = right.number_input(
        "Minimum requests in the window",
        min_value=0,
        value=int(start.get("min_requests", 0)),
        key=f"min-{key}",
    )
    timing = dict(zip(_DEFAULTS, st.columns(3), strict=True))
    durations = {
        field: column.text_input(
            field.replace("_", " "), start.get(field, default), key=f"{field}-{key}"
        )
        for (field, default), column in zip(_DEFAULTS.items(), timing.values(), strict=True)
    }
    st.caption("Match (globs with * and ?; empty matches everything)")
    given = start.get("match", {})
    match = {
        field: column.text_input(field, given.get(field, ""), key=f"match-{field}-{key}")
        for field, column in zip(MATCH_KEYS, st.columns(len(MATCH_KEYS)), strict=True)
    }
    group_by = st.multiselect(
        "One alert per",
        MATCH_KEYS,
        [k for k in start.get("group_by", []) if k in MATCH_KEYS],
        key=f"group-{key}",
    )
    chosen = st.multiselect(
        "Notify",
        channels,
        [c for c in start.get("channels", []) if c in channels],
        key=f"channels-{key}",
    )
    annotations = dict(start.get("annotations", {}))
    summary = st.text_input(
        "Summary (sent with each notification)",
        annotations.get("summary", ""),
        key=f"summary-{key}",
    )
    table: dict[str, Any] = {"name": name.strip()}
    if any(v.strip() for v in match.values()):
        table["match"] = {k: v.strip() for k, v in match.items() if v.strip()}
    if group_by:
        table["group_by"] = list(group_by)
    table.update(metric=metric, window=window.strip(), **{condition: level})
    if least:
        table["min_requests"] = int(least)
    table.update(
        {k: v.strip() for k, v in durations.items() if v.strip() not in ("", _DEFAULTS[k])}
    )
    if severity != "warning":
        table["severity"] = severity
    table.update({k: start[k] for k in _KEPT if k in start})
    annotations.pop("summary", None)
    if summary.strip():
        annotations["summary"] = summary.strip()
    if annotations:
        table["annotations"] = annotations
    if chosen:
        table["channels"] = list(chosen)
    return table


def _index(options: Sequence[str], value: str) -> int:
    return list(options).index(value) if value in options else 0
