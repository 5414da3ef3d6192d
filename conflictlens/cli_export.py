"""``conflictlens export``: the stored data of a range as day-partitioned Parquet."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import click

from conflictlens.cli_support import UserError, common_options, friendly_errors, resolve_config
from conflictlens.timeparse import parse_time


@click.command(name="export")
@common_options
@click.option(
    "--since",
    required=True,
    help="Start of the range, inclusive: an ISO date/date-time (UTC unless an offset is given) or 30m, 24h, 7d.",
)
@click.option("--until", help="End of the range, exclusive; same forms as --since (default: now).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write events/ and rollups/ into, one day=YYYY-MM-DD folder a day.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@friendly_errors
def export(
    config_file: str | None,
    db_path: str | None,
    since: str,
    until: str | None,
    out: str,
    as_json: bool,
) -> None:
    """Export the conflict events and per-minute request rollups of a range as Parquet,
    partitioned by day (Hive style), for Spark, Trino, Athena, DuckDB or Polars.

    Through serve when it runs (it owns the database), else from the file. Exporting a range
    again replaces its days' files.

    Example:

        conflictlens export --since 2026-11-01 --until 2026-12-01 --out lake/conflictlens
    """
    from conflictlens.export import export as write

    config, db = resolve_config(config_file, db_path)
    first = _naive(parse_time(since))
    last = _naive(parse_time(until)) if until else _naive(dt.datetime.now(dt.UTC))
    if last <= first:
        raise UserError("--until: must be after --since")
    try:
        with _fetcher(config, db) as fetch:
            done = write(fetch, first, last, Path(out))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    summary = {"out": out, "days": done.days, "rows": done.rows, "files": len(done.files)}
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"{out}: {done.rows['events']:,} events and {done.rows['rollups']:,} rollup rows "
        f"over {done.days} day(s) in {len(done.files)} file(s)"
    )


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class _fetcher:
    """The export's reads: through serve's API as Arrow streams when serve runs, else on the
    database file opened read-only (closed at the end)."""

    def __init__(self, config: Any, db: Path) -> None:
        from conflictlens.client import find_server

        self.config, self.db = config, db
        self.url = find_server(db)
        self.con: Any = None

    def __enter__(self) -> Any:
        if self.url is None:
            from conflictlens.store import connect

            self.con = connect(self.db, read_only=True)
        return self.fetch

    def __exit__(self, *_: object) -> None:
        if self.con is not None:
            self.con.close()

    def fetch(self, query: str, since: dt.datetime, until: dt.datetime) -> Any:
        import pyarrow as pa

        from conflictlens.analysis import TimeRange, run_query

        if self.con is not None:
            return run_query(self.con, query, TimeRange(since, until)).to_arrow()
        from conflictlens.client import get_bytes

        assert self.url is not None
        params = {"since": since.isoformat(), "until": until.isoformat(), "format": "arrow"}
        body = get_bytes(
            self.url, f"/api/queries/{query}", token=self.config.serve.token, params=params
        )
        return pa.ipc.open_stream(io.BytesIO(body)).read_all()
