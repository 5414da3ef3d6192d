"""``POST /v1/logs`` on two serve replicas of one ClickHouse store (real serve processes,
chDB behind tests/chdb_http.py): what the senders sent is stored once, however often and
through whichever replica a request is sent again.

Senders: the official OpenTelemetry exporter (protobuf, gzip, batches of 100) through
replica a; the same protobuf request sent twice more, through b (gzip'd) and a (a sender
retrying after a lost answer); OTLP/JSON through b; and records whose bodies are nginx
lines (the format detected, as for a file). The truth is what the test sent.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from conflictlens.cli import cli
from tests.chdb_http import StoreServer
from tests.helpers import clf_line, clf_ts, wait_for
from tests.test_otlp import CONFLICTS, T0, as_json, ns, semconv_records, sent_statuses
from tests.test_serve import free_port
from tests.test_serve_replicas import DB, _get, _healthy, _replica, config_text
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow


class _At:
    """What tests.test_otlp.post reads of a server: its url."""

    def __init__(self, url: str) -> None:
        self.url = url


def _send(base: str, body: bytes, content_type: str, **headers: str) -> int:
    from tests.test_otlp import post

    status, _ = post(_At(base), body, content_type, **headers)  # type: ignore[arg-type]
    return status


def nginx_records(count: int) -> list[ReadableLogRecord]:
    """Records whose body is an nginx combined line: every 3rd a 409."""
    resource = Resource.create({"service.name": "edge"})
    made = []
    for i in range(count):
        moment = T0 + dt.timedelta(seconds=i)
        line = clf_line(f"/api/carts/{i}", status=409 if i % 3 == 0 else 200, ts=clf_ts(moment))
        record = LogRecord(timestamp=ns(moment), body=line.decode())
        made.append(ReadableLogRecord(record, resource=resource))
    return made


def test_otlp_through_two_clickhouse_replicas_is_stored_once(
    tmp_path: Path, store: StoreServer
) -> None:
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", 1000))
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    ports = {"a": free_port(), "b": free_port()}
    replicas = [_replica(name, config, tmp_path, port) for name, port in ports.items()]
    a, b = (f"http://127.0.0.1:{port}" for port in ports.values())
    try:
        for port in ports.values():
            wait_for(lambda port=port: _healthy(port), 60, "a replica's API")
        shop = semconv_records("shop", 300)
        exporter = OTLPLogExporter(endpoint=f"{a}/v1/logs", compression=Compression.Gzip)
        for start in range(0, len(shop), 100):
            batch = shop[start : start + 100]
            assert exporter.export(batch) == LogRecordExportResult.SUCCESS
        # The first batch again: through b, gzip'd; and through a, as it was.
        again = encode_logs(shop[:100]).SerializeToString()
        protobuf = "application/x-protobuf"
        assert _send(b, gzip.compress(again), protobuf, **{"Content-Encoding": "gzip"}) == 200
        assert _send(a, again, protobuf) == 200
        billing = semconv_records("billing", 200, first=1000)
        for _ in range(2):  # sent twice, through b
            assert _send(b, as_json(billing), "application/json") == 200
        edge = nginx_records(60)
        assert _send(a, encode_logs(edge).SerializeToString(), protobuf) == 200

        sent = shop + billing
        statuses = sent_statuses(sent) + Counter(409 if i % 3 == 0 else 200 for i in range(60))
        client = store.client(DB)
        conflicts = dict(
            client.query("SELECT status, count() FROM conflict_events GROUP BY status").result_rows
        )
        assert conflicts == {s: n for s, n in statuses.items() if s in CONFLICTS}
        (requests,) = client.query("SELECT sum(requests) FROM request_rollups").result_rows[0]
        assert requests == len(sent) + len(edge)
        sources = client.query(
            "SELECT path, argMax(format, updated_at), argMax(lines, updated_at), "
            "argMax(rejects, updated_at) FROM sources GROUP BY path ORDER BY path"
        ).result_rows
        assert sources == [
            ("otlp:billing", "otlp", 200, 0),
            ("otlp:edge", "nginx-combined", 60, 0),
            ("otlp:shop", "otlp", 300, 0),
        ]
        # Both replicas answer the catalog's totals: what was sent, once.
        span = urllib.parse.urlencode(
            {"since": T0.isoformat(), "until": (T0 + dt.timedelta(hours=1)).isoformat()}
        )
        for base in (a, b):
            totals = _get(f"{base}/api/queries/totals?{span}")[0]
            assert (totals["conflicts"], totals["requests"]) == (
                sum(conflicts.values()),
                len(sent) + len(edge),
            )
        # A body that is no OTLP: one line, 400.
        status, answer = _post_json(a, b"{not json")
        assert status == 400 and "\n" not in answer["message"], answer
    finally:
        for process in replicas:
            process.terminate()
        for process in replicas:
            process.wait(30)


def _post_json(base: str, body: bytes) -> tuple[int, Any]:
    from tests.test_otlp import post

    status, data = post(_At(base), body, "application/json")  # type: ignore[arg-type]
    return status, json.loads(data)
