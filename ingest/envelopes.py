"""Container log envelopes around access-log lines, removed before parsing.

Gateways on Docker or Kubernetes often reach us through the container runtime's log files:
- Docker's json-file driver: ``{"log":"<line>\\n","stream":"stdout","time":"..."}``;
- CRI (containerd, CRI-O, Kubernetes /var/log/containers): ``<RFC3339 time> stdout F <line>``.

A chunk is unwrapped only when its first line has such an envelope (a file is written by one
runtime), and only the lines that have one; offsets stay those of the wrapped lines.
"""

from __future__ import annotations

import polars as pl

DOCKER_PREFIX = '{"log":'
CRI_LINE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr) [FP] "


def envelope_of(first_line: str) -> str | None:
    """Which envelope a file's first line has: "docker", "cri" or None."""
    if first_line.startswith(DOCKER_PREFIX):
        return "docker"
    if pl.Series([first_line]).str.contains(CRI_LINE).item():
        return "cri"
    return None


def unwrap(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` (columns line, offset) with container envelopes removed, where there are any."""
    if lines.height == 0:
        return lines
    kind = envelope_of(lines["line"][0])
    if kind == "docker":
        wrapped = pl.col("line").str.starts_with(DOCKER_PREFIX)
        inner = pl.col("line").str.json_path_match("$.log")
    elif kind == "cri":
        wrapped = pl.col("line").str.contains(CRI_LINE)
        inner = pl.col("line").str.replace(CRI_LINE, "")
    else:
        return lines
    # A wrapped line that does not decode stays as it is, and is rejected by the format.
    return lines.with_columns(
        line=pl.when(wrapped & inner.is_not_null()).then(inner).otherwise(pl.col("line"))
    )
