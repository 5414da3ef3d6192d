"""The Reports page's data: the archive of reports, their files, and "Generate now".

While serve runs, everything goes through its API (``/api/reports``): it lists the archive
and hands out its files, and builds and archives a report (it owns the store). On a
ClickHouse store that is the only way: the archive is in the store (``report_archive``),
answered the same by every replica. With no serve the archive is the directory of files with
an index (analysis.reports.archive) named by the config file's [reports] table
(``$CONFLICTLENS_CONFIG``, as for every command), and a report is built here on the store
opened read-only. Both end in the same ``generate_now`` on DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from conflictlens._errors import first_line
from conflictlens.analysis.reports import (
    Archive,
    ArchiveError,
    ReportsConfig,
    default_formats,
    default_zone,
    generate_now,
    local_queries,
    parse_request,
)
from conflictlens.analysis.reports.render import FORMATS, MEDIA_TYPES
from conflictlens.client import ServerError, find_server, get_bytes, get_json, send_json
from conflictlens.config import ConfigError, load_config
from conflictlens.dashboard.data import DataError, current_store, read_only

REPORT_FORMATS = FORMATS
BUILD_TIMEOUT_SECONDS = 300.0  # a month's report asks serve for seconds of work per section
T = TypeVar("T")


def reports_settings() -> ReportsConfig:
    """[reports] of the config file in force (its defaults when there is none)."""
    try:
        return load_config().reports
    except ConfigError as exc:
        raise DataError(first_line(exc)) from None


def reports_directory() -> Path:
    return reports_settings().directory


def generate_defaults() -> tuple[str, tuple[str, ...]]:
    """The form's time zone and formats: the nightly report's, else UTC and html + md."""
    settings = reports_settings()
    return default_zone(settings), default_formats(settings)


def archived_reports() -> list[dict[str, Any]]:
    """Every archived report, latest period first, as plain rows for a table (plus its files)."""
    served = _from_serve(lambda url, token: get_json(url, "/api/reports", token=token))
    index = served if served is not None else _archive_read(lambda archive: archive.load())
    entries = sorted(index["reports"], key=_newest, reverse=True)
    return [
        {
            "id": e["id"],
            "period": e["period"]["label"],
            "created": e["created"],
            "size": e["size"],
            "formats": ", ".join(f["format"] for f in e["files"]),
            "deliveries": _deliveries(e.get("deliveries", [])),
            "summary": e.get("summary", ""),
            "files": [{"name": f["name"], "format": f["format"]} for f in e["files"]],
        }
        for e in entries
    ]


def _newest(entry: dict[str, Any]) -> tuple[str, str]:
    """The period's end, then the creation time: the latest period first, as in any archive
    of dated reports (a period made again keeps its place)."""
    return str(entry["period"].get("to", "")), str(entry.get("created", ""))


def _deliveries(deliveries: Sequence[dict[str, Any]]) -> str:
    """``ops-mail: sent; hook: retrying (timeout)``; "-" for a report sent nowhere."""
    shown = []
    for d in deliveries:
        reason = f" ({d['error']})" if d.get("error") and d["status"] != "sent" else ""
        shown.append(f"{d['channel']}: {d['status']}{reason}")
    return "; ".join(shown) or "-"


def report_file(name: str) -> bytes:
    """The stored file ``name``; only names the index lists are read."""
    path = f"/api/reports/files/{quote(name, safe='')}"
    served = _from_serve(lambda url, token: get_bytes(url, path, token=token))
    if served is not None:
        data: bytes = served
        return data
    found = _archive_read(lambda archive: archive.listed_file(name))
    if found is None:
        raise DataError(f"no report file {name!r} in the reports index")
    try:
        return found[0].read_bytes()
    except OSError as exc:
        raise DataError(f"{found[0]}: {exc.strerror or exc}") from None


def media_type(fmt: str) -> str:
    return MEDIA_TYPES.get(fmt, "application/octet-stream")


def generate_report(period: str, tz: str | None, formats: Sequence[str]) -> dict[str, Any]:
    """Build the report of ``period`` now and archive it; returns its index entry."""
    store = current_store()
    db = Path(store.db)
    url = find_server(db)
    if url is not None:
        body = {"period": period, "tz": tz or None, "formats": list(formats) or None}
        try:
            entry: dict[str, Any] = send_json(
                url, "/api/reports", body, token=store.token, timeout=BUILD_TIMEOUT_SECONDS
            )
        except ServerError as exc:
            hint = " (a serve older than this dashboard? restart it)" if " 404:" in str(exc) else ""
            raise DataError(f"{first_line(exc)}{hint}") from None
        except OSError as exc:
            raise DataError(f"serve at {url} did not answer: {exc}") from None
        return entry
    settings = reports_settings()
    try:
        chosen, wanted = parse_request(settings, period, tz, formats, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise DataError(first_line(exc)) from None
    with read_only(db) as con:
        try:
            return generate_now(settings, local_queries(con), chosen, wanted)
        except ArchiveError as exc:
            raise DataError(str(exc)) from None


def _from_serve(ask: Callable[[str, str | None], T]) -> T | None:
    """serve's answer to ``ask(url, token)``, or None when no serve runs; its refusal (a
    file the index does not list: 404) is one line."""
    store = current_store()
    url = find_server(Path(store.db))
    if url is None:
        return None
    try:
        return ask(url, store.token)
    except ServerError as exc:
        raise DataError(first_line(exc)) from None
    except OSError as exc:
        raise DataError(f"serve at {url} did not answer: {exc}") from None


def _archive_read(read: Callable[[Archive], T]) -> T:
    try:
        return read(Archive(reports_directory()))
    except ArchiveError as exc:
        raise DataError(str(exc)) from None


def last_day_with_data() -> dt.date | None:
    """The UTC date of the newest data in the store (the form's default day)."""
    from conflictlens.dashboard.data import ask

    totals = ask("totals", None, None)
    last = totals["last_minute"][0] if totals.height else None
    return last.date() if isinstance(last, dt.datetime) else None


def period_requests(period: str, tz: str | None) -> tuple[str, int]:
    """The period's label and how many requests the store holds in it: a report of a period
    without any is empty, and is not worth archiving. A bad period or zone is one line."""
    from conflictlens.analysis.reports import parse_period
    from conflictlens.dashboard.data import ask

    try:
        chosen = parse_period(
            period, tz or default_zone(reports_settings()), dt.datetime.now(dt.UTC)
        )
    except ValueError as exc:
        raise DataError(first_line(exc)) from None
    since = chosen.since.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    until = chosen.until.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    totals = ask("totals", since, until)
    requests = int(totals["requests"][0] or 0) if totals.height else 0
    return f"{since[:16]} to {until[:16]} UTC".replace("T", " "), requests
