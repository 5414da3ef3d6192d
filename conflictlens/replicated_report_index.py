"""The reports archive of a ClickHouse store (``report_archive``) as the DuckDB archive's
index (analysis.reports.archive): what ``GET /api/reports`` answers on every replica.

A row holds a report's JSON, not its files: a file is rendered from the JSON when asked
(``render(report, fmt)``: the same bytes on every replica), named after the report's id
(replicated_reports.file_name). A report lists the formats its schedule asks (in the config
in force), or those its "generate now" request asked (kept in the report as
``request.formats``), and JSON always. Sizes and digests are those of the rendered bytes;
they are computed once per report version and replica (a small cache), as the rows never
change. Deliveries come from the claims and outcomes replicated_reports records in
``serve_claims`` (``report-send|<id>|<channel>``), in the index's vocabulary: pending, sent,
retrying (after a failure, until the backoff ends), failed (MAX_ATTEMPTS failures).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conflictlens.analysis.reports.archive import INDEX_VERSION
from conflictlens.analysis.reports.config import ReportsConfig
from conflictlens.analysis.reports.render import FORMATS, render
from conflictlens.analysis.reports.text import headline
from conflictlens.replicated_alerts import MAX_ATTEMPTS, backoff
from conflictlens.replicated_reports import file_name
from conflictlens.store.clickhouse.state import READ_SETTINGS

CACHED = 4096  # report versions whose file sizes a replica remembers
SEND = "report-send|"

_ROWS = """
    SELECT id, schedule, replica, created_at FROM report_archive FINAL ORDER BY id
"""
_REPORT = """
    SELECT id, created_at, report FROM report_archive FINAL WHERE id = {id:String}
"""
# Every version (no FINAL): the index asks for the versions it listed, whichever is newest now.
_VERSIONS = """
    SELECT id, created_at, report FROM report_archive WHERE id IN {ids:Array(String)}
"""
_SENDS = """
    SELECT key, attempt, kind, at, detail FROM serve_claims
    WHERE startsWith(key, {prefix:String}) ORDER BY key, attempt, kind
"""

Entry = dict[str, Any]
History = list[tuple[int, str, dt.datetime, str]]  # (attempt, kind, at, detail)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Facts:
    """What the index says of one report version, computed from its JSON once."""

    period: dict[str, Any]
    summary: str
    requested: tuple[str, ...] | None  # the formats a "generate now" asked; None: scheduled
    files: dict[str, tuple[int, str]]  # format -> (size, sha256) of the rendered bytes


def facts_of(report: dict[str, Any]) -> Facts:
    files = {}
    for fmt in FORMATS:
        data = render(report, fmt)
        files[fmt] = (len(data), hashlib.sha256(data).hexdigest())
    asked = report.get("request", {}).get("formats")
    return Facts(dict(report["period"]), headline(report), tuple(asked) if asked else None, files)


class ReportIndex:
    """The index of ``client``'s report archive; ``reports()`` is the config in force."""

    def __init__(self, client: Any, reports: Callable[[], ReportsConfig]) -> None:
        self.client = client
        self.reports = reports
        self._facts: OrderedDict[tuple[str, dt.datetime], Facts] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, report_id: str) -> dict[str, Any] | None:
        """The archived report's data, or None."""
        found = self._query(_REPORT, {"id": report_id})
        return json.loads(found[0][2]) if found else None

    def load(self, *, deliveries: bool = True) -> dict[str, Any]:
        """The index: ``{"version", "reports": [entry, ...]}``, by period as the DuckDB
        archive keeps it; without ``deliveries`` (finding a file) serve_claims is not read."""
        rows = self._query(_ROWS, {})
        facts = self._facts_of([(str(r[0]), _utc(r[3])) for r in rows])
        sends = self._sends() if deliveries else {}
        schedules = {s.name: s for s in self.reports().schedules}
        entries = []
        for report_id, schedule, replica, created_at in rows:
            fact = facts.get((report_id, _utc(created_at)))
            if fact is None:  # merged away by a newer version since: listed next time
                continue
            plan = schedules.get(schedule)
            if fact.requested is not None:
                formats: Sequence[str] = fact.requested
            else:
                formats = plan.formats if plan is not None else ()
            channels = plan.channels if plan is not None else ()
            entry = _entry(report_id, schedule, replica, _utc(created_at), fact, formats)
            if deliveries:
                owed = _owed(sends.get(report_id, {}), channels)
                entry["deliveries"] = [
                    delivery(channel, history, entry["created"])
                    for channel, history in owed.items()
                ]
            entries.append(entry)
        entries.sort(key=lambda e: (e["period"]["from"], e["period"]["to"], e["id"]))
        return {"version": INDEX_VERSION, "reports": entries}

    def entry(self, report_id: str) -> Entry | None:
        found = [e for e in self.load()["reports"] if e["id"] == report_id]
        return found[0] if found else None

    def listed_file(self, name: str) -> tuple[str, str] | None:
        """(report id, format) of file ``name`` when the index lists it, else None."""
        for entry in self.load(deliveries=False)["reports"]:
            for f in entry["files"]:
                if f["name"] == name:
                    return str(entry["id"]), str(f["format"])
        return None

    def _facts_of(self, versions: Sequence[tuple[str, dt.datetime]]) -> dict[Any, Facts]:
        """Each version's facts, from the cache or rendered from the JSON (read in one query)."""
        with self._lock:
            known = {v: self._facts[v] for v in versions if v in self._facts}
        missing = sorted({v[0] for v in versions if v not in known})
        if missing:
            for report_id, created_at, text in self._query(_VERSIONS, {"ids": missing}):
                version = (str(report_id), _utc(created_at))
                known[version] = facts_of(json.loads(text))
                with self._lock:
                    self._facts[version] = known[version]
                    while len(self._facts) > CACHED:
                        self._facts.popitem(last=False)
        return known

    def _sends(self) -> dict[str, dict[str, History]]:
        """Report id -> channel -> its delivery attempts, from serve_claims."""
        found: dict[str, dict[str, History]] = {}
        for key, attempt, kind, at, detail in self._query(_SENDS, {"prefix": SEND}):
            report_id, _, channel = str(key).removeprefix(SEND).rpartition("|")
            history = found.setdefault(report_id, {}).setdefault(channel, [])
            history.append((int(attempt), str(kind), _utc(at), str(detail)))
        return found

    def _query(self, sql: str, parameters: Mapping[str, Any]) -> list[Any]:
        answer = self.client.query(sql, parameters=dict(parameters), settings=READ_SETTINGS)
        return list(answer.result_rows)


def _entry(
    report_id: str,
    schedule: str,
    replica: str,
    created_at: dt.datetime,
    fact: Facts,
    formats: Iterable[str],
) -> Entry:
    files = [
        {
            "format": fmt,
            "name": file_name(report_id, fmt),
            "size": fact.files[fmt][0],
            "sha256": fact.files[fmt][1],
        }
        for fmt in dict.fromkeys((*formats, "json"))
        if fmt in fact.files
    ]
    return {
        "id": report_id,
        "key": f"{fact.period['from']}..{fact.period['to']}",
        "period": fact.period,
        "schedule": schedule or None,
        "created": _iso(created_at),
        "summary": fact.summary,
        "size": sum(f["size"] for f in files),
        "files": files,
        "deliveries": [],
        "replica": replica,
    }


def _owed(sends: Mapping[str, History], channels: Sequence[str]) -> dict[str, History]:
    """The schedule's channels in its order, then any other channel a replica sent to."""
    owed = {channel: list(sends.get(channel, [])) for channel in channels}
    for channel in sorted(set(sends) - set(owed)):
        owed[channel] = list(sends[channel])
    return owed


def delivery(channel: str, history: History, created: str | None) -> Entry:
    """One channel's delivery as the DuckDB index shows it, from its attempts' records."""
    claims = {attempt: at for attempt, kind, at, _ in history if kind == "claim"}
    sent = [at for _, kind, at, _ in history if kind == "delivered"]
    attempts = max(claims, default=0)
    answer: Entry = {
        "channel": channel,
        "status": "pending",
        "attempts": attempts,
        "next_attempt": created if not claims else None,
        "last_attempt": _iso(claims[attempts]) if claims else None,
        "delivered": None,
        "error": None,
    }
    if sent:
        return answer | {"status": "sent", "delivered": _iso(min(sent))}
    failed = [(at, detail) for a, kind, at, detail in history if a == attempts and kind == "failed"]
    if not failed:
        return answer  # not tried yet, or being sent now
    at, detail = failed[0]
    answer["error"] = detail or None
    if attempts >= MAX_ATTEMPTS:
        return answer | {"status": "failed"}
    return answer | {"status": "retrying", "next_attempt": _iso(at + backoff(attempts))}
