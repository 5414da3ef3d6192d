"""``conflictlens report``: a period's conflicts as one document, once, or as scheduled.

The report is built from the catalog's named queries through a query function: serve's HTTP
API (Arrow, so the frames keep their types) when serve owns the store, else the store opened
read-only. ``--due`` does what serve's scheduler does, once: for cron and systemd timers;
``--archive`` keeps one report in the reports directory as the scheduler would.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import polars as pl

from conflictlens.analysis.params import TimeRange
from conflictlens.analysis.reports import (
    FORMATS,
    Archive,
    QueryFn,
    ReportOptions,
    ReportScheduler,
    ReportsConfig,
    build_report,
    generate_now,
    local_queries,
    parse_period,
    parse_reports,
    parse_request,
    render,
)
from conflictlens.analysis.reports.archive import write_atomic
from conflictlens.analysis.reports.render import SUFFIXES, formats_text
from conflictlens.cli_support import UserError, common_options, friendly_errors, resolve_config
from conflictlens.config import Config
from conflictlens.timeparse import parse_time

ARROW_STREAM = "application/vnd.apache.arrow.stream"
SERVE_TIMEOUT_S = 300.0  # a month's report asks for a few seconds of work per query


def serve_queries(url: str, token: str | None) -> QueryFn:
    """The query function through serve's API, answered as Arrow IPC streams."""

    def ask(name: str, time_range: TimeRange, values: Mapping[str, Any]) -> pl.DataFrame:
        params = {k: v for k, v in values.items() if v is not None}
        for key, moment in (("since", time_range.since), ("until", time_range.until)):
            if moment is not None:
                params[key] = moment.astimezone(dt.UTC).isoformat()
        params["format"] = "arrow"
        address = f"{url.rstrip('/')}/api/queries/{urllib.parse.quote(name)}"
        request = urllib.request.Request(
            f"{address}?{urllib.parse.urlencode(params)}", headers={"Accept": ARROW_STREAM}
        )
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=SERVE_TIMEOUT_S) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    detail = json.loads(exc.read()).get("detail", exc.reason)
                except ValueError:
                    detail = exc.reason
            hint = " (a serve started before this conflictlens was installed? restart it)"
            raise UserError(
                f"serve at {url} answered {exc.code} for {name}: {detail}"
                f"{hint if exc.code == 404 else ''}"
            ) from None
        except OSError as exc:
            raise UserError(f"serve at {url}: {exc}") from None
        return pl.read_ipc_stream(io.BytesIO(data))

    return ask


@contextmanager
def query_function(config: Config, db: Path) -> Iterator[QueryFn]:
    """Through serve when it runs (it owns the file), else on the store opened read-only."""
    from conflictlens.client import find_server
    from conflictlens.store import connect

    url = find_server(db)
    if url is not None:
        yield serve_queries(url, config.serve.token)
        return
    con = connect(db, read_only=True)
    try:
        yield local_queries(con)
    finally:
        con.close()


def _config_table(config: Config) -> dict[str, Any]:
    if config.path is None:
        return {}
    try:
        return tomllib.loads(config.path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{config.path}: cannot read: {exc}") from None


def reports_config(config: Config) -> ReportsConfig:
    """``[reports]``: from the loaded config once conflictlens.config carries it
    (``config.reports``), until then read from the config file here."""
    wired = getattr(config, "reports", None)
    if isinstance(wired, ReportsConfig):
        return wired
    where = str(config.path) if config.path else "config"
    try:
        return parse_reports(_config_table(config).get("reports", {}), where)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def report_channels(config: Config) -> Mapping[str, Any]:
    """The ``[alerts.channels]`` reports are delivered to (``config.alerts.channels`` once
    wired, else parsed here with notify's parser)."""
    wired = getattr(getattr(config, "alerts", None), "channels", None)
    if isinstance(wired, Mapping):
        return wired
    from conflictlens.notify import ChannelConfigError, parse_channels

    alerts = _config_table(config).get("alerts", {})
    table = alerts.get("channels", {}) if isinstance(alerts, dict) else {}
    try:
        return parse_channels(table, base_dir=config.path.parent if config.path else None)
    except ChannelConfigError as exc:
        raise UserError(f"{config.path or 'config'}: {exc}") from None


def _format(fmt: str | None, out: str | None) -> str:
    if fmt:
        return fmt
    if out and out != "-":
        return SUFFIXES.get(Path(out).suffix.lower(), "md")
    return "md"


def _now(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise UserError(f"--now: {exc}") from None


@click.command()
@common_options
@click.option(
    "--period",
    default="yesterday",
    show_default=True,
    help="yesterday, last-24h, last-7d, a day (YYYY-MM-DD), or FROM..TO (dates or "
    "date-times, TO exclusive; read in --tz unless they carry an offset).",
)
@click.option(
    "--tz",
    "tz_name",
    help="Time zone of the period and of the times shown, an IANA name such as "
    "Europe/Berlin (default: [reports.nightly] timezone, else UTC).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help=f"{formats_text()} (default: from --out's extension, else md).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the report to this file (atomically) instead of standard output.",
)
@click.option(
    "--top",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Rows per list: clusters, new and growing clusters, resources, storms.",
)
@click.option(
    "--now",
    "now_text",
    help="The time yesterday, last-24h and last-7d count from (ISO-8601; default: now).",
)
@click.option(
    "--due",
    is_flag=True,
    help="Do what serve's scheduler does, once: build the [reports.nightly] report if its "
    "period has none yet, deliver it, retry failed deliveries, apply retention. For cron "
    "and systemd timers.",
)
@click.option(
    "--archive",
    "to_archive",
    is_flag=True,
    help="Keep the report in the reports directory with its index entry, as the scheduler "
    "does (a period already there is built again, its deliveries kept), instead of writing "
    "it out. Formats: --format, else [reports.nightly]'s, else html and md (JSON always); "
    "lists as long as [reports.nightly] top.",
)
@click.option(
    "--list",
    "list_reports",
    is_flag=True,
    help="Show the reports directory's index: periods, files, deliveries and their status.",
)
@friendly_errors
def report(
    config_file: str | None,
    db_path: str | None,
    period: str,
    tz_name: str | None,
    fmt: str | None,
    out: str | None,
    top: int,
    now_text: str | None,
    due: bool,
    to_archive: bool,
    list_reports: bool,
) -> None:
    """A report of one period's conflicts: headline numbers against the period before and
    the week before, the ratio trend, top, new and fastest-growing clusters, hot resources,
    retry storms, incidents, alerts, and ingest health.

    The HTML form is one file that opens offline and prints well; log content in it is
    escaped and cannot run.

    Example:

        conflictlens report --period yesterday --tz Europe/Berlin --out report.html
    """
    config, db = resolve_config(config_file, db_path)
    now = _now(now_text)
    if to_archive and (out or due or list_reports):
        raise UserError(
            "--archive keeps the report in the reports directory: drop --out/--due/--list"
        )
    if due or list_reports:
        given = [name for name, value in (("--format", fmt), ("--out", out)) if value]
        if period != "yesterday" or tz_name:
            given += ["--period/--tz"]
        if given or (due and list_reports):
            raise UserError(
                "--due and --list take the period, zone and formats from [reports]; "
                f"drop {', '.join(given) or 'one of --due/--list'}"
            )
        settings = reports_config(config)
        if list_reports:
            _list(settings)
        else:
            _run_due(config, db, settings, now)
        return
    settings = reports_config(config)
    if to_archive:
        _archive_now(config, db, settings, (period, tz_name, fmt), now)
        return
    zone = tz_name or (settings.nightly.timezone if settings.nightly else "UTC")
    chosen = parse_period(period, zone, now)
    output = _format(fmt, out)
    options = ReportOptions(
        top=top, gap_minutes=settings.gap_minutes, silent_minutes=settings.silent_minutes
    )
    with query_function(config, db) as ask:
        data = render(build_report(ask, chosen, options=options), output)
    if out and out != "-":
        target = Path(out)
        if not target.parent.is_dir():
            raise UserError(f"--out: folder {target.parent} does not exist")
        try:
            write_atomic(target, data)
        except OSError as exc:
            raise UserError(f"--out: cannot write {target}: {exc.strerror or exc}") from None
        click.echo(f"wrote {target} ({output}, {len(data):,} bytes) for {chosen.label}")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _archive_now(
    config: Config,
    db: Path,
    settings: ReportsConfig,
    asked: tuple[str, str | None, str | None],
    now: dt.datetime,
) -> None:
    period, tz_name, fmt = asked
    chosen, formats = parse_request(settings, period, tz_name, [fmt] if fmt else None, now)
    with query_function(config, db) as ask:
        entry = generate_now(settings, ask, chosen, formats, now)
    for f in entry["files"]:
        click.echo(f"wrote {settings.directory / f['name']}")


def _run_due(config: Config, db: Path, settings: ReportsConfig, now: dt.datetime) -> None:
    from conflictlens.notify.report_delivery import ReportDelivery

    if settings.nightly is None:
        where = config.path or "the config"
        raise UserError(f"{where}: no [reports.nightly] table: nothing is scheduled")
    scheduler = ReportScheduler(settings, deliver=ReportDelivery(report_channels(config)))
    with query_function(config, db) as ask:
        written = scheduler.run_due(ask, now)
    for path in written:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("no report due: the latest scheduled period has its report")
    for report_id, delivery in scheduler.failures:
        retry = f"; next try after {delivery['next_attempt']}" if delivery["next_attempt"] else ""
        click.echo(
            f"delivery of {report_id} to {delivery['channel']} failed: {delivery['error']}{retry}",
            err=True,
        )
    if scheduler.failures:
        sys.exit(1)


def _list(settings: ReportsConfig) -> None:
    index = Archive(settings.directory).load()
    if not index["reports"]:
        click.echo(f"no reports in {settings.directory}")
        return
    for entry in index["reports"]:
        files = ", ".join(f["name"] for f in entry["files"])
        click.echo(
            f"{entry['period']['label']}: {entry['size']:,} bytes, created {entry['created']}: {files}"
        )
        for d in entry.get("deliveries", []):
            detail = f" ({d['error']})" if d.get("error") else ""
            click.echo(f"  {d['channel']}: {d['status']} after {d['attempts']} attempt(s){detail}")
