"""``conflictlens serve``: the one process that owns the database.

It runs, in one process: the followers of the configured sources, the job scheduler, and the
local HTTP API through which every other process (CLI, dashboard) reads. Binding beyond
loopback requires a token.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import uvicorn

from conflictlens.api import create_app
from conflictlens.client import discovery_file, write_discovery

log = logging.getLogger("conflictlens.serve")


class Follower(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def status(self) -> list[dict[str, Any]]: ...


class ServeError(Exception):
    """serve cannot start as asked; the message is one line."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Scheduler:
    """Periodic jobs on one thread; a failing job is logged and runs again next time."""

    jobs: list[tuple[str, float, Callable[[], None]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def every(self, name: str, seconds: float, job: Callable[[], None]) -> None:
        self.jobs.append((name, seconds, job))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import time

        due = {name: time.monotonic() + seconds for name, seconds, _ in self.jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for name, seconds, job in self.jobs:
                if now >= due[name]:
                    due[name] = now + seconds
                    try:
                        job()
                    except Exception:
                        log.exception("job %s failed", name)
            self._stop.wait(0.2)


def serve(
    con: duckdb.DuckDBPyConnection,
    db: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8409,
    token: str | None = None,
    followers: list[Follower] | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C; then stop following, flush and close within seconds."""
    if not is_loopback(host) and not token:
        raise ServeError(
            f"refusing to bind {host} without a token: set serve.token in the config or CONFLICTLENS_TOKEN"
        )
    followers = followers or []
    app = create_app(
        con.cursor,
        db_path=str(db),
        token=token,
        source_status=lambda: [s for f in followers for s in f.status()],
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    scheduler = Scheduler()
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    stop_once = threading.Event()

    def shutdown(*_: object) -> None:
        if not stop_once.is_set():
            stop_once.set()
            server.should_exit = True

    for follower in followers:
        follower.start()
    scheduler.start()
    # uvicorn captures SIGTERM/SIGINT while it runs and hands them back to these afterwards.
    previous = {sig: signal.signal(sig, shutdown) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        write_discovery(db, url)
        if on_ready:
            on_ready(url)
        server.run()
    finally:
        discovery_file(db).unlink(missing_ok=True)
        scheduler.stop()
        for follower in followers:
            follower.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
