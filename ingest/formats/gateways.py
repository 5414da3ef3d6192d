"""Text formats of the API gateways (Traefik CLF, Envoy, HAProxy, AWS load balancers).

GATEWAY_FORMATS is in detection order: more specific formats first. The registry tries them
after the JSON formats and before the CLF presets, whose lenient tails would also accept e.g.
Traefik's CLF lines. None of them accepts a plain nginx or Apache line on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conflictlens.ingest.formats.aws import AWS_ALB, AWS_ELB_CLASSIC
from conflictlens.ingest.formats.envoy import ENVOY_TEXT, ISTIO_TEXT
from conflictlens.ingest.formats.haproxy import HAPROXY_HTTPLOG_FORMAT
from conflictlens.ingest.formats.ingress_nginx import INGRESS_NGINX
from conflictlens.ingest.formats.traefik import TRAEFIK_CLF

if TYPE_CHECKING:
    from conflictlens.ingest.formats import LogFormat

GATEWAY_FORMATS: dict[str, LogFormat] = {
    fmt.name: fmt
    for fmt in (
        TRAEFIK_CLF,
        INGRESS_NGINX,
        ISTIO_TEXT,
        ENVOY_TEXT,
        HAPROXY_HTTPLOG_FORMAT,
        AWS_ALB,
        AWS_ELB_CLASSIC,
    )
}
