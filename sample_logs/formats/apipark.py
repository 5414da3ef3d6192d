"""APIPark (Apinto)'s file-log JSON."""

from __future__ import annotations

import polars as pl

from conflictlens.sample_logs.formats.layout import (
    BODY,
    TARGET,
    C,
    dirty,
    iso_offset,
    js,
    layout,
    lit,
    local,
    optional,
)


def apipark_json(frame: pl.DataFrame, tz: str) -> pl.Series:
    """APIPark (Apinto) file-log JSON with the documented field groups: request, proxy,
    response headers, status codes and times (ms). Codes in a header or in the body."""
    proxy_uri = C("path").str.replace(r"^/api/v[0-9]+", "")
    proxy_uri = pl.when(proxy_uri == "").then(lit("/")).otherwise(proxy_uri)
    escape = dirty(frame, "path", "query")
    return layout(
        frame,
        '{"time_iso8601":"$time","request_id":"$request_uuid","request":{'
        '"request_method":"$method","scheme":"https","request_uri":$target_js,"host":"$host",'
        '"remote_addr":"$client"},"proxy":{"proxy_method":"$method","proxy_uri":$proxy_uri_js,'
        '"proxy_host":"$service-svc","proxy_addr":"$upstream"},"response":{'
        '"response_headers":{"content-type":"$content_type"${header_code}}}${body},'
        '"status_code":{"status":$status,"proxy_status":$status},'
        '"time":{"request_time":$ms,"response_time":$upstream_ms}}',
        target_js=js(TARGET, escape),
        proxy_uri_js=js(proxy_uri, escape),
        time=iso_offset(local(tz)),
        body=optional(BODY, ',"response_body":'),
    )
