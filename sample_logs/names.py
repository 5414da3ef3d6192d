"""The sample formats and scenarios by name, importable without numpy or Polars (the command
line checks its options against them and lists them in its help).

SAMPLE_FORMATS declares each format once: sample_logs.formats builds FORMATS from it (its
renderer is the function of the same name, ``-`` as ``_``, in the module ``family`` of
sample_logs.formats). A format's place in the list is its committed sample's seed: new ones
go at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from conflictlens._errors import InputError


@dataclass(frozen=True)
class SampleFormat:
    name: str
    family: str  # the module of sample_logs.formats that writes it
    carries_code: bool  # can a line hold the service's error code?
    body_codes: bool  # are some codes written in a logged body instead of a header?
    summary: str


# fmt: off
SAMPLE_FORMATS = tuple(SampleFormat(*row) for row in (
    ("nginx-extended", "nginx", True, False, 'nginx combined + $request_time "$sent_http_x_error_code"'),
    ("nginx-combined", "nginx", False, False, "nginx's built-in combined"),
    ("nginx-common", "nginx", False, False, "combined without referrer and user agent"),
    ("apache-combined", "nginx", False, False, "Apache httpd combined"),
    ("apache-common", "nginx", False, False, "Apache httpd common (CLF)"),
    ("nginx-json", "nginx", True, False, "nginx log_format escape=json, all values strings"),
    ("traefik-clf", "traefik", False, False, "Traefik common (CLF + count, router, server URL, ms)"),
    ("traefik-json", "traefik", True, False, "Traefik JSON, X-Error-Code kept as downstream_X-Error-Code"),
    ("envoy-text", "envoy", True, False, 'Envoy default format + "%RESP(X-ERROR-CODE)%"'),
    ("envoy-json", "envoy", True, False, "Envoy typed JSON, Istio key names + x_error_code"),
    ("kong-json", "kong", True, True, "Kong file-log JSON; code in x-error-code header or body"),
    ("caddy-json", "caddy", True, False, "Caddy v2 JSON access log"),
    ("haproxy-httplog", "haproxy", True, False, "HAProxy httplog with Host|If-Match and X-Error-Code captures"),
    ("aws-alb", "aws", False, False, "AWS Application Load Balancer"),
    ("aws-elb-classic", "aws", False, False, "AWS Classic Load Balancer"),
    ("apipark-json", "apipark", True, True, "APIPark/Apinto JSON; code in x-error-code header or body"),
    ("istio-text", "envoy", False, False, "Istio's default text format (1.9+)"),
    ("envoy-gateway-json", "envoy", False, False, "Envoy Gateway's default JSON access log"),
    ("nginx-main", "nginx", False, False, "nginx.conf's main: combined + X-Forwarded-For"),
    ("ingress-nginx", "nginx", False, False, "ingress-nginx upstreaminfo"),
))
# fmt: on
FORMAT_NAMES = tuple(f.name for f in SAMPLE_FORMATS)
SCENARIO_NAMES = (
    "steady",
    "none-planted",
    "hot-document",
    "signup-surge",
    "order-states",
    "retry-storm",
    "deploy-spike",
    "bad-day",
)


class SampleError(InputError, ValueError):
    """A request the generator cannot honour (unknown format or scenario, too few lines)."""
