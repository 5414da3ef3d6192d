"""``python -m conflictlens.ingest.tail``: one follower in its own process, until SIGTERM or Ctrl-C.

``conflictlens serve`` runs the followers of its config; this command is for following
without serve (or for tests that kill the follower at random moments). Its status goes to
stdout as one JSON line every ``--status-ms``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Sequence
from typing import NoReturn

import click

from conflictlens.ingest.formats import FormatError
from conflictlens.ingest.options import IngestOptions
from conflictlens.ingest.tail.follower import Follower
from conflictlens.ingest.tail.spec import START_BEGINNING, START_END, SourceSpec
from conflictlens.ingest.tail.status import SourceStatus
from conflictlens.store import StoreError, default_db_path

PROG = "python -m conflictlens.ingest.tail"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db", default=None, help="the store (default $CONFLICTLENS_DB or ./conflictlens.duckdb)"
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    metavar="GLOB",
    help="files to follow (repeatable)",
)
@click.option("--format", "format_name", default="auto", help="log format name, or auto (default)")
@click.option(
    "--log-format", default=None, help="an nginx or Apache format string, or an nginx JSON layout"
)
@click.option("--start", type=click.Choice([START_BEGINNING, START_END]), default=START_BEGINNING)
@click.option("--service", default=None, help="service name recorded for every line")
@click.option("--flush-ms", type=int, default=500)
@click.option("--flush-lines", type=int, default=10_000)
@click.option("--poll-ms", type=int, default=1000)
@click.option("--linger-ms", type=int, default=5000)
@click.option("--max-line-bytes", type=int, default=IngestOptions.max_line_bytes)
@click.option("--keep-all", is_flag=True, help="store every request as an event")
@click.option(
    "--status-ms",
    type=int,
    default=0,
    help="print the status as one JSON line on stdout this often (0: never)",
)
def follow(
    db: str | None,
    sources: tuple[str, ...],
    format_name: str,
    log_format: str | None,
    start: str,
    service: str | None,
    flush_ms: int,
    flush_lines: int,
    poll_ms: int,
    linger_ms: int,
    max_line_bytes: int,
    keep_all: bool,
    status_ms: int,
) -> None:
    """Follow access logs into the conflictlens store until SIGTERM or Ctrl-C.

    Example:

        python -m conflictlens.ingest.tail --db conflictlens.duckdb --source '/var/log/nginx/*.log'
    """
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    options = IngestOptions(max_line_bytes=max_line_bytes, keep_all=keep_all)
    follower: Follower | None = None

    def print_status(statuses: list[SourceStatus]) -> None:
        assert follower is not None
        line = {
            "caught_up": follower.caught_up,
            "error": follower.last_error,
            "sources": [s.as_dict() for s in statuses],
        }
        click.echo(json.dumps(line))

    try:
        specs = [
            SourceSpec(pattern, format_name, log_format, start, service, options=options)
            for pattern in sources
        ]
        follower = Follower(
            db or default_db_path(),
            specs,
            flush_ms=flush_ms,
            flush_lines=flush_lines,
            poll_ms=poll_ms,
            linger_ms=linger_ms,
            status_ms=status_ms or 1000,
            on_status=print_status if status_ms else None,
        )
    except (ValueError, FormatError) as exc:
        _fail(str(exc), 2)
    problem = _run(follower)
    if problem is not None:
        _fail(problem, 1)


def _run(follower: Follower) -> str | None:
    """Follow until a stop signal; what went wrong, if anything."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: done.set())
    try:
        follower.start()
    except StoreError as exc:
        return str(exc)
    try:
        while not done.wait(0.5):
            if not follower.running:
                return "the follower stopped unexpectedly"
    finally:
        follower.stop()
    return None


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status (for ``python -m conflictlens.ingest.tail``)."""
    try:
        follow.main(args=list(argv) if argv is not None else None, prog_name=PROG)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0
