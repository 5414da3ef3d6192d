"""Analysis: the one query catalog over the store. Nothing else writes SQL against its tables."""

from analysis.catalog import QUERIES, Query, TimeRange, run_query

__all__ = ["QUERIES", "Query", "TimeRange", "run_query"]
