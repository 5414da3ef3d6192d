"""``conflictlens serve``: the one process that owns the database.

It runs, in one process: the followers of the configured sources, the job scheduler, and the
local HTTP API through which every other process (CLI, dashboard) reads. Binding beyond
loopback requires a token.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import uvicorn

from conflictlens._errors import ServerError, first_line
from conflictlens.api import create_app
from conflictlens.client import discovery_file, write_discovery
from conflictlens.store.engine import Store

log = logging.getLogger("conflictlens.serve")


class Follower(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def status(self) -> list[dict[str, Any]]: ...


class ServeError(ServerError):
    """serve cannot start as asked; the message is one line."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Job:
    """A periodic job: ``run`` gets the scheduler's own cursor on the database."""

    name: str
    seconds: float
    run: Callable[[duckdb.DuckDBPyConnection], object]
    first_after: float = 0.0  # seconds after start of the first run


@dataclass
class Scheduler:
    """Periodic jobs on one thread; a failing job is logged and runs again next time."""

    jobs: list[tuple[str, float, Callable[[], None]]] = field(default_factory=list)
    first: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def every(
        self, name: str, seconds: float, job: Callable[[], None], first_after: float | None = None
    ) -> None:
        self.jobs.append((name, seconds, job))
        self.first[name] = seconds if first_after is None else first_after

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        due = {name: time.monotonic() + self.first[name] for name, _, _ in self.jobs}
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


class ConfigReloader:
    """Watches the config file (watchdog) and swaps the followers when it changes.

    An invalid config is refused with one logged line and the running one stays.
    """

    def __init__(
        self, path: Path, load: Callable[[], list[Follower]], followers: list[Follower]
    ) -> None:
        self.path = path.resolve()
        self.load = load
        self.followers = followers  # shared with the API's status: swapped in place
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-reload", daemon=True)
        self._observer: Any = None
        self.reloads = 0
        self.last_error: str | None = None

    def start(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        reloader = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reading the file (we do, on every reload) changes nothing
                paths = {str(event.src_path), str(getattr(event, "dest_path", "") or "")}
                if str(reloader.path) in paths:
                    reloader._changed.set()

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.path.parent), recursive=False)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.wait()
            if self._stop.is_set():
                return
            self._stop.wait(0.3)  # editors write in several steps: let them finish
            self._changed.clear()
            self.reload()

    def reload(self) -> None:
        try:
            fresh = self.load()
        except Exception as exc:
            self.last_error = first_line(exc)
            log.error("config %s refused, the running one stays: %s", self.path, self.last_error)
            return
        for follower in self.followers:
            follower.stop()
        self.followers[:] = fresh
        for follower in fresh:
            follower.start()
        self.reloads += 1
        self.last_error = None
        log.warning("config %s reloaded: %d follower(s)", self.path, len(fresh))


def _bound(job: Job, cursor: duckdb.DuckDBPyConnection) -> Callable[[], None]:
    def run() -> None:
        job.run(cursor)

    return run


def with_lag_seconds(status: dict[str, Any]) -> dict[str, Any]:
    """Add how long the unread bytes of a followed file have waited: the time since the file
    was last written, while bytes are unread; 0 when it is caught up."""
    lag = 0.0
    if status.get("lag_bytes") and status.get("path"):
        try:
            lag = max(0.0, time.time() - os.stat(status["path"]).st_mtime)
        except OSError:
            lag = 0.0
    return {**status, "lag_seconds": round(lag, 3)}


def serve(
    con: duckdb.DuckDBPyConnection | None,
    db: Path,
    *,
    cursor: Callable[[], AbstractContextManager[Store]] | None = None,
    host: str = "127.0.0.1",
    port: int = 8409,
    token: str | None = None,
    current_token: Callable[[], str | None] | None = None,
    followers: list[Follower] | None = None,
    on_ready: Callable[[str], None] | None = None,
    config_path: Path | None = None,
    reload_followers: Callable[[], list[Follower]] | None = None,
    jobs: list[Job] | None = None,
    routers: list[Any] | None = None,
    services: list[Any] | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C; then stop following, flush and close within seconds.

    ``token`` is the token at start; ``current_token``, when given, the one in force (a
    config reload may add or change it), asked on every request. Without ``con`` (serve on
    ClickHouse) the API reads through ``cursor`` and ``jobs`` are not taken: the replica's
    own scheduler is one of ``services``."""
    if not is_loopback(host) and not token:
        raise ServeError(
            f"refusing to bind {host} without a token: set serve.token in the config or CONFLICTLENS_TOKEN"
        )
    followers = list(followers or [])
    reloader = (
        ConfigReloader(config_path, reload_followers, followers)
        if config_path is not None and reload_followers is not None
        else None
    )

    def following() -> list[dict[str, Any]]:
        status = [with_lag_seconds(s) for f in list(followers) for s in f.status()]
        if reloader is not None and reloader.last_error:
            status.append({"config_error": reloader.last_error})
        return status

    # Bound to every address, serve cannot know its names: the token (required there) guards it.
    hosts = frozenset({"*"} if host in ("0.0.0.0", "::", "") else {host.lower()})
    reader = cursor if cursor is not None else con.cursor if con is not None else None
    assert reader is not None, "serve needs a connection or a cursor"
    app = create_app(
        reader,
        db_path=str(db),
        token=current_token or token,
        source_status=following,
        hosts=hosts,
    )
    for router in routers or []:
        app.include_router(router)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    scheduler = Scheduler()
    # the scheduler thread's own handle on the database
    job_cursor = con.cursor() if con is not None else None
    for job in jobs or []:
        assert job_cursor is not None, "jobs run on a DuckDB connection"
        scheduler.every(job.name, job.seconds, _bound(job, job_cursor), job.first_after)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    stop_once = threading.Event()

    def shutdown(*_: object) -> None:
        if not stop_once.is_set():
            stop_once.set()
            server.should_exit = True

    for follower in followers:
        follower.start()
    for service in services or []:
        service.start()
    if reloader is not None:
        reloader.start()
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
        if reloader is not None:
            reloader.stop()
        scheduler.stop()
        for service in services or []:
            service.stop()
        if job_cursor is not None:
            job_cursor.close()
        for follower in followers:
            follower.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
