"""Container log envelopes around access-log lines, removed before parsing.

Gateways on Docker or Kubernetes often reach us through the container runtime's log files:
- Docker's json-file driver: ``{"log":"<line>\\n","stream":"stdout","time":"..."}``;
- CRI (containerd, CRI-O, Kubernetes /var/log/containers): ``<RFC3339 time> stdout F <line>``;
- ``docker compose logs``: ``<service>-<n>  | <line>`` (``<service>_<n>`` with docker-compose
  v1), the names padded to one width; ``docker service logs`` likewise, with
  ``<service>.<n>.<task>@<node>``;
- ``kubectl logs --prefix``: ``[pod/<pod>/<container>] <line>``;
- ``kubectl logs --timestamps``: ``<RFC3339 time> <line>``, for JSON and Envoy lines;
- stern: ``<pod> <container> <line>``, for JSON and Envoy lines;
- Knative's test log stream: ``<namespace>/<pod>[<container>]: <line>``, likewise.

A chunk is unwrapped only when its first line has such an envelope (a file is written by one
runtime), and only the lines that have one; offsets stay those of the wrapped lines.
"""

from __future__ import annotations

import polars as pl

DOCKER_PREFIX = '{"log":'
CRI_LINE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr) [FP] "
# (with the time docker adds for `docker compose logs -t`)
# (and `docker service logs`: ``<service>.<n>.<task id>@<node>``)
COMPOSE_LINE = (
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?:[-_][0-9]+|\.[0-9]+\.[a-z0-9]+@[A-Za-z0-9_.-]+) *\| "
    r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z )?"
)
KUBECTL_LINE = r"^\[pod/[^\]\s/]+/[^\]\s/]+\] "
# The prefixes below are taken only before a JSON message or an Envoy line ("[" and a date,
# after Ambassador's "ACCESS " maybe): before other text lines, a time or two lower-case words
# could be the line's own fields (a classic ELB line starts with its time).
_JSON_OR_ENVOY = r"(\{|(?:ACCESS )?\[[0-9]{4}-)"
KUBECTL_TIME_LINE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z " + _JSON_OR_ENVOY
STERN_LINE = r"^[a-z0-9][a-z0-9.-]* [a-z0-9][a-z0-9-]* " + _JSON_OR_ENVOY
KNATIVE_LINE = r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9.-]*\[[a-z0-9][a-z0-9-]*\]: " + _JSON_OR_ENVOY
# Prefixes removed by a regex: the envelope's name and the pattern of its prefix, in the order
# they are tried (CRI's time is followed by the stream, so it goes before kubectl's).
PREFIXES = {
    "cri": CRI_LINE,
    "compose": COMPOSE_LINE,
    "kubectl": KUBECTL_LINE,
    "kubectl-timestamps": KUBECTL_TIME_LINE,
    "stern": STERN_LINE,
    "knative": KNATIVE_LINE,
}
# What a prefix is replaced by: the part of the line its regex had to see (no look-ahead in
# Polars' regexes), captured as its first group.
KEPT = {name: "${1}" for name in ("kubectl-timestamps", "stern", "knative")}


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
