"""The ``conflictlens serve`` the tail benchmark measures: started on a fresh store that follows
``<workdir>/logs/*.log``, watched, stopped; and the GETs that ask it what it has stored."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import BenchError, child_env, conflictlens_exe, free_port

SOURCES_PATH = "/api/queries/sources"  # the sources table: lines committed per file
STATUS_PATH = "/api/status"  # the same lines and the follower's view, at about 3x the cost
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no output)"
    lines = [line for line in lines if line]
    return lines[-1] if lines else "(no output)"


class Server:
    """A ``conflictlens serve`` child on a fresh store in ``workdir``."""

    def __init__(self, workdir: Path, flush_ms: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.db = workdir / "tail.duckdb"
        self.config = workdir / "conflictlens.toml"
        self.output = workdir / "serve.log"
        self.flush_ms = flush_ms
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def reset(self) -> None:
        """A fresh store, an empty logs folder and the config."""
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        for path in (self.db, Path(f"{self.db}.wal"), Path(f"{self.db}.serve")):
            path.unlink(missing_ok=True)
        self.config.write_text(
            f"db = {json.dumps(self.db.name)}\n\n"
            "[[sources]]\n"
            f"path = {json.dumps(str(self.logs / '*.log'))}\n\n"
            "[serve]\n"
            f"flush_ms = {self.flush_ms}\n"
        )

    def start(self) -> None:
        self.reset()
        self.port = free_port()
        cmd = [str(conflictlens_exe()), "serve", "--config", str(self.config)]
        cmd += ["--db", str(self.db), "--port", str(self.port), "--no-dashboard"]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise BenchError(f"serve did not answer /api/health within {STARTUP_TIMEOUT_S:.0f} s")

    def check(self) -> None:
        """Raise if serve has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(
                f"serve exited with status {self.proc.returncode}: {last_line(self.output)}"
            )

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of serve so far (all its threads), from /proc."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the seconds a clean stop took."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"serve did not stop within {STOP_TIMEOUT_S:.0f} s of SIGTERM: killed it")
            self.proc.kill()
            self.proc.wait()
            return None
        return time.monotonic() - started


# --- asking serve ----------------------------------------------------------------------


class Probe:
    """GETs to serve's API over one kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> Any:
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S
                )
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise BenchError(f"GET {path} failed: {exc or type(exc).__name__}") from None
        if response.status != 200:
            raise BenchError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def stored_lines(sources: list[dict[str, Any]], path: str) -> int:
    """Lines committed for the file at ``path`` (0 before serve has picked it up)."""
    return sum(int(s.get("lines") or 0) for s in sources if s.get("path") == path)


def following_entry(status: dict[str, Any], path: str) -> dict[str, Any] | None:
    return next((f for f in status.get("following", []) if f.get("path") == path), None)
