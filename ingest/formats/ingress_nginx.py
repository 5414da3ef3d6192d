"""The Kubernetes ingress-nginx controller's default access log ("upstreaminfo").

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name]
    [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length
    $upstream_response_time $upstream_status $req_id

Also read: the layouts of releases before 0.20, with ``$the_real_ip - [$the_real_ip] -`` in
front (the first one empty when the controller had no address for it: the bracketed one is the
client), the 2016 ones with ``$host`` second, without the alternative upstream or the proxy
upstream name, or without the request id. Each upstream field is a
list when nginx tried more than one upstream (``a, b``; `` : `` after an internal
redirect): the upstream is the last one tried, the one whose answer the client got. The
proxy upstream name (namespace-service-port) is the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from conflictlens.ingest.formats.clf import ClfFormat

INGRESS_NGINX_UPSTREAMINFO = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] '
    "[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length "
    "$upstream_response_time $upstream_status $req_id"
)

_QUOTED = r'"(?:[^"\\]*(?:\\.[^"\\]*)*)"'
_LIST = r"[^\s,]+(?:(?:, | : )[^\s,]+)*"
INGRESS_NGINX_REGEX = (
    # the address (or nothing, 0.9's empty $the_real_ip), "-" or 2016's $host, [the real IP]
    r"^(?:(?P<client>\S+) | ?)\S+ (?:\[(?P<real_ip>[^\]]*)\] - )?\S+ "
    r"\[(?P<time_clf>[^\]]*)\] "
    r'"(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\S+) (?P<bytes>[0-9]+) '
    + _QUOTED
    + r' "(?P<user_agent>[^"\\]*(?:\\.[^"\\]*)*)" '
    + r"(?:[0-9]+|-) (?P<latency_s>[0-9.]+|-) (?:\[(?P<service>[^\]]*)\] (?:\[[^\]]*\] )?)?"
    + rf"(?P<upstream>{_LIST}) {_LIST} {_LIST} {_LIST}(?: (?P<request_id>\S+))?\s*$"
)

INGRESS_NGINX_FIELDS = (
    "client",
    "time_clf",
    "request",
    "status",
    "bytes",
    "user_agent",
    "latency_s",
    "service",
    "upstream",
    "request_id",
)


@dataclass(frozen=True)
class IngressNginxFormat(ClfFormat):
    def _extract(self, lines: pl.DataFrame) -> pl.DataFrame:
        frame = super()._extract(lines)
        if "real_ip" in frame.columns:  # (read by the regex only, not by the scanner)
            missing = pl.col("client").is_null() | (pl.col("client") == "-")
            real_ip = pl.when(missing).then(pl.col("real_ip")).otherwise(pl.col("client"))
            frame = frame.with_columns(client=real_ip).drop("real_ip")
        # "a, b : c": the last upstream tried answered the client
        return frame.with_columns(pl.col("upstream").str.extract(r"([^\s,]+)$"))


INGRESS_NGINX = IngressNginxFormat(
    name="ingress-nginx",
    source=INGRESS_NGINX_UPSTREAMINFO,
    regex=INGRESS_NGINX_REGEX,
    fields=INGRESS_NGINX_FIELDS,
    unescape=("request", "user_agent"),
)
