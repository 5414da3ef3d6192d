"""HAProxy's ``option httplog`` behind an RFC 3164 syslog header."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.catalog import SERVICES
from conflictlens.sample_logs.formats.layout import (
    HOST,
    INSTANCES,
    MS,
    TARGET,
    C,
    by_upstream,
    layout,
    lit,
    local,
    s,
)

SERVER_NAME = by_upstream({address: f"{SERVICES[i].name}-{k + 1}" for i, k, address in INSTANCES})


def haproxy_capture(expr: pl.Expr) -> pl.Expr:
    """A captured header value as HAProxy logs it: ``"#{|}`` as #XX (``#`` first)."""
    out = expr
    for char, code in (("#", "#23"), ('"', "#22"), ("{", "#7B"), ("|", "#7C"), ("}", "#7D")):
        out = out.str.replace_all(char, code, literal=True)
    return out.fill_null("")


def haproxy_httplog(frame: pl.DataFrame, tz: str) -> pl.Series:
    """``option httplog`` with ``capture request header Host`` and ``If-Match`` and
    ``capture response header X-Error-Code``, behind an RFC 3164 syslog header."""
    ta = MS
    tr_req = pl.min_horizontal(C("nanos") % 3, ta)
    tc = pl.min_horizontal((C("nanos") // 3) % 2, ta - tr_req)
    tr = ta - tr_req - tc
    act = 8 + (C("client_port") % 40)
    fe = act - (C("nanos") % 4)
    be = (fe // 3) + 1
    srv = (be // 2) + 1
    logged_at = (C("ts") + pl.duration(milliseconds=ta)).dt.convert_time_zone(tz)
    return layout(
        frame,
        "$logged_at lb1 haproxy[2417]: $client:$port [$accept_date] fe_https~ "
        "be_$service/$server $timers $status $bytes_read - - ---- $conns 0/0 "
        '{$host_capture|$if_match_capture} {$code_capture} "$method $escaped_target $proto"',
        logged_at=logged_at.dt.strftime("%b %e %H:%M:%S"),
        accept_date=local(tz).dt.strftime("%d/%b/%Y:%H:%M:%S%.3f"),
        server=SERVER_NAME,
        timers=pl.concat_str([s(tr_req), s(pl.lit(0)), s(tc), s(tr), s(ta)], separator="/"),
        bytes_read=s(C("bytes") + 180),
        conns=pl.concat_str([s(act), s(fe), s(be), s(srv), lit("0")], separator="/"),
        host_capture=haproxy_capture(HOST),
        if_match_capture=haproxy_capture(C("if_match")),
        code_capture=haproxy_capture(C("error_code")),
        escaped_target=TARGET.str.replace_all("#", "#23", literal=True).str.replace_all(
            '"', "#22", literal=True
        ),
    )
