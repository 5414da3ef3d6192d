"""Kong's file-log JSON: conflicts carry the code in the ``x-error-code`` response header or
(the other half) in a logged JSON ``body``."""

from __future__ import annotations

import json
import uuid as uuidlib

import polars as pl

from conflictlens.sample_logs.catalog import SERVICES
from conflictlens.sample_logs.formats.layout import (
    BODY,
    BODY_LENGTH,
    HOST,
    INSTANCES,
    MS,
    TARGET,
    C,
    by_service,
    by_upstream,
    dirty,
    js,
    json_values,
    layout,
    lit,
    optional,
    s,
)


def _kong_service(index: int) -> str:
    svc = SERVICES[index]
    return json.dumps(
        {
            "id": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{svc.name}.service.kong")),
            "name": f"{svc.name}-svc",
            "host": f"{svc.name}-svc.internal",
            "port": svc.port,
            "protocol": "http",
            "path": "/",
            "retries": 5,
            "connect_timeout": 60000,
            "read_timeout": 60000,
            "write_timeout": 60000,
        },
        separators=(",", ":"),
    )


def _kong_route(index: int) -> str:
    svc = SERVICES[index]
    return json.dumps(
        {
            "id": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{svc.name}.route.kong")),
            "name": svc.name,
            "paths": list(svc.prefixes),
            "protocols": ["https"],
            "strip_path": False,
            "preserve_host": True,
        },
        separators=(",", ":"),
    )


KONG_SERVICE = by_service({i: _kong_service(i) for i in range(len(SERVICES))})
KONG_ROUTE = by_service({i: _kong_route(i) for i in range(len(SERVICES))})
KONG_WORKSPACE = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, "default.workspace.kong"))
UPSTREAM_IP = by_upstream({address: address.rsplit(":", 1)[0] for _, _, address in INSTANCES})
UPSTREAM_PORT = by_upstream({address: address.rsplit(":", 1)[1] for _, _, address in INSTANCES})
QUERYSTRING = (
    pl.when(C("query").is_null())
    .then(lit("{}"))
    .otherwise(
        pl.concat_str(
            lit('{"'),
            C("query")
            .str.replace_all("&", '","', literal=True)
            .str.replace_all("=", '":"', literal=True),
            lit('"}'),
        )
    )
)


def kong_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Kong file-log JSON, one object per line."""
    url = pl.concat_str(lit("https://"), HOST, lit(":8443"), TARGET)
    return layout(
        frame,
        '{"request":{"id":"$request_id","method":"$method","uri":$target_js,"url":$url_js,'
        '"size":$request_size,"querystring":$querystring,"headers":{"host":"$host",'
        '"user-agent":$user_agent_js,"accept":"application/json"${if_match}}},'
        '"response":{"status":$status,"size":$response_size,"headers":{'
        '"content-type":"$content_type","content-length":"$content_length"${header_code},'
        '"via":"kong/3.8.0","x-kong-upstream-latency":"$upstream_ms",'
        '"x-kong-proxy-latency":"$kong_ms"}${body}},'
        '"latencies":{"request":$ms,"kong":$kong_ms,"proxy":$upstream_ms},'
        '"service":$kong_service,"route":$kong_route${consumer},"client_ip":"$client",'
        '"started_at":$started_at,"upstream_uri":$target_js,"upstream_status":"$status",'
        '"source":"upstream","tries":[{"balancer_latency":0,"ip":"$upstream_ip",'
        '"port":$upstream_port}],"workspace":"$workspace"}',
        **json_values(frame),
        url_js=js(url, dirty(frame, "path", "query")),
        request_size=s(C("req_bytes") + 160 + C("user_agent").str.len_bytes()),
        querystring=QUERYSTRING,
        if_match=optional(js(C("if_match")), ',"if-match":'),
        response_size=s(C("bytes") + 260),
        content_length=s(BODY_LENGTH.fill_null(C("bytes"))),
        kong_ms=s(MS - C("upstream_ms")),
        body=optional(BODY, ',"body":'),
        kong_service=KONG_SERVICE,
        kong_route=KONG_ROUTE,
        consumer=optional(C("consumer"), ',"consumer":{"username":"', '"}'),
        started_at=s(C("ts").dt.epoch("ms")),
        upstream_ip=UPSTREAM_IP,
        upstream_port=UPSTREAM_PORT,
        workspace=lit(KONG_WORKSPACE),
    )
