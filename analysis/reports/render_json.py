"""The report as JSON: the builder's data as it is (times ISO-8601 with offset)."""

from __future__ import annotations

import json

from conflictlens.analysis.reports.build import Report


def render_json(report: Report) -> str:
    return json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
