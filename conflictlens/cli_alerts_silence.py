"""``conflictlens alerts silence``: hold back the notifications of matching alerts for a while
(add, list, expire). Through serve when it runs, else on the database file itself."""

from __future__ import annotations

import json

import click

from conflictlens.cli_alerts import (
    _get,
    _naive,
    _now,
    _post,
    _server,
    _short,
    _show,
)
from conflictlens.cli_support import (
    UserError,
    common_options,
    friendly_errors,
    json_option,
    resolve_config,
)
from conflictlens.output import Cell, text


@click.group()
def silence() -> None:
    """Silences: hold back the notifications of matching alerts for a while.

    Example:

        conflictlens alerts silence add --rule checkout-conflicts --for 2h --comment deploy
    """


@silence.command(name="add")
@common_options
@click.option("--rule", required=True, help="The rule whose alerts to silence.")
@click.option(
    "--match",
    "matches",
    multiple=True,
    help="Only alerts with this label value, as key=value (e.g. route=/api/v2/carts/{id}); repeatable.",
)
@click.option("--for", "duration", required=True, help="How long, from now: 30m, 2h, 1d.")
@click.option("--comment", default="", help="Why (shown with the silence).")
@friendly_errors
def silence_add(
    config_file: str | None,
    db_path: str | None,
    rule: str,
    matches: tuple[str, ...],
    duration: str,
    comment: str,
) -> None:
    """Silence a rule's alerts (all, or those matching every --match) from now on.

    Alerts keep changing state while silenced; only their notifications are held back.

    Example:

        conflictlens alerts silence add --rule checkout-conflicts --match route=/api/v2/carts/{id} --for 2h
    """
    from conflictlens.analysis.alerts import parse_duration

    config, db = resolve_config(config_file, db_path)
    matchers = {"rule": rule}
    for item in matches:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value:
            raise UserError(
                f"--match {item!r}: expected key=value, e.g. route=/api/v1/users/{{id}}"
            )
        matchers[key.strip()] = value
    length = parse_duration(duration, "--for")
    if not length:
        raise UserError("--for: must be more than 0s")
    url = _server(db)
    if url is not None:
        body = {"matchers": matchers, "duration": duration, "comment": comment}
        number = _post(config, url, "/api/alerts/silences", body)["id"]
    else:
        from conflictlens.store import alerts as alert_store
        from conflictlens.store import connect

        now = _naive(_now())
        con = connect(db)
        try:
            number = alert_store.add_silence(con, matchers, now, now + length, comment, now)
        finally:
            con.close()
    click.echo(f"silence {number} added for {duration}")


SILENCE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("id", "id", text),
    ("matchers", "matchers", text),
    ("starts_at", "starts (UTC)", text),
    ("ends_at", "ends (UTC)", text),
    ("active", "active", text),
    ("comment", "comment", text),
)


@silence.command(name="list")
@common_options
@json_option
@friendly_errors
def silence_list(config_file: str | None, db_path: str | None, as_json: bool) -> None:
    """Every silence: from the config file and added with `alerts silence add`.

    Example:

        conflictlens alerts silence list --json
    """
    config, db = resolve_config(config_file, db_path)
    url = _server(db)
    if url is not None:
        rows = _get(config, url, "/api/alerts/silences")
    else:
        from conflictlens.analysis.alerts.reads import read_silences
        from conflictlens.store import connect

        now = _naive(_now())
        con = connect(db, read_only=True)
        try:
            found = [*config.alerts.silences, *read_silences(con)]
        finally:
            con.close()
        rows = [{**s.to_json(), "active": s.starts_at <= now < s.ends_at} for s in found]
    if as_json:
        click.echo(json.dumps(rows))
        return
    shown = [
        {
            **r,
            "id": r["id"] or "config",
            "starts_at": _short(r["starts_at"]),
            "ends_at": _short(r["ends_at"]),
            "active": "yes" if r["active"] else "",
        }
        for r in rows
    ]
    _show(shown, SILENCE_COLUMNS, "no silences")


@silence.command(name="expire")
@click.argument("silence_id", type=int)
@common_options
@friendly_errors
def silence_expire(silence_id: int, config_file: str | None, db_path: str | None) -> None:
    """End silence SILENCE_ID now (silences from the config file end when removed there).

    Example:

        conflictlens alerts silence expire 3
    """
    config, db = resolve_config(config_file, db_path)
    url = _server(db)
    if url is not None:
        _post(config, url, f"/api/alerts/silences/{silence_id}/expire")
    else:
        from conflictlens.store import alerts as alert_store
        from conflictlens.store import connect

        con = connect(db)
        try:
            if not alert_store.expire_silence(con, silence_id, _naive(_now())):
                raise UserError(f"no active silence {silence_id}")
        finally:
            con.close()
    click.echo(f"silence {silence_id} expired")
