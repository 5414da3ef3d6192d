"""``conflictlens agent``: follow a gateway's logs and ship them to a ClickHouse store."""

from __future__ import annotations

import logging
import signal
import threading

import click

from conflictlens.cli_support import friendly_errors


@click.command(name="agent")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config file with [agent] and [[sources]] (default: $CONFLICTLENS_CONFIG, else ./conflictlens.toml).",
)
@click.option(
    "--name", help="This node's name in the store (default: [agent] name, else the host name)."
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    help="The local state file (default: [agent] state).",
)
@click.option("--url", help="The ClickHouse store, http(s)://host[:port] (default: [agent] url).")
@click.option("--database", help="The store's database (default: [agent] database).")
@click.option(
    "--source",
    "globs",
    multiple=True,
    help="A file or glob to follow, beside the config's [[sources]] (repeatable).",
)
@click.option(
    "--format", "fmt", default="auto", show_default=True, help="The format of --source files."
)
@friendly_errors
def agent(
    config_file: str | None,
    name: str | None,
    state: str | None,
    url: str | None,
    database: str | None,
    globs: tuple[str, ...],
    fmt: str,
) -> None:
    """Follow this gateway node's logs and ship conflict events, per-minute request rollups
    and rejects (never raw lines) to a central ClickHouse store, exactly once.

    Checkpoints and a disk buffer live in a local state file: while the store is unreachable
    the agent keeps reading and buffering, and catches up when it is back. SIGTERM or Ctrl-C
    commits what was read and ships what it can before exiting.

    Example:

        conflictlens agent --config /etc/conflictlens/agent.toml
    """
    stop = threading.Event()  # first: a SIGTERM while starting up is a clean stop too
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    from conflictlens.agent.config import agent_options
    from conflictlens.agent.runner import Agent
    from conflictlens.config import load_config

    options = agent_options(
        load_config(config_file),
        name=name,
        state=state,
        url=url,
        database=database,
        globs=globs,
        fmt=fmt,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("conflictlens.agent").info(
        "agent %s: following %d source(s), shipping to the store every %.0f s",
        options.name,
        len(options.specs),
        options.ship_interval_s,
    )
    if not stop.is_set():
        Agent(options).run(stop)
