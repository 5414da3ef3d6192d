"""Container log envelopes around access-log lines, removed before parsing.

Gateways on Docker or Kubernetes often reach us through the container runtime's log files:
- Docker's json-file driver: ``{"log":"<line>\\n","stream":"stdout","time":"..."}``;
- CRI (containerd, CRI-O, Kubernetes /var/log/containers): ``<RFC3339 time> stdout F <line>``;
- ``docker compose logs``: ``<service>-<n>  | <line>`` (``<service>_<n>`` with docker-compose
  v1), the names padded to one width;
- ``kubectl logs --prefix``: ``[pod/<pod>/<container>] <line>``;
- stern: ``<pod> <container> <line>``, for JSON lines.

A chunk is unwrapped only when its first line has such an envelope (a file is written by one
runtime), and only the lines that have one; offsets stay those of the wrapped lines.
"""

from __future__ import annotations

import polars as pl

DOCKER_PREFIX = '{"log":'
CRI_LINE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr) [FP] "
# (with the time docker adds for `docker compose logs -t`)
COMPOSE_LINE = (
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*[-_][0-9]+ *\| (?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z )?"
)
KUBECTL_LINE = r"^\[pod/[^\]\s/]+/[^\]\s/]+\] "
# stern's "<pod> <container> <message>", taken only before a JSON message: two lower-case
# words before a text line could be the line's own fields.
STERN_LINE = r"^[a-z0-9][a-z0-9.-]* [a-z0-9][a-z0-9-]* \{"
# Prefixes removed by a regex: the envelope's name and the pattern of its prefix.
PREFIXES = {"cri": CRI_LINE, "compose": COMPOSE_LINE, "kubectl": KUBECTL_LINE, "stern": STERN_LINE}
# What a prefix is replaced by: the part of the line its regex had to see (no look-ahead in
# Polars' regexes).
KEPT = {"stern": "{"}


def envelope_of(first_line: str) -> str | None:
    """Which envelope a file's first line has: "docker", a name in PREFIXES, or None."""
    if first_line.startswith(DOCKER_PREFIX):
        return "docker"
    line = pl.Series([first_line])
    return next((name for name, rx in PREFIXES.items() if line.str.contains(rx).item()), None)


def unwrap(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` (columns line, offset) with container envelopes removed, where there are any."""
    if lines.height == 0:
        return lines
    kind = envelope_of(lines["line"][0])
    if kind == "docker":
        wrapped = pl.col("line").str.starts_with(DOCKER_PREFIX)
        inner = pl.col("line").str.json_path_match("$.log")
    elif kind in PREFIXES:
        wrapped = pl.col("line").str.contains(PREFIXES[kind])
        inner = pl.col("line").str.replace(PREFIXES[kind], KEPT.get(kind, ""), literal=False)
    else:
        return lines
    # A wrapped line that does not decode stays as it is, and is rejected by the format.
    return lines.with_columns(
        line=pl.when(wrapped & inner.is_not_null()).then(inner).otherwise(pl.col("line"))
    )
