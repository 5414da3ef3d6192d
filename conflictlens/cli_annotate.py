"""``conflictlens annotate``: write down a change (a deploy, a flag flip) with its time, so that
incidents name the change that preceded them. Through serve when it runs (it owns the
database), else into the database file itself."""

from __future__ import annotations

import datetime as dt
import json

import click

from conflictlens._errors import InvalidValue
from conflictlens.cli_support import (
    UserError,
    common_options,
    friendly_errors,
    json_option,
    resolve_config,
)
from conflictlens.timeparse import parse_time


@click.command()
@common_options
@click.option(
    "--at",
    "at_text",
    default="now",
    show_default=True,
    help="When the change happened: ISO date/date-time (UTC unless an offset is given), a "
    "duration back from now (10m, 2h), or now.",
)
@click.option("--text", "words", required=True, help="What changed, one line: orders v1.42.")
@click.option("--service", help="The service it changed (default: it concerns every service).")
@json_option
@friendly_errors
def annotate(
    config_file: str | None,
    db_path: str | None,
    at_text: str,
    words: str,
    service: str | None,
    as_json: bool,
) -> None:
    """Write down a change (a deploy, a config push) at a time.

    An incident that begins within 15 minutes after it names it ("began 3 min after
    orders v1.42"); one with --service only incidents with a cluster of that service.

    Example:

        conflictlens annotate --at 2026-11-19T15:20Z --text "orders v1.42" --service orders
    """
    from conflictlens.client import find_server, send_json
    from conflictlens.store.annotations import checked

    config, db = resolve_config(config_file, db_path)
    now = dt.datetime.now(dt.UTC)
    try:
        at = parse_time(at_text, now=now)
    except InvalidValue as exc:
        raise UserError(f"--at: {exc}") from None
    at, words, service = checked(at, words, service)  # refuse before asking anyone
    url = find_server(db)
    if url is not None:
        body = {"at": at.isoformat() + "Z", "text": words, "service": service}
        try:
            number = send_json(url, "/api/annotations", body, token=config.serve.token)["id"]
        except OSError as exc:
            raise UserError(f"serve at {url} did not answer: {exc}") from None
    else:
        from conflictlens.store import connect
        from conflictlens.store.annotations import add_annotation

        con = connect(db)
        try:
            number = add_annotation(con, at, words, service, now)
        finally:
            con.close()
    row = {"id": number, "at": at.isoformat() + "Z", "text": words, "service": service}
    if as_json:
        click.echo(json.dumps(row))
        return
    scope = f" (service {service})" if service else ""
    click.echo(f"annotation {number} at {at:%Y-%m-%d %H:%M:%S} UTC: {words}{scope}")
