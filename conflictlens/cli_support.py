"""What every command shares: one-line errors, the common options, reading through serve."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from conflictlens.config import Config, ConfigError, load_config
from conflictlens.timeparse import parse_time

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A problem the user can fix: printed as one line, exit status 1. The message may hold
    log-derived text (a path, a line's start): its control characters are escaped."""

    def __init__(self, message: str) -> None:
        from analysis.reports.text import printable

        super().__init__(printable(message.splitlines()[0] if message else message))


def friendly_errors(func: F) -> F:
    """Turn the library's own errors into one clear line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                raise UserError(str(exc)) from None
            raise

    return wrapper  # type: ignore[return-value]


def _user_errors() -> tuple[type[Exception], ...]:
    """The library's errors whose message is for the user (imported when one is raised: a
    command that never reads through analysis/ then never imports it)."""
    from analysis import AnalysisError
    from ingest import FormatError, IngestError
    from store import StoreError

    return (ConfigError, StoreError, IngestError, FormatError, AnalysisError)


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
    else on the database opened read-only."""
    import polars as pl

    from analysis import run_query
    from conflictlens.client import ServerError, find_server, get_json
    from store import connect

    time_range = _time_range(since, until)  # validate before asking anyone
    url = find_server(db)
    if url is not None:
        params = {**values, "since": since, "until": until}
        try:
            rows = get_json(url, f"/api/queries/{name}", token=config.serve.token, params=params)
        except (ServerError, OSError) as exc:
            raise UserError(str(exc)) from None
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    con = connect(db, read_only=True)
    try:
        return run_query(con, name, time_range, **values)
    finally:
        con.close()


def _time_range(since: str | None, until: str | None) -> Any:
    from analysis import TimeRange

    try:
        return TimeRange(parse_time(since) if since else None, parse_time(until) if until else None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
