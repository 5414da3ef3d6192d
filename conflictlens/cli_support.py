"""What every command shares: one-line errors, the common options, reading through serve."""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from conflictlens._errors import ConflictlensError, first_line
from conflictlens.config import Config, load_config
from conflictlens.timeparse import parse_time

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException, ConflictlensError):
    """A problem the user can fix: printed as one line, exit status 1. The message may hold
    log-derived text (a path, a line's start): its control characters are escaped."""

    def __init__(self, message: str) -> None:
        from conflictlens.analysis.reports.text import printable

        super().__init__(printable(message.splitlines()[0] if message else message))


def friendly_errors(func: F) -> F:
    """Turn the project's own errors (every ConflictlensError) into one clear line and exit
    status 1; anything else is a bug, which ``run`` reports."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # a UserError already, or click's own
        except ConflictlensError as exc:
            raise UserError(first_line(exc)) from None

    return wrapper  # type: ignore[return-value]


# Set by a command that has closed everything it opened and has nothing left to run. Tearing
# the interpreter down after an import of millions of lines frees its memory object by object
# (about 0.2 s), so such a command's process ends at once instead.
finished_cleanly = threading.Event()


def run(cli: click.Command, argv: Sequence[str] | None) -> None:
    """Run the command line: no traceback ever reaches the user unless CONFLICTLENS_DEBUG is
    set. A project error that no command turned into a UserError is still one line and exit
    status 1; any other exception is a bug (status 2)."""
    try:
        cli.main(args=argv, prog_name="conflictlens", standalone_mode=True)
    except SystemExit as done:
        if done.code in (0, None) and finished_cleanly.is_set() and not _observed():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise
    except Exception as exc:
        if os.environ.get("CONFLICTLENS_DEBUG"):
            raise
        sys.exit(_report(exc))


def _report(exc: Exception) -> int:
    """Print an error that reached the top as one line; the exit status it calls for."""
    if isinstance(exc, ConflictlensError):
        UserError(first_line(exc)).show()
        return 1
    detail = first_line(exc) if str(exc).strip() else ""
    click.echo(
        f"Error: internal error ({type(exc).__name__}: {detail}); "
        "set CONFLICTLENS_DEBUG=1 for details and please report it",
        err=True,
    )
    return 2


def _observed() -> bool:
    """A profiler, a coverage tracer or a debugging user wants the normal exit (atexit)."""
    tools = sys.gettrace() is not None or sys.getprofile() is not None
    return tools or bool(os.environ.get("CONFLICTLENS_DEBUG"))


def common_options(func: F) -> F:
    """--db and --config, accepted by every command."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        help="Config file (default: $CONFLICTLENS_CONFIG, else ./conflictlens.toml if present).",
    )(func)
    func = click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        help="DuckDB store (default: the config's db, $CONFLICTLENS_DB, else ./conflictlens.duckdb).",
    )(func)
    return func


def range_options(func: F) -> F:
    """--since/--until and the cluster filters, shared by every command that reads."""
    for name, helptext in reversed(
        (
            (
                "--since",
                "Start of the range, inclusive: ISO date/date-time (UTC unless an offset is given) or 30m, 24h, 7d.",
            ),
            ("--until", "End of the range, exclusive; same forms as --since."),
            ("--service", "Only this service."),
            ("--method", "Only this HTTP method."),
            ("--route", "Only this route template, e.g. /api/v1/users/{id}."),
            ("--code", "Only this error code."),
            ("--kind", "Only this conflict kind."),
            ("--client", "Only this client (address, or consumer where the gateway logs one)."),
        )
    ):
        func = click.option(name, help=helptext)(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


def resolve_config(config_file: str | None, db_path: str | None) -> tuple[Config, Path]:
    config = load_config(config_file)
    return config, Path(db_path) if db_path else config.db


def read_query(
    config: Config,
    db: Path,
    name: str,
    since: str | None,
    until: str | None,
    values: dict[str, Any],
) -> Any:
    """Run a catalog query: through a running serve when there is one (it owns the file),
    else on the database opened read-only (or on the ClickHouse store the config names)."""
    import polars as pl

    from conflictlens.analysis import run_query
    from conflictlens.client import ServerError, find_server, get_json
    from conflictlens.store import connect

    time_range = _time_range(since, until)  # validate before asking anyone
    url = find_server(db)
    if url is not None:
        params = {**values, "since": since, "until": until}
        try:
            rows = get_json(url, f"/api/queries/{name}", token=config.serve.token, params=params)
        except (ServerError, OSError) as exc:
            raise UserError(str(exc)) from None
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    if config.store.backend == "clickhouse":  # no serve: the shared store itself
        from conflictlens.store.clickhouse.connection import connect as connect_clickhouse
        from conflictlens.store.clickhouse.glob_engine import GlobEngine

        engine = GlobEngine(connect_clickhouse(config.store), config.store.database)
        return run_query(engine, name, time_range, **values)
    con = connect(db, read_only=True)
    try:
        return run_query(con, name, time_range, **values)
    finally:
        con.close()


def _time_range(since: str | None, until: str | None) -> Any:
    from conflictlens.analysis import TimeRange

    try:
        return TimeRange(parse_time(since) if since else None, parse_time(until) if until else None)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def require_dashboard(alternative: str = "") -> None:
    """One line, not a failed child process, when the [dashboard] extra is not installed."""
    from conflictlens.dashboard_process import missing_dashboard_packages

    missing = missing_dashboard_packages()
    if missing:
        raise UserError(
            f"the dashboard needs {' and '.join(missing)}: pip install 'conflictlens[dashboard]'"
            + (f", {alternative}" if alternative else "")
        )
