"""What each registered format is, in a sentence: read by the CLI's help, docs/formats.md and
the docs test (which fails when a format has no sentence here, or a sentence has no format)."""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    "traefik-json": "Traefik's access log with `format: json` (v2 and v3 field names).",
    "envoy-gateway-json": "Envoy Gateway's default JSON access log (its `x-envoy-*` fields).",
    "envoy-json": "Envoy's access log as JSON (`json_format` with Envoy's own operator names).",
    "kong-json": "Kong's File Log / HTTP Log plugin JSON (request, response, upstream, latencies).",
    "caddy-json": "Caddy's `http.log.access` JSON (nested request, `duration` in seconds).",
    "apipark-json": "APIPark's JSON call log.",
    "nginx-json": "nginx `log_format ... escape=json` with the usual variable names as keys.",
    "traefik-clf": "Traefik's `common` format: CLF plus request count, router, server URL, duration.",
    "ingress-nginx": "The Kubernetes ingress-nginx controller's default `log_format upstreaminfo`.",
    "istio-text": "Istio's default text access log (Envoy's layout with Istio's fields).",
    "envoy-text": "Envoy's default text access log format.",
    "haproxy-httplog": "HAProxy `option httplog` (with or without the syslog prefix).",
    "aws-alb": "AWS Application Load Balancer access logs (space separated, one request a line).",
    "aws-elb-classic": "AWS Classic Load Balancer access logs (HTTP and TCP listeners).",
    "nginx-extended": "nginx combined plus `$request_time`, `$upstream_addr`, request id and the "
    "conflict's error code header.",
    "nginx-main": "nginx's packaged `main` format: combined plus `$http_x_forwarded_for`.",
    "nginx-combined": "nginx's `combined` format (the default `access_log`).",
    "apache-combined": "Apache's `combined` LogFormat.",
    "nginx-common": "nginx in the Common Log Format (no referer or user agent).",
    "apache-common": "Apache's `common` LogFormat (the Common Log Format).",
}
