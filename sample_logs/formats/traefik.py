"""Traefik: its "common" text format and its JSON access log."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.catalog import SERVICES
from conflictlens.sample_logs.formats.layout import (
    COMBINED,
    C,
    by_service,
    clf_time,
    js,
    json_values,
    layout,
    optional,
    rfc3339,
    rfc3339_nano,
    s,
)

ROUTER = by_service({i: f"{svc.name}@docker" for i, svc in enumerate(SERVICES)})
TRAEFIK_SERVICE = by_service({i: f"{svc.name}-svc@docker" for i, svc in enumerate(SERVICES)})
REQUEST_COUNT = s(C("seq") + 1)


def traefik_clf(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Traefik "common": CLF + ` <count> "<router>" "<server URL>" <ms>ms` (DownstreamStatus)."""
    return layout(
        frame,
        COMBINED + ' $count "$router" "http://$upstream" ${ms}ms',
        time=clf_time(tz),
        count=REQUEST_COUNT,
        router=ROUTER,
    )


def traefik_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Traefik JSON access log (keys sorted as Go's encoding/json writes a map); headers kept:
    User-Agent (request) and X-Error-Code (downstream)."""
    origin_ns = C("upstream_ms") * 1_000_000 + (C("latency_ns") % 1_000_000) // 2
    return layout(
        frame,
        '{"ClientAddr":"$client:$port","ClientHost":"$client","ClientPort":"$port",'
        '"ClientUsername":"-","DownstreamContentSize":$bytes,"DownstreamStatus":$status,'
        '"Duration":$latency_ns,"OriginContentSize":$bytes,"OriginDuration":$origin_ns,'
        '"OriginStatus":$status,"Overhead":$overhead,"RequestAddr":"$host",'
        '"RequestContentSize":$req_bytes,"RequestCount":$count,"RequestHost":"$host",'
        '"RequestMethod":"$method","RequestPath":$target_js,"RequestPort":"-",'
        '"RequestProtocol":"$proto","RequestScheme":"https","RetryAttempts":0,'
        '"RouterName":"$router","ServiceAddr":"$upstream","ServiceName":"$traefik_service",'
        '"ServiceURL":{"Scheme":"http","Opaque":"","User":null,"Host":"$upstream",'
        '"Path":"","RawPath":"","OmitHost":false,"ForceQuery":false,"RawQuery":"",'
        '"Fragment":"","RawFragment":""},"StartLocal":"$start_local","StartUTC":"$start_utc",'
        '${downstream_code}"entryPointName":"websecure","level":"info","msg":"",'
        '"request_User-Agent":$user_agent_js,"time":"$time"}',
        **json_values(frame),
        origin_ns=s(origin_ns),
        overhead=s(C("latency_ns") - origin_ns),
        count=REQUEST_COUNT,
        router=ROUTER,
        traefik_service=TRAEFIK_SERVICE,
        start_local=rfc3339_nano(tz),
        start_utc=rfc3339_nano("UTC"),
        downstream_code=optional(js(C("error_code"), False), '"downstream_X-Error-Code":', ","),
        time=rfc3339(C("ts") + pl.duration(microseconds=C("latency_ns") // 1000), tz),
    )
