"""The Alerts page's data: rules with their groups' states, a rule's backtest preview, and
the page's writes (rules into the config file, silences into the store).

While serve runs, everything goes through its API: it owns the store, and it saves rules
into the config file it reloads. With no server, reads open the store read-only for the one
call, rules are written into the config file (``CONFLICTLENS_CONFIG``, else
``./conflictlens.toml``) and silences into the store, as the CLI does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import polars as pl
import streamlit as st

from conflictlens._errors import first_line
from conflictlens.client import ServerError, find_server, get_json, send_json
from conflictlens.config import DEFAULT_CONFIG, Config, ConfigError, find_config, load_config
from conflictlens.dashboard.data import (
    CACHE_SECONDS,
    DataError,
    Store,
    current_store,
    opened,
    read_only,
)

T = TypeVar("T")
Connection = Any  # a read-only DuckDB connection from store.connect


def alerts_overview() -> dict[str, Any]:
    """Rules (with their groups' states), channel names and silences."""
    return _overview(current_store(), _config_version())


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _overview(store: Store, config_version: tuple[str, int]) -> dict[str, Any]:
    """``config_version`` keys the cache: an edit of the config file shows at once."""

    def here(con: Connection, config: Config) -> dict[str, Any]:
        from conflictlens.analysis.alerts.reads import overview

        return overview(con, config.alerts, _utc_now())

    return _either(store, lambda url: get_json(url, "/api/alerts", token=store.token), here)


def active_alerts() -> list[dict[str, Any]]:
    """Groups pending or firing now, most severe state first (for the Overview)."""
    rows = [
        {"rule": rule["name"], "severity": rule["severity"], **group}
        for rule in alerts_overview()["rules"]
        for group in rule["groups"]
        if group["state"] in ("firing", "pending")
    ]
    return sorted(rows, key=lambda r: (r["state"] != "firing", r["rule"], r["fingerprint"]))


@dataclass(frozen=True)
class Preview:
    """A rule's backtest: the episodes it would have fired and its metric for a chart."""

    episodes: pl.DataFrame  # rule, fingerprint, labels, start, end (ISO text), peak_value
    series: pl.DataFrame  # time (ISO text), group, value, threshold


_EPISODES = {
    "rule": pl.String,
    "fingerprint": pl.String,
    "labels": pl.String,  # the group's labels as k=v text
    "start": pl.String,
    "end": pl.String,
    "peak_value": pl.Float64,
}
_SERIES = {"time": pl.String, "group": pl.String, "value": pl.Float64, "threshold": pl.Float64}


def preview_rule(rule: Mapping[str, Any], since: str | None, until: str | None) -> Preview:
    """A rule's backtest over [since, until), saved or not; a DataError names the invalid
    key."""
    answer = _preview(rule, since, until)
    episodes = pl.DataFrame(
        [{**e, "labels": _group_text(e["labels"])} for e in answer["episodes"]],
        schema=_EPISODES,
    )
    series = pl.DataFrame(answer["series"], schema=_SERIES)
    return Preview(episodes, series)


def _group_text(labels: Mapping[str, str]) -> str:
    """A group's labels as k=v text, without the two every alert of the rule shares."""
    shared = ("alertname", "severity")
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k not in shared) or "all"


def _preview(rule: Mapping[str, Any], since: str | None, until: str | None) -> dict[str, Any]:
    store = current_store()
    body = {"rule": dict(rule), "since": since, "until": until}

    def here(con: Connection, config: Config) -> dict[str, Any]:
        from conflictlens.analysis.alerts import parse_rule, preview
        from conflictlens.timeparse import parse_time

        try:
            parsed = parse_rule(dict(rule), config.alerts.channels)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        first = parse_time(since) if since else None
        last = parse_time(until) if until else None
        return preview(con, parsed, config.alerts.evaluation_interval, first, last)

    return _either(
        store,
        lambda url: send_json(url, "/api/alerts/preview", body, token=store.token, timeout=120),
        here,
    )


def save_rule(rule: Mapping[str, Any], replaces: str | None) -> str:
    """Write the rule into the config file (in place of ``replaces``); where it went."""
    store = current_store()
    url = find_server(Path(store.db))
    name = replaces or str(rule.get("name", ""))
    if url is not None:
        answer = _asking(
            lambda: send_json(
                url,
                f"/api/alerts/rules/{quote(name, safe='')}",
                {"rule": dict(rule)},
                token=store.token,
                method="PUT",
            )
        )
        _overview.clear()
        return f"saved in {answer['path']}; serve reloads it"
    from conflictlens.config_edit import save_rule as write

    path = _config_path()
    try:
        config = load_config(str(path)) if path.exists() else None
        exists = config is not None and name in {r.name for r in config.alerts.rules}
        write(path, rule, replaces=name if exists and replaces else None)
    except ConfigError as exc:
        raise DataError(first_line(exc)) from None
    _overview.clear()
    return f"saved in {path}"


def delete_rule(name: str) -> str:
    store = current_store()
    url = find_server(Path(store.db))
    if url is not None:
        where = f"/api/alerts/rules/{quote(name, safe='')}"
        answer = _asking(lambda: send_json(url, where, token=store.token, method="DELETE"))
        _overview.clear()
        return f"deleted from {answer['path']}; serve reloads it"
    from conflictlens.config_edit import delete_rule as remove

    path = _config_path()
    try:
        remove(path, name)
    except ConfigError as exc:
        raise DataError(first_line(exc)) from None
    _overview.clear()
    return f"deleted from {path}"


def add_silence(matchers: Mapping[str, str], duration: str, comment: str) -> int:
    """Hold back notifications of alerts matching every matcher, from now for ``duration``."""
    store = current_store()
    url = find_server(Path(store.db))
    body = {"matchers": dict(matchers), "duration": duration, "comment": comment}
    if url is not None:
        answer = _asking(lambda: send_json(url, "/api/alerts/silences", body, token=store.token))
        _overview.clear()
        return int(answer["id"])
    from conflictlens.analysis.alerts import parse_duration
    from conflictlens.store import alerts as alert_store

    try:
        length = parse_duration(duration, "duration")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    now = _utc_now()
    with _writable(store) as con:
        number = alert_store.add_silence(con, dict(matchers), now, now + length, comment, now)
    _overview.clear()
    return number


def expire_silence(silence_id: int) -> None:
    store = current_store()
    url = find_server(Path(store.db))
    if url is not None:
        path = f"/api/alerts/silences/{silence_id}/expire"
        _asking(lambda: send_json(url, path, token=store.token))
    else:
        from conflictlens.store import alerts as alert_store

        with _writable(store) as con:
            if not alert_store.expire_silence(con, silence_id, _utc_now()):
                raise DataError(f"no active silence {silence_id}")
    _overview.clear()


def _either(
    store: Store,
    remote: Callable[[str], T],
    here: Callable[[Connection, Config], T],
) -> T:
    """Ask serve when it runs, else the store read-only and the config file."""
    url = find_server(Path(store.db))
    if url is not None:
        return _asking(lambda: remote(url))
    config = _config()
    with read_only(Path(store.db)) as con:
        return here(con, config)


def _asking(call: Callable[[], T]) -> T:
    try:
        return call()
    except (ServerError, OSError) as exc:
        raise DataError(first_line(exc)) from None


def _writable(store: Store) -> AbstractContextManager[Connection]:
    return opened(Path(store.db), read_only=False)


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        raise DataError(first_line(exc)) from None


def _config_version() -> tuple[str, int]:
    path = _config_path()
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError:
        return str(path), 0


def _config_path() -> Path:
    """The config file rules are saved in: the one in use, else ./conflictlens.toml."""
    return find_config(None) or Path(DEFAULT_CONFIG)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
