"""Envoy (its default text format and typed JSON), Istio's text format, Envoy Gateway's JSON."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.catalog import SERVICES
from conflictlens.sample_logs.formats.layout import (
    C,
    by_service,
    js_or_null,
    json_values,
    layout,
)

START = C("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
UPSTREAM_CLUSTER = by_service(
    {
        i: f"outbound|{svc.port}||{svc.name}.default.svc.cluster.local"
        for i, svc in enumerate(SERVICES)
    }
)
# %START_TIME% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
REQUEST = '[$start] "$method $target $envoy_proto" $status'


def envoy_text(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy's default format plus `` "%RESP(X-ERROR-CODE)%"`` at the end."""
    return layout(
        frame,
        REQUEST + ' - $req_bytes $bytes $ms $upstream_ms "$client" "$user_agent" "$request_uuid" '
        '"$host" "$upstream" "$code_or_dash"',
        start=START,
    )


def istio_text(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Istio's default text format (1.9+): X-Forwarded-For "-", the client in
    %DOWNSTREAM_REMOTE_ADDRESS% with its port."""
    return layout(
        frame,
        REQUEST + ' - via_upstream - "-" $req_bytes $bytes $ms $upstream_ms "-" "$user_agent" '
        '"$request_uuid" "$host" "$upstream" $cluster 10.44.1.23:37652 10.44.1.27:80 '
        "$client:$port - default",
        start=START,
        cluster=UPSTREAM_CLUSTER,
    )


def envoy_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy typed_json_format with Istio's key names (sorted, as Envoy writes a Struct)."""
    return layout(
        frame,
        '{"authority":"$host","bytes_received":$req_bytes,"bytes_sent":$bytes,"duration":$ms,'
        '"method":"$method","path":$target_js,"protocol":"$envoy_proto",'
        '"request_id":"$request_uuid","response_code":$status,"response_flags":"-",'
        '"start_time":"$start","upstream_cluster":"$cluster","upstream_host":"$upstream",'
        '"upstream_service_time":"$upstream_ms","user_agent":$user_agent_js,'
        '"x_error_code":$code_js,"x_forwarded_for":"$client"}',
        **json_values(frame),
        start=START,
        cluster=UPSTREAM_CLUSTER,
        code_js=js_or_null(C("error_code")),
    )


def envoy_gateway_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Envoy Gateway's default JSON access log (its key names and order; numbers as Envoy's
    JSON formatter writes them)."""
    return layout(
        frame,
        '{"start_time":"$start","method":"$method","x-envoy-origin-path":$target_js,'
        '"protocol":"$envoy_proto","response_code":$status,"response_flags":"-",'
        '"response_code_details":"via_upstream","connection_termination_details":null,'
        '"upstream_transport_failure_reason":null,"bytes_received":$req_bytes,'
        '"bytes_sent":$bytes,"duration":$ms,"x-envoy-upstream-service-time":"$upstream_ms",'
        '"x-forwarded-for":"$client","user-agent":$user_agent_js,"x-request-id":"$request_uuid",'
        '":authority":"$host","upstream_host":"$upstream",'
        '"upstream_cluster":"httproute/default/$service/rule/0",'
        '"upstream_local_address":"10.244.0.30:48658",'
        '"downstream_local_address":"10.244.0.30:10080",'
        '"downstream_remote_address":"$client:$port","requested_server_name":null,'
        '"route_name":"httproute/default/$service/rule/0/match/0/*"}',
        **json_values(frame),
        start=START,
    )
