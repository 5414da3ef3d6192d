"""AWS load balancers' access logs: the Application Load Balancer (written gzip'd by AWS) and
the Classic Load Balancer."""

from __future__ import annotations

import hashlib

import polars as pl

from conflictlens.sample_logs.catalog import SERVICES
from conflictlens.sample_logs.columns import fixed_hex
from conflictlens.sample_logs.formats.layout import (
    C,
    by_service,
    layout,
    lit,
    s,
    seconds3,
)

TARGET_GROUP = by_service(
    {
        i: "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/"
        + f"{svc.name}-tg/{hashlib.sha1(svc.name.encode()).hexdigest()[:16]}"
        for i, svc in enumerate(SERVICES)
    }
)
RULE_PRIORITY = by_service({i: str(10 * (i + 1)) for i in range(len(SERVICES))})
CERTIFICATE = (
    "arn:aws:acm:eu-central-1:123456789012:certificate/3d6a2c1e-8b7f-4e0a-9c55-1f2e3d4c5b6a"
)
TIME = C("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")


def aws_alb(frame: pl.DataFrame, tz: str) -> pl.Series:
    """ALB access log entry; ``time`` is when the response was sent (our ``ts``) and
    ``request_creation_time`` when the request arrived."""
    created = C("ts") - pl.duration(microseconds=C("latency_ns") // 1000)
    return layout(
        frame,
        "$type $time app/api-prod-alb/50dc6c495c0c9188 $client:$port $upstream "
        "$request_processing $target_processing 0.000 $status $status $received $sent "
        '"$method https://$host:443$target $proto" "$user_agent" $ssl_cipher $target_group '
        '"Root=1-$epoch_hex-$trace_id" "$host" "$certificate" $priority $created '
        '"forward" "-" "-" "$upstream" "$status" "-" "-"',
        type=pl.when(C("http2")).then(lit("h2")).otherwise(lit("https")),
        time=TIME,
        request_processing=pl.when(C("nanos") % 4 == 0).then(lit("0.001")).otherwise(lit("0.000")),
        target_processing=seconds3(C("latency_ns") // 1_000_000),
        received=s(C("req_bytes") + 180 + C("user_agent").str.len_bytes()),
        sent=s(C("bytes") + 240),
        ssl_cipher=pl.when(C("http2"))
        .then(lit("TLS_AES_128_GCM_SHA256 TLSv1.3"))
        .otherwise(lit("ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2")),
        target_group=TARGET_GROUP,
        epoch_hex=pl.lit(fixed_hex(frame["ts"].dt.epoch("s").to_numpy(), 8)),
        trace_id=C("request_id").str.slice(0, 24),
        certificate=lit(CERTIFICATE),
        priority=RULE_PRIORITY,
        created=created.dt.strftime("%Y-%m-%dT%H:%M:%S%.3f000Z"),
    )


def aws_elb_classic(frame: pl.DataFrame, tz: str) -> pl.Series:
    """Classic ELB (HTTPS listener): timestamp elb client:port backend:port three timings
    elb_status backend_status received sent "request" "user_agent" cipher protocol."""
    backend = C("upstream_ms") * 1000 + (C("latency_ns") // 1000) % 1000
    return layout(
        frame,
        "$time api-prod-elb $client:$port $upstream 0.0000$request_processing "
        "$backend_s.$backend_us 0.0000$response_processing $status $status $req_bytes $bytes "
        '"$method https://$host:443$target HTTP/1.1" "$user_agent" '
        "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2",
        time=TIME,
        request_processing=s(30 + C("nanos") % 70),
        backend_s=s(backend // 1_000_000),
        backend_us=s(backend % 1_000_000).str.zfill(6),
        response_processing=s(20 + C("nanos") % 50),
    )
