"""AWS load balancer access logs: Application Load Balancer and Classic ELB.

ALB (space-separated; AWS appends fields over time, so trailing fields are ignored):

    type time elb client:port target:port request_processing_time target_processing_time
    response_processing_time elb_status_code target_status_code received_bytes sent_bytes
    "request" "user_agent" ssl_cipher ssl_protocol target_group_arn "trace_id" ...

Classic ELB:

    time elb client:port backend:port request_processing_time backend_processing_time
    response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
    "request" ["user_agent" ssl_cipher ssl_protocol]

* ``time`` is when the response was generated (ISO-8601, µs, ``Z``).
* The request holds the full URL (``GET http://host:80/path?q HTTP/1.1``), may hold spaces
  (``SpaceInUri``), and is ``"- http://host:80- -"`` when the request was not parsable.
* Processing times are seconds, ``-1`` when the request was never dispatched or timed out;
  latency is their sum when none is ``-1``.
* status = the load balancer's status to the client; target → upstream; the ALB's trace id
  (``Root=1-...``) → request id. These logs cannot hold an error code.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from conflictlens.ingest.formats.clf import ClfFormat
from conflictlens.ingest.formats.fields import NO_REQUEST, NO_RESPONSE, TCP_LISTENER

ALB_FORMAT = (
    "type time elb client:port target:port request_processing_time target_processing_time "
    'response_processing_time elb_status_code target_status_code received_bytes sent_bytes "request" '
    '"user_agent" ssl_cipher ssl_protocol ...'
)
CLASSIC_ELB_FORMAT = (
    "time elb client:port backend:port request_processing_time backend_processing_time "
    "response_processing_time elb_status_code backend_status_code received_bytes sent_bytes "
    '"request" "user_agent" ssl_cipher ssl_protocol'
)

_TIMES = r"(?P<t1>-?[0-9.]+) (?P<t2>-?[0-9.]+) (?P<t3>-?[0-9.]+) "
_STATUS_BYTES = r"(?P<status>[0-9]+|-) \S+ (?:[0-9]+|-) (?P<bytes>[0-9]+|-) "
_AFTER = r"\S+ (?P<client_hostport>\S+) (?P<upstream>\S+) " + _TIMES + _STATUS_BYTES
_ISO_TIME = r"(?P<time_iso>[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[^\s]*)"

# ssl_cipher ssl_protocol target_group_arn "trace_id": the X-Amzn-Trace-Id the load balancer
# gave the request, its request id. The match ends there: later fields are not scanned.
_TRACE = r'(?: \S+ \S+ \S+ "(?P<request_id>[^"]*)")?(?: |\r?\n?$)'

# The type's alternatives differ from their first byte on (one pass). The match ends after
# the user agent: the fields after it are not needed, and are not even scanned.
ALB_REGEX = (
    r"^(?:h(?:ttps?|2)|grpcs?|wss?) "
    + _ISO_TIME
    + " "
    + _AFTER
    + r'"(?P<request>[^"]*)" "(?P<user_agent>[^"]*)"'
    + _TRACE
)
CLASSIC_ELB_REGEX = (
    "^ *"
    + _ISO_TIME
    + " "
    + _AFTER
    + r'"(?P<request>[^"]*)"(?: "(?P<user_agent>[^"]*)"(?: |\r?\n?$)|\r?\n?$)'
)
# Only for lines the main regexes missed: a raw quote in the request or the user agent, which
# then ends at a quote followed by two unquoted fields (ssl_cipher, ssl_protocol).
ALB_QUOTES_REGEX = (
    r"^(?:h(?:ttps?|2)|grpcs?|wss?) "
    + _ISO_TIME
    + " "
    + _AFTER
    + r'"(?P<request>.*?)" "(?P<user_agent>.*?)" [^\s"]+ [^\s"]+'
    + r'(?: \S+ "(?P<request_id>[^"]*)")?(?: [^\r\n]*)?\r?\n?$'
)
CLASSIC_ELB_QUOTES_REGEX = (
    "^ *"
    + _ISO_TIME
    + " "
    + _AFTER
    + r'"(?P<request>.*?)"(?: "(?P<user_agent>.*)" [^\s"]+ [^\s"]+)?\r?\n?$'
)

TCP_ENTRY = '"- - - "'

AWS_FIELDS = ("time_iso", "client_hostport", "upstream", "status", "bytes", "request", "user_agent")
ALB_FIELDS = (*AWS_FIELDS, "request_id")


@dataclass(frozen=True)
class AwsLoadBalancerFormat(ClfFormat):
    def parse(
        self, lines: pl.DataFrame, *, detail_statuses: Collection[int] | None = None
    ) -> pl.DataFrame:
        frame = super().parse(lines, detail_statuses=detail_statuses)
        times = [pl.col(t).cast(pl.Float64, strict=False) for t in ("t1", "t2", "t3")]
        dispatched = pl.all_horizontal([t >= 0 for t in times])
        total_ms = pl.sum_horizontal(times) * 1000.0
        # A TCP or SSL listener logs connections, not requests: no status, "- - - " as the
        # request. It is no HTTP response at all (an HTTP listener's malformed request, also
        # "- - -", has the 400 it was answered with, and stays).
        listener = (pl.col("status").fill_null(0) == 0) & pl.col("line").str.contains(
            TCP_ENTRY, literal=True
        )
        return frame.with_columns(
            latency_ms=pl.when(dispatched).then(total_ms),
            reject=pl.when(listener & pl.col("reject").is_in([NO_RESPONSE, NO_REQUEST]))
            .then(pl.lit(TCP_LISTENER))
            .otherwise(pl.col("reject")),
        )


AWS_ALB = AwsLoadBalancerFormat(
    name="aws-alb",
    source=ALB_FORMAT,
    regex=ALB_REGEX,
    fields=ALB_FIELDS,
    fallback=ALB_QUOTES_REGEX,
    unescape=("request", "user_agent"),  # a quote in a user agent is written \"
)
AWS_ELB_CLASSIC = AwsLoadBalancerFormat(
    name="aws-elb-classic",
    source=CLASSIC_ELB_FORMAT,
    regex=CLASSIC_ELB_REGEX,
    fields=AWS_FIELDS,
    fallback=CLASSIC_ELB_QUOTES_REGEX,
    unescape=("request", "user_agent"),
)
