"""``conflictlens alerts``: check the rules, see their state, test the channels, backtest
them on stored history, and silence them. Through serve when it runs (it owns the database),
else on the database file itself."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import polars as pl

from conflictlens import output
from conflictlens.cli_support import (
    UserError,
    common_options,
    friendly_errors,
    json_option,
    resolve_config,
)
from conflictlens.config import Config
from conflictlens.output import Cell, text
from conflictlens.timeparse import parse_time


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _server(db: Path) -> str | None:
    from conflictlens.client import find_server

    return find_server(db)


def _get(config: Config, url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    from conflictlens.client import ServerError, get_json

    try:
        return get_json(url, path, token=config.serve.token, params=params)
    except (ServerError, OSError) as exc:
        raise UserError(str(exc)) from None


def _post(config: Config, url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST JSON to serve; its error detail becomes the one-line message."""
    from conflictlens.client import send_json

    try:
        return send_json(url, path, body, token=config.serve.token, timeout=60)
    except OSError as exc:
        raise UserError(f"serve at {url} did not answer: {exc}") from None


def _show(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str, Cell]], empty: str) -> None:
    frame = pl.DataFrame(
        [{key: _cell(row.get(key)) for key, _, _ in columns} for row in rows],
        schema=dict.fromkeys((key for key, _, _ in columns), pl.String),
    )
    output.print_table(frame, columns, empty=empty)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or None
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def alerts() -> None:
    """Spike alerts: check the rules, see their state, test channels, backtest, silence.

    Rules live in the config's [alerts] table; serve evaluates them every
    evaluation_interval and queues notifications for the channels.

    Example:

        conflictlens alerts check --config conflictlens.toml
    """


RULE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("name", "rule", text),
    ("match", "match", text),
    ("group_by", "group by", text),
    ("condition", "condition", text),
    ("window", "window", text),
    ("for", "for", text),
    ("channels", "channels", text),
)


@alerts.command()
@common_options
@json_option
@friendly_errors
def check(config_file: str | None, db_path: str | None, as_json: bool) -> None:
    """Validate the [alerts] configuration and summarise its rules, channels and silences.

    An invalid rule is refused with its exact key and the reason.

    Example:

        conflictlens alerts check --config conflictlens.toml
    """
    config, _ = resolve_config(config_file, db_path)
    setup = config.alerts
    channels = {name: _describe_channel(name, c) for name, c in setup.channels.items()}
    if as_json:
        summary = {
            "config": str(config.path) if config.path else None,
            "evaluation_interval": int(setup.evaluation_interval.total_seconds()),
            "rules": [r.to_json() for r in setup.rules],
            "channels": channels,
            "silences": [s.to_json() for s in setup.silences],
        }
        click.echo(json.dumps(summary))
        return
    _show([r.to_json() for r in setup.rules], RULE_COLUMNS, "no alert rules configured")
    for name, channel in channels.items():
        click.echo(f"channel {name}: {channel.get('type', '?')}")
    click.echo(
        f"{config.path or 'config'}: OK: {len(setup.rules)} rule(s), {len(channels)} "
        f"channel(s), {len(setup.silences)} silence(s)"
    )


def _describe_channel(name: str, channel: Any) -> dict[str, Any]:
    """What may be shown of a channel (never a secret)."""
    if isinstance(channel, dict):
        return {"name": name, "type": channel.get("type")}
    try:
        from conflictlens.notify.config import describe_channel
    except ImportError:
        return {"name": name, "type": getattr(channel, "type", None)}
    described: dict[str, Any] = describe_channel(channel)
    return described


STATE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("rule", "rule", text),
    ("state", "state", text),
    ("group", "group", text),
    ("since", "since (UTC)", text),
    ("last_value", "value", text),
    ("last_notified_at", "notified (UTC)", text),
)


@alerts.command(name="list")
@common_options
@json_option
@friendly_errors
def list_alerts(config_file: str | None, db_path: str | None, as_json: bool) -> None:
    """Every rule with the current state of its groups (normal when none is active).

    Example:

        conflictlens alerts list --json
    """
    config, db = resolve_config(config_file, db_path)
    url = _server(db)
    if url is not None:
        state = _get(config, url, "/api/alerts")
    else:
        from conflictlens.analysis.alerts.reads import overview
        from conflictlens.store import connect

        con = connect(db, read_only=True)
        try:
            state = overview(con, config.alerts, _naive(_now()))
        finally:
            con.close()
    if as_json:
        click.echo(json.dumps(state))
        return
    rows = []
    for rule in state["rules"]:
        keys = set(rule["group_by"])
        for group in rule["groups"] or [{"state": "normal", "labels": {}}]:
            since = group.get("firing_since") or group.get("active_since")
            if group["state"] in ("resolved", "nodata"):
                since = group.get("resolved_at") or group.get("updated_at")
            labels = {k: v for k, v in group["labels"].items() if k in keys}
            rows.append({**group, "rule": rule["name"], "group": labels, "since": _short(since)})
            rows[-1]["last_notified_at"] = _short(group.get("last_notified_at"))
    _show(rows, STATE_COLUMNS, "no alert rules configured")


def _short(iso: str | None) -> str | None:
    return iso.replace("T", " ")[:19] if iso else None


@alerts.command()
@click.argument("rule")
@common_options
@friendly_errors
def test(rule: str, config_file: str | None, db_path: str | None) -> None:
    """Send a test notification of RULE to each of its channels.

    Through serve when it runs (serve delivers it); otherwise it is queued in the store and
    delivered right away, with anything else the outbox holds that is due.

    Example:

        conflictlens alerts test checkout-conflicts
    """
    config, db = resolve_config(config_file, db_path)
    try:
        channels = config.alerts.rule(rule).channels
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    if not channels:
        raise UserError(f"alert rule {rule} has no channels to test")
    url = _server(db)
    if url is not None:
        done = _post(config, url, f"/api/alerts/test/{rule}")
        click.echo(
            f"queued a test notification for {', '.join(done['channels'])}; serve delivers it"
        )
        return
    _test_here(config, db, rule)


def _test_here(config: Config, db: Path, rule: str) -> None:
    from conflictlens.analysis.alerts import test_notifications_for
    from conflictlens.store import alerts as alert_store
    from conflictlens.store import connect

    now = _now()
    con = connect(db)
    try:
        rows = test_notifications_for(con, config.alerts, rule, now)
        alert_store.enqueue(con, rows, _naive(now))
        try:
            from conflictlens.notify.outbox import deliver_due
        except ImportError:
            raise UserError(
                "queued the test notification, but this installation cannot deliver "
                "(notify.outbox is missing); serve will deliver it when it can"
            ) from None
        summary = deliver_due(con, config.alerts.channels, now)
    finally:
        con.close()
    mine = {row.channel for row in rows}
    failed = {name: r.error for name, r in summary.channels.items() if name in mine and r.error}
    if failed:
        reasons = "; ".join(f"{name}: {error}" for name, error in failed.items())
        raise UserError(f"test notification not delivered ({reasons}); it stays queued for retry")
    click.echo(f"test notification delivered to {', '.join(r.channel for r in rows)}")


EPISODE_COLUMNS: tuple[tuple[str, str, Cell], ...] = (
    ("rule", "rule", text),
    ("group", "group", text),
    ("start", "fired (UTC)", text),
    ("end", "resolved (UTC)", text),
    ("peak_value", "peak", text),
)


@alerts.command(name="backtest")
@common_options
@click.option(
    "--since",
    help="Start of the replay, inclusive: ISO date/date-time or 30m, 24h, 7d (default: the oldest data).",
)
@click.option(
    "--until", help="End of the replay, exclusive; same forms (default: the newest data)."
)
@click.option("--rule", "rules", multiple=True, help="Only this rule (repeatable).")
@json_option
@friendly_errors
def backtest_command(
    config_file: str | None,
    db_path: str | None,
    since: str | None,
    until: str | None,
    rules: tuple[str, ...],
    as_json: bool,
) -> None:
    """Replay the rules over stored history and list the alerts they would have raised.

    Each episode runs from the evaluation that fired to the one that resolved, with the
    peak value in between; the same engine as live evaluation decides.

    Example:

        conflictlens alerts backtest --since 7d --json
    """
    config, db = resolve_config(config_file, db_path)
    known = {r.name for r in config.alerts.rules}
    for name in rules:
        if name not in known:
            raise UserError(
                f"no alert rule named {name!r} (known: {', '.join(sorted(known)) or 'none'})"
            )
    first = parse_time(since) if since else None
    last = parse_time(until) if until else None
    url = _server(db)
    if url is not None:
        episodes: list[dict[str, Any]] = []
        names: tuple[str | None, ...] = rules or (None,)
        for only in names:
            params = {"since": since, "until": until, "rule": only}
            episodes += _get(config, url, "/api/alerts/backtest", params)
        episodes.sort(key=lambda e: (e["start"], e["rule"], e["fingerprint"]))
    else:
        episodes = _backtest_here(config, db, first, last, rules)
    if as_json:
        click.echo(json.dumps(episodes))
        return
    groups = {r.name: set(r.group_by) for r in config.alerts.rules}
    rows = [
        {
            **e,
            "group": {k: v for k, v in e["labels"].items() if k in groups.get(e["rule"], ())},
            "start": _short(e["start"]),
            "end": _short(e["end"]) or "still firing",
        }
        for e in episodes
    ]
    _show(rows, EPISODE_COLUMNS, "no alert would have fired in this range")


def _backtest_here(
    config: Config,
    db: Path,
    since: dt.datetime | None,
    until: dt.datetime | None,
    rules: tuple[str, ...],
) -> list[dict[str, Any]]:
    from conflictlens.analysis.alerts import backtest
    from conflictlens.store import connect

    con = connect(db, read_only=True)
    try:
        return [e.to_json() for e in backtest(con, config.alerts, since, until, rules)]
    finally:
        con.close()


# The silence commands live in their own module; registered last, as they use the helpers above.
from conflictlens.cli_alerts_silence import silence  # noqa: E402

alerts.add_command(silence)
