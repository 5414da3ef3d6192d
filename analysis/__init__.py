"""Analysis: the one query catalog over the store. Nothing else writes SQL against its tables."""

from conflictlens.analysis.catalog import ANALYSES, PARAM_TYPES, QUERIES, Analysis, Query, run_query
from conflictlens.analysis.params import FILTERS, AnalysisError, Filters, TimeRange

__all__ = [
    "ANALYSES",
    "FILTERS",
    "PARAM_TYPES",
    "QUERIES",
    "Analysis",
    "AnalysisError",
    "Filters",
    "Query",
    "TimeRange",
    "run_query",
]

import conflictlens.analysis.reports.queries  # noqa: F401 - registers the report queries
