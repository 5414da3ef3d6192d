"""HAProxy ``option httplog`` lines, behind whatever syslog header carried them.

    %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r

* The syslog header varies (RFC 3164 ``Jul 30 09:03:52 host haproxy[pid]:`` with or without a
  host and a ``<PRI>``, ISO ``2021-12-15T16:55:18+01:00 host haproxy[pid]:``, RFC 5424
  ``<134>1 2024-06-20T11:47:56.817934+02:00 - haproxy 266980 - -``, or none): the message is
  taken from the client token before the accept date.
* The accept date ``[30/Jul/2018:09:03:52.726]`` (request start) has no zone: taken as UTC.
* Timers are in ms, ``-1`` when a phase was never reached; ``+`` marks a lower bound (``option
  logasap``). latency = ``Ta``, null when ``-1`` or a lower bound.
* Operators insert fields before the timers (a host name): skipped.
* 0, 1 or 2 capture blocks ``{...|...}``. With two, the second holds the response headers, and
  its first header is the error code (``capture response header X-Error-Code len 64`` declared
  first); with one, the block cannot be told apart, so no error code is read from it.
* ``"``, ``#``, ``{``, ``|``, ``}`` and non-printable bytes are written ``#XX``; an unparsable
  request is ``"<BADREQ>"``, and a request line cut at HAProxy's length limit has no closing
  quote.

backend → service, server → upstream (``<NOSRV>``, ``<STATS>`` and the like → none).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from conflictlens.ingest.formats.clf import ClfFormat
from conflictlens.ingest.formats.fields import NO_REQUEST, convert, reject_reason

HAPROXY_HTTPLOG = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc "
    "%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"
)

# Where the HAProxy message starts, after any syslog header: the client token before the
# accept date. Found first (a plain DFA search, no captures), so that the regex below can be
# anchored there and run in one pass: each field stops at a byte it cannot hold.
HAPROXY_BODY_START = r"\S+ \[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:"
HAPROXY_REGEX = (
    r"^(?P<client_hostport>\S+) "
    r"\[(?P<time_nozone>[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?)\] "
    r"\S+ (?P<service>[^\s/]*)/(?P<upstream>\S+) "
    # Optional extra fields, then TR: space-separated tokens without "/", ended by the first "/".
    r"[^\s/]+(?: [^\s/]+)*/-?[0-9]+/-?[0-9]+/-?[0-9]+/(?P<ta>\+?-?[0-9]+) +"
    r"(?P<status>-?[0-9]+) (?P<bytes>\+?[0-9]+) "
    # cookies, termination state, connection counts, queues
    r"\S+ \S+ \S+ \S+ \S+ "
    r"(?:\{[^}\r\n]*\} (?:\{(?P<captures_2>[^}\r\n]*)\} )?)?"
    # The request line, maybe cut at the length limit (no closing quote). What follows the
    # closing quote (TLS fields) is not needed: the match ends there.
    r'"(?P<request>[^"\r\n]*)(?:"|\r?\n?$)'
)

# ``option tcplog`` (a TCP-mode proxy): timers Tw/Tc/Tt, bytes, termination state, counts and
# queues, and no request: the proxy's own entry, without an HTTP request to store.
HAPROXY_TCPLOG_REGEX = (
    r"^\S+ \[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:.]+\] \S+ [^\s/]*/\S+ "
    r"-?[0-9]+/-?[0-9]+/\+?-?[0-9]+ \+?[0-9]+ \S\S [0-9]+/[0-9]+/[0-9]+/[0-9]+/\+?[0-9]+ "
    r"[0-9]+/[0-9]+\s*$"
)

HAPROXY_FIELDS = (
    "time_nozone",
    "client",
    "service",
    "upstream",
    "latency_ms",
    "status",
    "bytes",
    "request",
    "error_code",
)

# A request id, not an error code: a UUID or a long hex string.
_AN_ID = r"^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,})$"

_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def unescape_haproxy(value: str) -> str:
    """``#22`` → ``"``; escaped bytes are re-assembled, so an escaped UTF-8 sequence decodes."""
    raw = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def unescape_hash_columns(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Decode ``#XX`` in the few values that hold one; the rest pass through untouched."""
    for name in columns:
        column = frame[name]
        mask = column.str.contains(r"#[0-9A-Fa-f]{2}").fill_null(False)
        if not mask.any():
            continue
        rows = mask.arg_true()
        fixed = [unescape_haproxy(v) for v in column.gather(rows).to_list()]
        frame = frame.with_columns(column.scatter(rows, pl.Series(fixed, dtype=pl.String)))
    return frame


@dataclass(frozen=True)
class HaproxyFormat(ClfFormat):
    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        line = pl.col("line")
        # str.find gives a byte offset: slice the bytes (the offset is a character boundary).
        body = line.cast(pl.Binary).bin.slice(line.str.find(HAPROXY_BODY_START)).cast(pl.String)
        frame = lines.with_columns(body.str.extract_groups(self.regex).alias("_groups"))
        frame = frame.unnest("_groups")
        frame = frame.with_columns(pl.col("time_nozone").is_not_null().alias("_matched"))
        ta, status = pl.col("ta"), pl.col("status")
        frame = frame.with_columns(
            # ip:port, [v6]:port, an IPv6 address with its port glued on, -:port (no address)
            pl.col("client_hostport")
            .str.replace(r":[0-9]+$", "")
            .str.strip_prefix("[")
            .str.strip_suffix("]")
            .alias("client"),
            # <NOSRV>, <STATS>, <lua.x>: HAProxy answered itself, no server did
            pl.when(~pl.col("upstream").str.starts_with("<"))
            .then(pl.col("upstream"))
            .alias("upstream"),
            # A lower bound ("+") or a phase never reached ("-1") is no latency.
            pl.when(ta.str.contains(r"^[0-9]+$")).then(ta).alias("latency_ms"),
            # -1: no response was sent, like "-" elsewhere (status 0)
            pl.when(status == "-1").then(pl.lit("-")).otherwise(status).alias("status"),
            pl.col("bytes").str.strip_prefix("+"),
            # (the header is a guess from the capture's position: an id is not a code)
            pl.col("captures_2")
            .str.split("|")
            .list.first()
            .pipe(lambda code: pl.when(~code.str.contains(_AN_ID)).then(code))
            .alias("error_code"),
        )
        frame = unescape_hash_columns(frame, ["request", "error_code"])
        frame = convert(frame, set(self.fields), [])
        tcp = ~pl.col("_matched") & body.str.contains(HAPROXY_TCPLOG_REGEX).fill_null(False)
        return frame.with_columns(
            reject=pl.when(tcp)
            .then(pl.lit(NO_REQUEST))
            .otherwise(reject_reason(pl.col("_matched"), self.name))
        )


HAPROXY_HTTPLOG_FORMAT = HaproxyFormat(
    name="haproxy-httplog",
    source=HAPROXY_HTTPLOG,
    regex=HAPROXY_REGEX,
    fields=HAPROXY_FIELDS,
    unescape=(),
)
