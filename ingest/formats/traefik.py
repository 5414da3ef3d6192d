"""Traefik's ``common`` access-log format: CLF plus request count, router, server URL, duration.

    <client> - <user> [<time>] "<method> <path> <protocol>" <status> <size> "<referer>" "<user agent>" <count> "<router>" "<server URL>" <duration>ms

Old Traefik versions write a bare ``-`` referrer and ``- -`` for status and size when Traefik
answered itself; a field Traefik has no value for (or drops by its field rules) is ``-``, the
time included, and no version before 2026 escapes quotes inside quoted fields, so a ``"`` in
a User-Agent is common: the fixed tail (``<count> "<router>" "<url>" <n>ms``) is what anchors a
line. The main regex is one-pass; the rare line with a raw quote is re-parsed on its own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from conflictlens.ingest.formats.clf import ClfFormat
from conflictlens.ingest.formats.fields import convert, reject_reason

TRAEFIK_COMMON = (
    '<client> - <user> [<time>] "<request>" <status> <size> "<referer>" "<user agent>" '
    '<request count> "<router name>" "<server URL>" <duration>ms'
)

_HEAD = r"^(?P<client>\S+) \S+ \S+ \[(?P<time_clf>[^\]]*)\] "
# The request count, router and server URL are "-" (the count unquoted, the others quoted or
# not, by version) when Traefik has none to log.
_TAIL = (
    r' (?:[0-9]+|-) (?:"(?P<service>[^"]*)"|-) (?:"(?P<upstream>[^"]*)"|-) '
    r"(?P<latency_ms>[0-9]+(?:\.[0-9]+)?)ms\r?\n?$"
)

# One pass: every field stops at a byte that cannot occur inside it.
TRAEFIK_REGEX = (
    _HEAD
    + r'"(?P<request>[^"]*)" (?P<status>[0-9]+|-) (?P<bytes>[0-9]+|-) '
    + r'(?:"[^"]*"|-) (?:"(?P<user_agent>[^"]*)"|-)'
    + _TAIL
)
# Only for the lines the main regex missed: unescaped quotes inside the request, referrer or
# user agent. The user agent takes what is left up to the fixed tail.
TRAEFIK_QUOTES_REGEX = (
    _HEAD
    + r'"(?P<request>.*?)" (?P<status>[0-9]+|-) (?P<bytes>[0-9]+|-) '
    + r'(?:".*?"|-) (?:"(?P<user_agent>.*)"|-)'
    + _TAIL
)
# A plain Apache/nginx common or combined line in a Traefik log (Filebeat's Traefik module
# accepts them). Only taken when most lines of the same frame are Traefik's own, so that a plain
# nginx or Apache log is never detected as Traefik.
PLAIN_CLF_REGEX = (
    _HEAD
    + r'"(?P<request>[^"]*)" (?P<status>[0-9]+|-) (?P<bytes>[0-9]+|-)'
    + r'(?: (?:"[^"]*"|-) (?:"(?P<user_agent>[^"]*)"|-))?\r?\n?$'
)

TRAEFIK_FIELDS = (
    "latency_ms",  # first: it is what tells a Traefik line from a plain CLF line
    "client",
    "time_clf",
    "request",
    "status",
    "bytes",
    "user_agent",
    "service",
    "upstream",
)


@dataclass(frozen=True)
class TraefikClfFormat(ClfFormat):
    """Traefik ``common``: router name → service, the server URL's host and port → upstream,
    duration → latency."""

    plain: str = PLAIN_CLF_REGEX
    # Plain CLF lines are events only when Traefik's own lines are at least this share of the
    # frame's non-empty lines.
    plain_min_share: float = 0.5

    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        groups = pl.col("line").str.extract_groups(self.regex)
        frame = lines.with_columns(groups.alias("_groups")).unnest("_groups")
        frame = frame.with_columns(pl.col("latency_ms").is_not_null().alias("_matched"))
        if self.fallback is not None:
            frame = self._retry_with_prefix(frame, self.fallback)
        frame = self._plain_lines(frame)
        # The server URL's address is the upstream: http://10.0.0.2:80/x → 10.0.0.2:80; a size
        # of "-" is one Traefik did not log (not Apache's "no bytes").
        frame = frame.with_columns(
            pl.col("upstream").str.replace(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*).*$", "$1"),
            pl.when(pl.col("bytes") != "-").then(pl.col("bytes")).alias("bytes"),
        )
        frame = convert(frame, set(self.fields), list(self.unescape))
        return frame.with_columns(reject=reject_reason(pl.col("_matched"), self.name))

    def _plain_lines(self, frame: pl.DataFrame) -> pl.DataFrame:
        if frame["_matched"].all():
            return frame
        non_empty = int((frame["line"].str.strip_chars_end("\r\n") != "").sum())
        traefik = int(frame["_matched"].sum())
        if non_empty == 0 or traefik < self.plain_min_share * non_empty:
            return frame
        frame = self._retry_with_prefix(frame, self.plain)
        return frame.with_columns(pl.col("time_clf").is_not_null().alias("_matched"))


TRAEFIK_CLF = TraefikClfFormat(
    name="traefik-clf",
    source=TRAEFIK_COMMON,
    regex=TRAEFIK_REGEX,
    fields=TRAEFIK_FIELDS,
    fallback=TRAEFIK_QUOTES_REGEX,
)
