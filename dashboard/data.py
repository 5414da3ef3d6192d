"""The dashboard's one data layer: every page asks the query catalog through ``ask``.

While ``conflictlens serve`` runs it owns the database, so questions go to its HTTP API (Arrow
streams); with no server the store is opened read-only for the one question and closed again,
so that a serve started later can take the file. Nothing here connects at import time.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from conflictlens._errors import ConflictlensError, first_line
from conflictlens.analysis import TimeRange, run_query
from conflictlens.client import ServerError, find_server, get_bytes, get_json
from conflictlens.store import StoreError, connect

CACHE_SECONDS = 10
# Answers are cached per store version (below), so they can be kept long: this only bounds
# how long an answer no page asks for again stays in memory.
ANSWER_SECONDS = 600
ANSWERS_KEPT = 512


class DataError(ConflictlensError):
    """The store or serve could not answer; the message is one line for the page to show."""


@dataclass(frozen=True)
class Store:
    """Where the data is: the database file (and serve's token, when it needs one)."""

    db: str
    token: str | None = None


def current_store() -> Store:
    """From the environment set by ``conflictlens dashboard`` / ``serve``."""
    return Store(
        db=os.environ.get("CONFLICTLENS_DB", "conflictlens.duckdb"),
        token=os.environ.get("CONFLICTLENS_TOKEN") or None,
    )


def ask(name: str, since: str | None, until: str | None, **values: Any) -> pl.DataFrame:
    """Catalog query ``name`` over [since, until) (ISO-8601 strings), cached until the store
    changes."""
    frozen = tuple(sorted((k, v) for k, v in values.items() if v not in (None, "")))
    store = current_store()
    return _ask(store, run_version(store), name, since, until, frozen, run_server(store))


def pin_version() -> None:
    """Read the store's version once for the script run (or fragment run) about to draw: all
    its questions and figures are then answered for that one version. Read afresh at each
    question, a live store that commits every half second changed under a page while it
    drew, and the page asked serve again for answers it had just fetched (the timeline for
    the chart, then again for the figure), a second and more per visit during an append."""
    store = current_store()
    st.session_state[_PINNED] = store_version(Path(store.db))
    st.session_state[_SERVER] = (find_server(Path(store.db)),)


def run_version(store: Store) -> tuple[int, ...]:
    """The version pinned for this run, or the store's own when nothing pinned one."""
    pinned = st.session_state.get(_PINNED)
    return tuple(pinned) if pinned is not None else store_version(Path(store.db))


def run_server(store: Store) -> str | None:
    """serve's address, looked up once per run (by pin_version): each lookup is a round trip
    to serve's health check, which a page asking five questions paid five times."""
    pinned = st.session_state.get(_SERVER)
    return pinned[0] if pinned is not None else find_server(Path(store.db))


_PINNED = "_store_version"
_SERVER = "_serve_url"


def drawn(
    build: Callable[..., Any],
    name: str,
    since: str | None,
    until: str | None,
    *args: Any,
    **values: Any,
) -> Any:
    """The figure ``build(answer, *args)`` draws from catalog query ``name``'s answer, built
    once per answer and shared by every page load that shows it: plotly.py checks each
    property it is given (60-80 ms for the Overview's chart), and the answer only changes
    with the store. Streamlit only reads the figure it is given."""
    frozen = tuple(sorted((k, v) for k, v in values.items() if v not in (None, "")))
    store = current_store()
    version = run_version(store)
    builder = f"{build.__module__}.{build.__qualname__}"
    server = run_server(store)
    return _drawn(store, version, builder, name, since, until, frozen, args, build, server)


@st.cache_resource(ttl=ANSWER_SECONDS, max_entries=ANSWERS_KEPT, show_spinner=False)
def _drawn(
    store: Store,
    version: tuple[int, ...],
    builder: str,
    name: str,
    since: str | None,
    until: str | None,
    values: tuple[tuple[str, Any], ...],
    args: tuple[Any, ...],
    _build: Callable[..., Any],
    _server: str | None,
) -> Any:
    """``builder`` (the function's name) is the key; ``_build`` itself is not hashed."""
    return _build(_ask(store, version, name, since, until, values, _server), *args)


def store_version(db: Path) -> tuple[int, ...]:
    """Changes whenever anything is committed to the store, by serve or anyone: DuckDB
    appends every commit to the ``.wal`` file beside the database, and a checkpoint rewrites
    the database and empties the WAL. Two stats, no query: a page asks it on every run."""
    version: list[int] = []
    for path in (db, db.with_name(db.name + ".wal")):
        try:
            found = path.stat()
        except OSError:
            version += [0, 0]
        else:
            version += [found.st_mtime_ns, found.st_size]
    return tuple(version)


@st.cache_data(ttl=ANSWER_SECONDS, max_entries=ANSWERS_KEPT, show_spinner=False)
def _ask(
    store: Store,
    version: tuple[int, ...],
    name: str,
    since: str | None,
    until: str | None,
    values: tuple[tuple[str, Any], ...],
    _server: str | None,
) -> pl.DataFrame:
    """``version`` is part of the cache key only: an answer is reused until the store
    changes, however often pages (or their live parts) ask. ``_server`` (not part of the
    key) is serve's address, or None to open the file."""
    params = dict(values)
    if _server is not None:
        return _from_serve(_server, store.token, name, {**params, "since": since, "until": until})
    return _from_file(Path(store.db), name, since, until, params)


def _from_serve(url: str, token: str | None, name: str, params: dict[str, Any]) -> pl.DataFrame:
    try:
        body = get_bytes(
            url, f"/api/queries/{name}", token=token, params={**params, "format": "arrow"}
        )
    except (ServerError, OSError) as exc:
        raise DataError(first_line(exc)) from None
    return pl.read_ipc_stream(io.BytesIO(body))


def _from_file(
    db: Path, name: str, since: str | None, until: str | None, params: dict[str, Any]
) -> pl.DataFrame:
    with read_only(db) as con:
        return run_query(con, name, TimeRange(_parse(since), _parse(until)), **params)


@contextmanager
def read_only(db: Path) -> Iterator[Any]:
    """The store opened read-only for one piece of work, closed again after it (a serve
    started meanwhile can then take the file)."""
    if not db.exists():
        raise DataError(f"no store at {db}: import logs with `conflictlens ingest` first")
    with opened(db, read_only=True) as con:
        yield con


@contextmanager
def opened(db: Path, *, read_only: bool) -> Iterator[Any]:
    """The store for one piece of work (writable only with no serve: the page's own writes);
    a store that cannot be opened is one line."""
    try:
        con = connect(db, read_only=read_only)
    except StoreError as exc:
        raise DataError(str(exc)) from None
    try:
        yield con
    finally:
        con.close()


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def spreadsheet_csv(frame: pl.DataFrame) -> str:
    """``frame`` as CSV in which no cell from a log (a route, a user agent) is a formula."""
    from conflictlens.analysis.reports.render_csv import formula_safe

    return formula_safe(frame).write_csv()


def serve_status() -> dict[str, Any] | None:
    """serve's /api/status (sources with lag and rate), or None when serve is not running."""
    store = current_store()
    url = find_server(Path(store.db))
    if url is None:
        return None
    try:
        status: dict[str, Any] = get_json(url, "/api/status", token=store.token, timeout=5)
    except (ServerError, OSError):
        return None
    return status
