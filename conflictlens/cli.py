"""The ``conflictlens`` command line: a thin layer over ingest/, store/ and analysis/."""

from __future__ import annotations

import importlib
import json
import os
import sys
import zoneinfo
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from conflictlens import output
from conflictlens.cli_support import (
    UserError,
    common_options,
    finished_cleanly,
    friendly_errors,
    json_option,
    require_dashboard,
    resolve_config,
    run,
)
from conflictlens.config import Config, load_config
from conflictlens.sample_logs.names import FORMAT_NAMES as SAMPLE_FORMAT_NAMES


class LazyGroup(click.Group):
    """A group whose commands kept in other modules are imported when they are run or listed:
    `conflictlens ingest` then starts without importing the analysis, report and alert
    commands (and urllib's HTTP client, which they use), 20 ms sooner."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands  # name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


LAZY_COMMANDS = {
    **{
        name: f"conflictlens.cli_analysis:{name}"
        for name in ("clusters", "hotspots", "resources", "storms", "incidents")
    },
    "routes": "conflictlens.cli_routes:routes",
    "report": "conflictlens.cli_report:report",
    "alerts": "conflictlens.cli_alerts:alerts",
    "export": "conflictlens.cli_export:export",
    "annotate": "conflictlens.cli_annotate:annotate",
    "clickhouse": "conflictlens.cli_clickhouse:clickhouse",
    "agent": "conflictlens.cli_agent:agent",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="conflictlens")
def cli() -> None:
    """conflictlens: find out why your API gateway answers 409 Conflict.

    Example:

        conflictlens ingest /var/log/nginx/access.log && conflictlens clusters --since 24h
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@common_options
@click.option(
    "--format",
    "format_name",
    default="auto",
    show_default=True,
    help="auto (detected per file), or one of: nginx-extended, nginx-main, nginx-combined, "
    "nginx-common, apache-combined, apache-common, nginx-json, ingress-nginx, traefik-clf, "
    "traefik-json, istio-text, envoy-text, envoy-gateway-json, envoy-json, kong-json, "
    "caddy-json, haproxy-httplog, aws-alb, aws-elb-classic, apipark-json, json (with a field "
    "mapping in --log-format).",
)
@click.option(
    "--log-format",
    help="Your nginx log_format or Apache LogFormat string, or your nginx JSON layout "
    '(\'{"ts":"$time_iso8601","code":"$status",...}\').',
)
@click.option(
    "--keep-all", is_flag=True, help="Store every request as an event, not only conflicts."
)
@click.option("--service", help="Service name to record for these files.")
@json_option
@friendly_errors
def ingest(
    paths: Sequence[str],
    config_file: str | None,
    db_path: str | None,
    format_name: str,
    log_format: str | None,
    keep_all: bool,
    service: str | None,
    as_json: bool,
) -> None:
    """Import access logs (plain, .gz, or - for stdin) into the store.

    Importing a file again stores nothing twice; a file that has grown is imported from
    where the last import ended.

    Example:

        conflictlens ingest /var/log/nginx/access.log /var/log/nginx/access.log.2.gz
    """
    import dataclasses

    from conflictlens.ingest import IngestError, import_source
    from conflictlens.ingest.formats import UnknownFormat, get_format
    from conflictlens.store import refresh_summaries

    config, db = resolve_config(config_file, db_path)
    if format_name == "json" and not log_format and config.json_fields:
        log_format = json.dumps(config.json_fields)
    if log_format or format_name != "auto":
        get_format(format_name, log_format)  # fail before touching the store
    options = config.ingest
    if keep_all or service:
        options = dataclasses.replace(
            options, keep_all=keep_all or options.keep_all, service=service or options.service
        )
    for name in paths:
        if name != "-" and not Path(name).exists():
            raise UserError(f"{name}: no such file")
    store = _OpeningStore(db)
    summaries = []
    # A file that cannot be imported (not recognised, unreadable) does not stop the others;
    # the command still fails at the end, naming it.
    failed: list[tuple[str, str]] = []
    try:
        with output.progress(paths, enabled=not as_json) as advance:
            for name in paths:
                try:
                    summary = import_source(
                        name,
                        store.writer,
                        options,
                        format_name=format_name,
                        log_format=log_format,
                        progress=advance,
                    )
                except KeyboardInterrupt:
                    raise UserError(
                        f"interrupted while importing {name}; what was committed stays, run again to resume"
                    ) from None
                except (IngestError, UnknownFormat) as exc:
                    message = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
                    failed.append((name, message))
                    if not as_json and len(paths) > 1:
                        output.warn(message)
                    continue
                summaries.append(summary)
                if not as_json:
                    output.print_import_summary(summary)
        refresh_summaries(store.connection())  # the hourly and 5-minute summaries baselines read
    finally:
        store.close()
    total = output.import_totals(summaries)
    if as_json:
        total["failed"] = [{"path": name, "error": message} for name, message in failed]
        click.echo(json.dumps(total))
    elif len(summaries) > 1:
        output.print_totals(total)
    finished_cleanly.set()
    if failed:
        raise UserError(
            failed[0][1]
            if len(paths) == 1
            else f"{len(failed)} of {len(paths)} files not imported: "
            + "; ".join(message for _, message in failed)
        )


@cli.command(name="serve")
@common_options
@click.option("--host", help="Address to bind (default: the config's, else 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: the config's, else 8409).")
@click.option("--no-dashboard", is_flag=True, help="Do not start the dashboard.")
@click.option(
    "--dashboard-port",
    type=int,
    default=8501,
    show_default=True,
    help="Port of the dashboard (on the same address as serve).",
)
@friendly_errors
def serve_command(
    config_file: str | None,
    db_path: str | None,
    host: str | None,
    port: int | None,
    no_dashboard: bool,
    dashboard_port: int,
) -> None:
    """Own the database: follow the configured sources and answer other processes over HTTP.

    While serve runs, every other conflictlens command reads through it. Binding beyond
    loopback needs a token (serve.token in the config, or CONFLICTLENS_TOKEN).

    Example:

        conflictlens serve --config conflictlens.toml --port 8409
    """
    from conflictlens.client import find_server
    from conflictlens.dashboard_process import start_dashboard, stop_dashboard
    from conflictlens.jobs import Live, serve_delivery, serve_intake, serve_jobs, serve_routers
    from conflictlens.serve import is_loopback, serve
    from conflictlens.store import connect

    config, db = resolve_config(config_file, db_path)
    if find_server(db):
        raise UserError(f"serve is already running for {db}")
    if config.store.backend == "clickhouse":
        from conflictlens.serve_clickhouse import command

        command(config, db, host, port, None if no_dashboard else dashboard_port)
        return
    bind = host or config.serve.host
    password_hash = _password_hash(config)
    # Without a token serve itself refuses a non-loopback address, with its own message.
    exposed = not is_loopback(bind) and bool(config.serve.token)
    if not no_dashboard and exposed and not password_hash:
        raise UserError(f"{_NO_LOGIN.format(bind=bind)}, or pass --no-dashboard")
    if not no_dashboard:
        require_dashboard("or pass --no-dashboard")
    con = connect(db)
    live = Live(config)
    delivery = serve_delivery(live, con.cursor)
    intake = serve_intake(live, con.cursor)
    started: list[Any] = []

    def dashboard(token: str | None) -> Any:
        return start_dashboard(
            db, bind, dashboard_port, token=token, password_hash=password_hash, config=config.path
        )

    def ready(url: str) -> None:
        click.echo(f"conflictlens serve: {db} at {url}", err=True)
        if not no_dashboard:
            started.append(dashboard(config.serve.token))
            click.echo(f"dashboard: http://{bind}:{dashboard_port}", err=True)

    def reload() -> list[Any]:
        """The followers of the config as it is now; a new token is required from now on, and
        the dashboard (which asks serve with it) is started again with it."""
        before = live.config.serve.token
        followers = _reloaded_followers(config.path, con, live, exposed=not is_loopback(bind))
        if live.config.serve.token != before and started:
            stop_dashboard(started.pop())
            started.append(dashboard(live.config.serve.token))
        return followers

    try:
        serve(
            con,
            db,
            host=bind,
            port=port or config.serve.port,
            token=config.serve.token,
            current_token=lambda: live.config.serve.token,
            followers=_followers(config, con),
            on_ready=ready,
            config_path=config.path,
            reload_followers=reload,
            jobs=serve_jobs(live, con.cursor, delivery),
            routers=serve_routers(live, con.cursor, delivery, intake),
            services=[delivery, intake],
        )
    finally:
        for process in started:
            stop_dashboard(process)
        con.close()


@cli.command(name="dashboard")
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8501, show_default=True, help="Port to bind.")
@click.option(
    "--hash-password",
    is_flag=True,
    help="Ask for a password and print its hash, for the config's [dashboard] password_hash.",
)
@friendly_errors
def dashboard_command(
    config_file: str | None, db_path: str | None, host: str, port: int, hash_password: bool
) -> None:
    """Open the dashboard on the store (through serve when it runs; serve starts it too).

    Example:

        conflictlens dashboard --db demo/conflictlens.duckdb --port 8501
    """
    from conflictlens.dashboard_process import dashboard_env, streamlit_command

    require_dashboard()
    from conflictlens.dashboard.passwords import hash_password as make_hash
    from conflictlens.serve import is_loopback

    if hash_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        click.echo(make_hash(password))
        return
    config, db = resolve_config(config_file, db_path)
    password_hash = _password_hash(config)
    if not is_loopback(host) and not password_hash:
        raise UserError(_NO_LOGIN.format(bind=host))
    click.echo(f"dashboard: http://{host}:{port} on {db}", err=True)
    env = dashboard_env(db, config.serve.token, password_hash, config.path)
    command = streamlit_command(host, port)
    sys.stderr.flush()
    # Streamlit takes this process's place: a stop signal (from systemd, kill, a test)
    # reaches it, where a child would be left running, holding the port.
    os.execve(command[0], command, env)


_NO_LOGIN = (
    "refusing to show the dashboard on {bind} without a login: put the hash from "
    "`conflictlens dashboard --hash-password` in the config's [dashboard] password_hash "
    "(or in CONFLICTLENS_DASHBOARD_PASSWORD_HASH)"
)


def _password_hash(config: Config) -> str | None:
    """The login's password hash: the environment's (for secret stores) over the config's."""
    return os.environ.get("CONFLICTLENS_DASHBOARD_PASSWORD_HASH") or config.dashboard.password_hash


def _reloaded_followers(path: Path | None, con: Any, live: Any, *, exposed: bool) -> list[Any]:
    """Followers from the config file as it is now (its [[sources]], [ingest] and rules);
    the alert rules, channels, reports and token of it are in force from now on too. A
    config without a token is refused while serve is bound beyond loopback."""
    config = load_config(str(path) if path else None)
    if exposed and not config.serve.token:
        raise UserError(
            "serve.token removed while serve is bound beyond loopback: the running config stays"
        )
    followers = _followers(config, con)
    live.config = config
    return followers


def _followers(config: Config, con: Any) -> list[Any]:
    """The followers of the config's [[sources]] (none configured: serve only answers)."""
    from conflictlens.serve_sources import followers_for

    try:
        return list(followers_for(config, con))
    except ValueError as exc:  # FormatError included
        raise UserError(f"{config.path or 'config'}: {exc}") from None


@cli.command()
@click.option(
    "--format",
    "style",
    default="nginx-combined",
    show_default=True,
    help=f"Log format to write: {', '.join(SAMPLE_FORMAT_NAMES)}.",
)
@click.option(
    "--scenario",
    default="steady",
    show_default=True,
    help="Planted conflicts: steady (none), none-planted, hot-document, signup-surge, "
    "order-states, retry-storm, deploy-spike, bad-day (a spike, a document fight and a "
    "retry storm on the log's last day).",
)
@click.option("--lines", default=100_000, show_default=True, help="How many lines to write.")
@click.option(
    "--seed", default=7, show_default=True, help="Random seed: the same seed writes the same log."
)
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the written timestamps.")
@click.option(
    "--hours",
    default=24.0,
    show_default=True,
    help="Hours of traffic, ending 2026-11-20 00:00 UTC.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Log file to write (gzip'd if it ends in .gz); ground truth goes to OUT.truth.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ground truth as JSON.")
@friendly_errors
def sample(
    style: str,
    scenario: str,
    lines: int,
    seed: int,
    tz: str,
    hours: float,
    out: str,
    as_json: bool,
) -> None:
    """Write a realistic access log with known conflicts, and its ground truth beside it.

    Example:

        conflictlens sample --format kong-json --scenario retry-storm --lines 200000 --out demo/access.log
    """
    from conflictlens.sample_logs.names import FORMAT_NAMES, SCENARIO_NAMES

    if style not in FORMAT_NAMES:
        raise UserError(f"unknown format {style!r}; known: {', '.join(FORMAT_NAMES)}")
    if scenario not in SCENARIO_NAMES:
        raise UserError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIO_NAMES)}")
    if lines < 1:
        raise UserError("--lines must be at least 1")
    if not hours > 0:
        raise UserError("--hours must be more than 0")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"unknown time zone {tz!r} (use an IANA name such as UTC or Europe/Berlin)"
        ) from None
    if not Path(out).parent.exists():
        raise UserError(f"cannot write {out}: folder {Path(out).parent} does not exist")
    from conflictlens.sample_logs.generator import write_log

    truth = write_log(out, lines, style=style, seed=seed, tz=tz, hours=hours, scenario=scenario)
    if as_json:
        click.echo(json.dumps(truth, default=str))
        return
    click.echo(
        f"wrote {lines} lines to {out} ({truth['conflicts']} conflicts); ground truth in {out}.truth.json"
    )
    click.echo(f"import it with: conflictlens ingest {out}")


class _OpeningStore:
    """The store, opened for an import on a thread of its own: DuckDB creates or opens the
    file with the GIL released while the first file's first chunk is read and its format
    detected (50-80 ms of every import were spent waiting for one or the other)."""

    def __init__(self, db: Path) -> None:
        opener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="open-store")
        self._opened = opener.submit(_open_for_import, db)
        opener.shutdown(wait=False)

    def connection(self) -> Any:
        """The open connection, once it is (raises what opening it raised)."""
        return self._opened.result()

    def writer(self) -> Any:
        from conflictlens.store import Writer

        return Writer(self.connection())

    def close(self) -> None:
        try:
            con = self._opened.result()
        except Exception:  # the caller has seen it, or is raising its own
            return
        con.close()


def _open_for_import(db: Path) -> Any:
    """The store opened for writing; when serve owns it, say how to import through serve."""
    from conflictlens.store import DatabaseLocked, connect, prepare_batch_import

    try:
        con = connect(db)
    except DatabaseLocked:
        from conflictlens.client import find_server

        url = find_server(db)
        if url is None:
            raise
        raise UserError(
            f"serve owns {db} (at {url}): add these files to its [[sources]] (a new file is read "
            "from byte 0), or stop serve to import them here"
        ) from None
    prepare_batch_import(con)
    return con


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: no traceback ever reaches the user unless CONFLICTLENS_DEBUG is set."""
    run(cli, argv)
