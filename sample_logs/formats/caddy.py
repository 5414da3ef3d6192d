"""Caddy v2's JSON access log (``ts`` unix seconds, ``duration`` seconds, header arrays)."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.formats.layout import (
    C,
    go_float,
    js,
    json_values,
    layout,
    lit,
    optional,
)


def caddy_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Caddy v2 JSON access log (``ts`` unix seconds, ``duration`` seconds, header arrays)."""
    return layout(
        frame,
        '{"level":"$level","ts":$ts,"logger":"http.log.access.log0","msg":"handled request",'
        '"request":{"remote_ip":"$client","remote_port":"$port","client_ip":"$client",'
        '"proto":"$proto","method":"$method","host":"$host","uri":$target_js,'
        '"headers":{"User-Agent":[$user_agent_js],"Accept":["application/json"]${if_match}},'
        '"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"$alpn",'
        '"server_name":"$host"}},"bytes_read":$req_bytes,"user_id":"","duration":$duration,'
        '"size":$bytes,"status":$status,"resp_headers":{"Server":["Caddy"],'
        '"Content-Type":["$content_type"]${error_code}}}',
        **json_values(frame),
        level=pl.when(C("status") >= 500).then(lit("error")).otherwise(lit("info")),
        ts=go_float(C("ts").dt.epoch("us"), 1_000_000),
        if_match=optional(js(C("if_match")), ',"If-Match":[', "]"),
        alpn=pl.when(C("http2")).then(lit("h2")).otherwise(lit("http/1.1")),
        duration=go_float(C("latency_ns"), 1_000_000_000),
        error_code=optional(js(C("error_code"), False), ',"X-Error-Code":[', "]"),
    )
