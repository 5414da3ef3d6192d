"""nginx and Apache (the common log format and its relatives), nginx's JSON, ingress-nginx."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.formats.layout import (
    COMBINED,
    MS,
    TARGET,
    C,
    Formatter,
    clf_time,
    dirty,
    iso_offset,
    js,
    layout,
    lines,
    lit,
    local,
    s,
    seconds3,
)

PROXY = "172.31.0.2"


def clf(style: str) -> Formatter:
    """A CLF-family format by name: ``*-common`` without referrer and user agent, Apache's
    ``-`` for an empty body, nginx-extended's time and error code, nginx "main" behind a proxy
    (remote_addr is the proxy, X-Forwarded-For the client)."""
    first = PROXY if style == "nginx-main" else "$client"
    template = first + ' - - [$time] "$method $target HTTP/1.1" $status $size'
    if not style.endswith("common"):
        template += ' "$referer" "$user_agent"'
    if style == "nginx-extended":
        template += ' $latency_s "$code_or_dash"'
    if style == "nginx-main":
        template += ' "$client"'
    size = s(C("bytes"))
    if style.startswith("apache"):  # Apache's %b writes "-" for an empty body
        size = pl.when(C("bytes") == 0).then(lit("-")).otherwise(size)

    def render(frame: pl.DataFrame, tz: str) -> pl.Series:
        latency_s = s(C("latency_s").round(3))
        return layout(frame, template, time=clf_time(tz), size=size, latency_s=latency_s)

    return render


nginx_extended = clf("nginx-extended")
nginx_combined = clf("nginx-combined")
nginx_common = clf("nginx-common")
apache_combined = clf("apache-combined")
apache_common = clf("apache-common")
nginx_main = clf("nginx-main")


def ingress_nginx(frame: pl.DataFrame, tz: str) -> pl.Series:
    """The ingress-nginx controller's default upstreaminfo format."""
    return layout(
        frame,
        COMBINED + " $request_length $request_time [default-$service-8080] [] $upstream $bytes "
        "$upstream_response_time $status $request_id",
        time=clf_time(tz),
        request_length=s(C("req_bytes") + 300),
        upstream_response_time=seconds3(C("upstream_ms")),
    )


def nginx_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """log_format json escape=json '{"time_iso8601":"$time_iso8601",…}': every value a string,
    an absent value an empty string."""
    referer = pl.when(C("referer") == "-").then(lit("")).otherwise(C("referer"))
    esc_ua, esc_target = dirty(frame, "user_agent", "referer"), dirty(frame, "path", "query")
    fields = [
        ("time_iso8601", iso_offset(local(tz))),
        ("remote_addr", C("client")),
        ("request_method", C("method")),
        ("request_uri", TARGET),
        ("status", s(C("status"))),
        ("body_bytes_sent", s(C("bytes"))),
        ("request_time", seconds3(MS)),
        ("http_referer", referer),
        ("http_user_agent", C("user_agent")),
        ("request_id", C("request_id")),
        ("upstream_addr", C("upstream")),
        ("sent_http_x_error_code", C("error_code").fill_null("")),
    ]
    escaped = {"request_uri": esc_target, "http_referer": esc_ua, "http_user_agent": esc_ua}
    parts: list[pl.Expr] = []
    for index, (key, value) in enumerate(fields):
        key_text = ("{" if index == 0 else ",") + f'"{key}":'
        parts += [lit(key_text), js(value, escaped.get(key, False))]
    return lines(frame, [*parts, lit("}")])
