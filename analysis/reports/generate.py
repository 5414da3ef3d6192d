"""One report built and kept in the archive: the one way a report enters the reports directory.

The scheduler's runs and every "generate now" (serve's ``POST /api/reports``, the dashboard
without serve, ``conflictlens report --archive``) go through here, so a report made by hand
has the same files, names and index entry as a scheduled one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from conflictlens._errors import InvalidValue
from conflictlens.analysis.reports.archive import Archive, Entry, Index
from conflictlens.analysis.reports.build import QueryFn, Report, ReportOptions, build_report
from conflictlens.analysis.reports.config import ReportsConfig
from conflictlens.analysis.reports.periods import Period, parse_period
from conflictlens.analysis.reports.render import FORMATS, render
from conflictlens.analysis.reports.text import headline

DEFAULT_FORMATS = ("html", "md")  # what a reader opens and what pastes into a ticket


def default_zone(settings: ReportsConfig) -> str:
    return settings.nightly.timezone if settings.nightly else "UTC"


def default_formats(settings: ReportsConfig) -> tuple[str, ...]:
    return settings.nightly.formats if settings.nightly else DEFAULT_FORMATS


def report_options(settings: ReportsConfig) -> ReportOptions:
    top = settings.nightly.top if settings.nightly else ReportOptions().top
    return ReportOptions(
        top=top, gap_minutes=settings.gap_minutes, silent_minutes=settings.silent_minutes
    )


def parse_request(
    settings: ReportsConfig,
    period: str,
    tz: str | None,
    formats: Sequence[str] | None,
    now: dt.datetime,
) -> tuple[Period, tuple[str, ...]]:
    """A "generate now" request's period and formats, with the defaults of ``settings``;
    InvalidValue (a ValueError) with a one-line reason."""
    chosen = parse_period(period, tz or default_zone(settings), now)
    wanted = tuple(dict.fromkeys(formats)) if formats else default_formats(settings)
    unknown = [fmt for fmt in wanted if fmt not in FORMATS]
    if unknown:
        raise InvalidValue(
            f"unknown report format(s) {', '.join(map(repr, unknown))}; known: {', '.join(FORMATS)}"
        )
    return chosen, wanted


def keep(
    archive: Archive,
    index: Index,
    period: Period,
    report: Report,
    formats: Sequence[str],
    *,
    created: dt.datetime,
    schedule: str | None,
    channels: Sequence[str],
) -> Entry:
    """Render ``report`` in ``formats`` and add it to ``index`` (the caller holds the lock
    and saves the index)."""
    # JSON always: a delivery retried after a restart is rendered from it.
    rendered = {fmt: render(report, fmt) for fmt in dict.fromkeys((*formats, "json"))}
    return archive.store(
        index,
        period,
        rendered,
        created=created,
        schedule=schedule,
        channels=channels,
        summary=headline(report),
    )


def generate_now(
    settings: ReportsConfig,
    ask: QueryFn,
    period: Period,
    formats: Sequence[str],
    now: dt.datetime | None = None,
) -> Entry:
    """Build the report of ``period`` now and keep it in ``settings.directory``.

    A period the archive already has is built again with fresh data: its files are replaced
    (keeping every format it had), while its schedule and deliveries stay as they were, so
    nothing is sent twice and the scheduler still counts the period done. A new period gets
    no deliveries: sending is the schedule's business.
    """
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    # Built before taking the lock: serve's scheduler waits on the lock from the thread that
    # also runs the alert evaluations, and a long build must not hold those up.
    report = build_report(ask, period, options=report_options(settings), generated=moment)
    archive = Archive(settings.directory)
    with archive.lock():
        index = archive.load()
        old = archive.find(index, period)
        if old is None:
            entry = keep(
                archive, index, period, report, formats, created=moment, schedule=None, channels=()
            )
        else:
            entry = _replace(archive, index, old, period, report, formats, moment)
        archive.save(index)
    return entry


def _replace(
    archive: Archive,
    index: Index,
    old: Entry,
    period: Period,
    report: Report,
    formats: Sequence[str],
    now: dt.datetime,
) -> Entry:
    index["reports"].remove(old)
    had = [f["format"] for f in old.get("files", [])]
    entry = keep(
        archive,
        index,
        period,
        report,
        (*had, *formats),
        created=now,
        schedule=old.get("schedule"),
        channels=(),
    )
    entry["deliveries"] = old.get("deliveries", [])
    written = {f["name"] for f in entry["files"]}
    for stale in {f["name"] for f in old.get("files", [])} - written:
        (archive.directory / stale).unlink(missing_ok=True)  # only if its name changed
    return entry
