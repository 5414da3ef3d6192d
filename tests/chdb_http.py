"""A central ClickHouse store for tests and benchmarks: chDB behind ClickHouse's HTTP interface.

chDB (ClickHouse's engine in-process) serves no protocol, and a chDB directory can be opened
by one process at a time. The agent under test is its own process (killed with SIGKILL), so
the store must be another one: this small loopback server owns the chDB directory and
answers the part of ClickHouse's HTTP interface that clickhouse-connect's HTTP client uses:

- the statement in the ``query`` URL parameter, followed by the request body, as ClickHouse
  does; ``database`` is applied with ``USE``; ``param_*`` are the query's bound parameters;
- an ``INSERT ... FORMAT X`` whose data is the body (decompressed per Content-Encoding) is
  run as ``INSERT ... FROM INFILE`` with the request's settings (``insert_deduplication_token``
  among them) in a ``SETTINGS`` clause: deduplication is ClickHouse's own, nothing here;
- without ``query``, the statement is the body's first line (clickhouse-connect's insert());
  a chunked body is read as such;
- errors are HTTP 500 with ClickHouse's message and ``X-ClickHouse-Exception-Code``.

Settings sent with other statements are not applied (no test depends on them).

Run: ``python -m tests.chdb_http --path DIR --port-file FILE`` (port 0: any free port, written
to FILE once the server listens). SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
from clickhouse_connect.driver._backend.chdb_backend import _decompress

# URL parameters of the HTTP interface that are not settings.
_NOT_SETTINGS = {
    "query",
    "database",
    "query_id",
    "default_format",
    "compress",
    "decompress",
    "session_id",
    "session_timeout",
    "session_check",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "enable_http_compression",
    "user",
    "password",
    "quota_key",
    "client_protocol_version",
    "buffer_size",
}
_INSERT_FORMAT = re.compile(r"^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Store:
    """One chDB connection, used by one request at a time."""

    def __init__(self, path: str) -> None:
        self.conn: Any = chdb.connect(path)
        self.lock = threading.Lock()
        self.spool = tempfile.mkdtemp(prefix="chdb-http-")

    def run(self, params: dict[str, str], body: bytes, encoding: str | None) -> bytes:
        sql = params.get("query", "")
        if not sql and body:
            # clickhouse-connect's insert() sends the statement as the body's first line,
            # the whole body compressed as one
            if encoding and encoding != "identity":
                body, encoding = _decompress(body, encoding), None
            head, _, body = body.partition(b"\n")
            sql = head.decode()
        settings = {
            k: v for k, v in params.items() if k not in _NOT_SETTINGS and not k.startswith("param_")
        }
        bound = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        insert = _INSERT_FORMAT.match(sql) if body else None
        with self.lock:
            self.conn.query(f"USE `{params.get('database') or 'default'}`", "TabSeparated")
            if insert is None:
                text = f"{sql}\n{body.decode()}" if body else sql
                return bytes(self.conn.query(text, "TabSeparated", params=bound).bytes())
            data = _decompress(body, encoding) if encoding and encoding != "identity" else body
            spool = Path(self.spool) / "insert.data"
            spool.write_bytes(data)
            clause = ", ".join(
                f"{k} = {_quote(v)}" for k, v in settings.items() if _SETTING_NAME.match(k)
            )
            statement = (
                f"{insert.group(1)} FROM INFILE {_quote(str(spool))}"
                f"{' SETTINGS ' + clause if clause else ''} FORMAT {insert.group(2)}"
            )
            self.conn.query(statement, "TabSeparated")
            return b""


def handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self) -> None:
            body = self._body()
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            if self.path.startswith("/ping"):
                self._send(200, b"Ok.\n")
                return
            try:
                result = store.run(params, body, self.headers.get("Content-Encoding"))
            except Exception as exc:  # the engine's refusal, as ClickHouse reports it
                text = str(exc)
                code = _CODE.search(text)
                self._send(500, text.encode(), code.group(1) if code else "1000")
                return
            self._send(200, result)

        def _body(self) -> bytes:
            """The request's body: by Content-Length, or chunked (clickhouse-connect's
            insert() streams its blocks)."""
            if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk

        def _send(self, status: int, data: bytes, code: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-ClickHouse-Summary", "{}")
            self.send_header("X-ClickHouse-Timezone", "UTC")
            if code is not None:
                self.send_header("X-ClickHouse-Exception-Code", code)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

    return Handler


class StoreServer:
    """This server as a child process of a test or benchmark: started, stopped (an outage)
    and started again on the same port and directory."""

    def __init__(self, folder: Path, *, cpu: int | None = None) -> None:
        self.folder = folder
        self.port = 0
        self.cpu = cpu
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        port_file = self.folder / "store.port"
        port_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tests.chdb_http", "--path", str(self.folder / "ch")]
        command += ["--port", str(self.port), "--port-file", str(port_file)]
        if self.cpu is not None:
            command = ["taskset", "-c", str(self.cpu), *command]
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": root}
        self.process = subprocess.Popen(command, env=env, cwd=root)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the chDB store server did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:  # what is stored was stored at each insert
                self.process.kill()
                self.process.wait(30)
        self.process = None

    def client(self, database: str | None = None) -> Any:
        import clickhouse_connect

        return clickhouse_connect.get_client(
            host="127.0.0.1", port=self.port, database=database or "default"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True, help="the chDB directory this server owns")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="written with the port once listening")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(Store(args.path)))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        Path(tmp).write_text(str(server.server_address[1]))
        os.replace(tmp, args.port_file)
    server.serve_forever()
    server.server_close()
    # Every insert was written when it was answered; chDB's own teardown can hang while
    # connections linger, so the process ends here.
    os._exit(0)


if __name__ == "__main__":
    main()
