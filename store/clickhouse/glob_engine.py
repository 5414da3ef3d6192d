"""The alert queries (analysis/alerts: counts, payload) on ClickHouse: DuckDB's ``GLOB``
(the rules' match patterns), which ClickHouse has not, runs as ``match(column, regex)`` with
the pattern turned into the anchored RE2 expression it stands for; ``array_to_string`` and
``len`` of a list, which sqlglot does not map, become arrayStringConcat and length.

(For the integrator: these belong in store/clickhouse/engine.py's translation; they are
here so that the engine's module, still being worked on, is not edited twice.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl

from conflictlens.store.clickhouse.engine import ClickHouseEngine

_GLOB = re.compile(r"(\w+) GLOB \$(\w+)::VARCHAR")
_REWRITES = (
    (re.compile(r"\barray_to_string\("), "arrayStringConcat("),
    (re.compile(r"\blen\((\w+)\) > 0"), r"notEmpty(\1)"),
)


def glob_regex(pattern: str) -> str:
    """``*`` any run, ``?`` one character, ``[...]`` a class (``[!...]`` negated); the rest
    literal; the whole value must match."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            inner = pattern[i + 1 : end]
            negate = inner.startswith("!")
            body = inner[1:] if negate else inner
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + "$"


class GlobEngine(ClickHouseEngine):
    """ClickHouseEngine that also answers the alert queries' GLOB matches."""

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        for pattern, replacement in _REWRITES:
            text = pattern.sub(replacement, text)
        names = {name for _, name in _GLOB.findall(text)}
        if not names:
            return super().sql(text, params)
        values = dict(params or {})
        for name in names:
            if isinstance(values.get(name), str):
                values[name] = glob_regex(values[name])
        return super().sql(_GLOB.sub(r"regexp_matches(\1, $\2::VARCHAR)", text), values)
