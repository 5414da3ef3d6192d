"""OTLP intake benchmark: log records per second that serve commits from ``POST /v1/logs``.

Run as ``.venv/bin/python bench/bench_otlp.py``. It makes ``--records`` (400,000) access-log
records described by the HTTP semantic conventions (the generator's mix: a few per cent
conflicts), encodes them up front as OTLP protobuf requests of ``--batch`` (8,192, an
OpenTelemetry Collector batch processor's default) records each, starts a real
``conflictlens serve`` on a fresh store and sends them from ``--senders`` (2) threads over
keep-alive connections, as a Collector's sending queue does. The figure is records / wall
time from the first request sent to the last answered (each answer comes after its commit).

The peer: ``conflictlens ingest`` of the same records written as a JSON-lines access log
(nginx's JSON keys), on another fresh store. The ratio OTLP / ingest is printed; the bar is
>= 100,000 records/s for the OTLP intake (2 cores). Figures go to the terminal and to
``bench/out/bench_otlp.json``, with its row for ``make bench``'s table; a missed bar exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from bench.common import (
    PROJECT,
    BenchError,
    child_env,
    compile_bytecode,
    conflictlens_exe,
    summary_row,
)

BAR = 100_000  # records/s
T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
OUT = PROJECT / "bench" / "out"


def make_records(count: int) -> list[dict[str, Any]]:
    """The same records for both sides: a route mix with ids, 3 % conflicts."""
    records = []
    for i in range(count):
        status = 409 if i % 33 == 0 else 412 if i % 97 == 0 else 200 if i % 5 else 201
        records.append(
            {
                "ts": T0 + dt.timedelta(milliseconds=i * 50),
                "method": ("GET", "PUT", "POST", "PATCH")[i % 4],
                "path": f"/api/v1/{('orders', 'users', 'carts')[i % 3]}/{i % 5000}",
                "status": status,
                "client": f"198.51.100.{i % 200}",
                "agent": "bench-client/1.0",
                "host": "api.example.com",
            }
        )
    return records


def encode_requests(records: list[dict[str, Any]], batch: int) -> list[bytes]:
    """OTLP protobuf requests, built with the official generated classes."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    requests = []
    for start in range(0, len(records), batch):
        message = ExportLogsServiceRequest()
        resource_logs = message.resource_logs.add()
        resource_logs.resource.attributes.add(
            key="service.name", value=AnyValue(string_value="edge")
        )
        scope = resource_logs.scope_logs.add()
        for record in records[start : start + batch]:
            log = scope.log_records.add()
            moment: dt.datetime = record["ts"]
            log.time_unix_nano = int(moment.timestamp()) * 10**9 + moment.microsecond * 1000
            for key, value in (
                ("http.request.method", record["method"]),
                ("url.path", record["path"]),
                ("client.address", record["client"]),
                ("user_agent.original", record["agent"]),
                ("server.address", record["host"]),
            ):
                log.attributes.add(key=key, value=AnyValue(string_value=value))
            log.attributes.add(
                key="http.response.status_code", value=AnyValue(int_value=record["status"])
            )
        requests.append(message.SerializeToString())
    return requests


def write_json_log(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for r in records:
            line = {
                "time_iso8601": r["ts"].isoformat(),
                "request_method": r["method"],
                "uri": r["path"],
                "status": r["status"],
                "remote_addr": r["client"],
                "http_user_agent": r["agent"],
                "host": r["host"],
            }
            out.write(json.dumps(line) + "\n")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(db: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(conflictlens_exe()), "serve", "--db", str(db), "--port", str(port), "--no-dashboard"],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"serve exited: {process.stderr.read().decode()[-300:]}")  # type: ignore[union-attr]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.2)
    raise BenchError("serve did not answer within 60 s")


def send_all(port: int, requests: list[bytes], senders: int) -> float:
    """Send every request from ``senders`` threads; the seconds from first send to last answer."""
    queue = list(enumerate(requests))
    lock = threading.Lock()
    failures: list[str] = []

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue or failures:
                    return
                _, body = queue.pop(0)
            connection.request(
                "POST",
                "/v1/logs",
                body=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or answer:  # an empty answer: all accepted
                failures.append(f"HTTP {response.status}: {answer[:200]!r}")

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise BenchError(f"a request failed: {failures[0]}")
    return elapsed


def stored_requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30) as answer:
        return int(json.loads(answer.read())["store"]["requests"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    compile_bytecode()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    records = make_records(args.records)
    requests = encode_requests(records, args.batch)
    port = free_port()
    serve = start_serve(work / "otlp.duckdb", port)
    try:
        seconds = send_all(port, requests, args.senders)
        stored = stored_requests(port)
    finally:
        serve.terminate()
        serve.communicate(timeout=60)
    if stored != len(records):
        raise BenchError(f"serve stored {stored:,} requests of {len(records):,} sent")
    log = work / "records.json.log"
    write_json_log(records, log)
    started = time.perf_counter()
    subprocess.run(
        [str(conflictlens_exe()), "ingest", "--db", str(work / "ingest.duckdb"), str(log)],
        env=child_env(),
        check=True,
        capture_output=True,
    )
    peer_seconds = time.perf_counter() - started
    otlp_rate, peer_rate = len(records) / seconds, len(records) / peer_seconds
    return {
        "records": len(records),
        "batch": args.batch,
        "senders": args.senders,
        "request_bytes": sum(len(r) for r in requests),
        "otlp_seconds": round(seconds, 3),
        "otlp_records_per_s": round(otlp_rate),
        "ingest_seconds": round(peer_seconds, 3),
        "ingest_records_per_s": round(peer_rate),
        "ratio_otlp_to_ingest": round(otlp_rate / peer_rate, 2),
        "bar_records_per_s": BAR,
        "bar_met": otlp_rate >= BAR,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/conflictlens-bench-otlp")
    args = parser.parse_args()
    try:
        result = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "bench_otlp.json").write_text(json.dumps({"error": str(exc)}) + "\n")
        return 1
    result["summary"] = [
        summary_row(
            f"OTLP intake through serve, {result['records']:,} records, records/s",
            f"{result['otlp_records_per_s']:,}",
            f">= {BAR:,}",
            bool(result["bar_met"]),
            peer=f"{result['ingest_records_per_s']:,} (ingest of the same as JSON lines)",
            ratio=f"{result['ratio_otlp_to_ingest']}x",
        )
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_otlp.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"OTLP intake: {result['otlp_records_per_s']:,} records/s "
        f"({result['records']:,} records in {result['otlp_seconds']} s, "
        f"batches of {result['batch']:,}, {result['senders']} senders)"
    )
    print(
        f"peer, conflictlens ingest of the same records as JSON lines: "
        f"{result['ingest_records_per_s']:,} records/s ({result['ingest_seconds']} s)"
    )
    print(f"ratio OTLP / ingest: {result['ratio_otlp_to_ingest']}")
    verdict = "met" if result["bar_met"] else "NOT met"
    print(f"bar >= {BAR:,} records/s: {verdict}")
    return 0 if result["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
