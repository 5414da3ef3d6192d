"""``conflictlens routes``: route templates learned from the stored paths or declared in an
OpenAPI document (conflictlens/cli.py registers the group)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click

from conflictlens import output
from conflictlens.cli_support import (
    UserError,
    common_options,
    friendly_errors,
    json_option,
    resolve_config,
)


@click.group()
def routes() -> None:
    """Route templates beyond the built-in ones: learned from the stored paths, or declared in
    an OpenAPI document. Both rewrite the stored conflicts and requests, and apply to every
    line imported afterwards.

    Example:

        conflictlens routes import openapi.yaml && conflictlens routes list
    """


@routes.command(name="import")
@click.argument("document", type=click.Path(dir_okay=False))
@common_options
@json_option
@friendly_errors
def import_command(
    document: str, config_file: str | None, db_path: str | None, as_json: bool
) -> None:
    """Map stored routes onto the paths of an OpenAPI 3.x or Swagger 2.0 document (YAML or
    JSON), with its parameter names; its server URLs' paths are put in front.

    Example:

        conflictlens routes import openapi.yaml --db conflictlens.duckdb
    """
    from conflictlens.analysis.openapi import declared_routes, map_declared_routes

    declared = declared_routes(_read(document), source=document)
    _, db = resolve_config(config_file, db_path)
    with _writable(db, "import routes") as con:
        summary = map_declared_routes(con, declared)
    _report(
        summary,
        as_json,
        f"{summary['declared']} declared paths; {summary['routes_mapped']} of "
        f"{summary['routes']} stored routes mapped onto them, {summary['rows_changed']:,} rows "
        "rewritten",
    )


@routes.command()
@common_options
@click.option(
    "--min-distinct",
    default=10,
    show_default=True,
    type=click.IntRange(min=2),
    help="Distinct values a path position needs before it becomes a placeholder.",
)
@json_option
@friendly_errors
def learn(config_file: str | None, db_path: str | None, min_distinct: int, as_json: bool) -> None:
    """Learn placeholders from the stored paths (file names, slugs, SKUs ... that templating
    left as they were) and rewrite the stored routes with them.

    Example:

        conflictlens routes learn --min-distinct 20
    """
    from conflictlens.analysis.route_learning import LearningSettings, learn_and_apply

    _, db = resolve_config(config_file, db_path)
    with _writable(db, "learn routes") as con:
        summary = learn_and_apply(con, LearningSettings(min_distinct=min_distinct))
    _report(
        summary,
        as_json,
        f"{summary['templates']} templates learned from {summary['routes']} stored routes; "
        f"{summary['routes_mapped']} routes mapped, {summary['kept_literal']} kept literal, "
        f"{summary['rows_changed']:,} rows rewritten",
    )


@routes.command(name="list")
@common_options
@json_option
@friendly_errors
def list_command(config_file: str | None, db_path: str | None, as_json: bool) -> None:
    """The route map: each stored route, the template it maps to, and where that came from
    (learned or openapi). A route mapped to itself is kept literal.

    Example:

        conflictlens routes list --json
    """
    from conflictlens.store import DatabaseLocked, connect, read_route_map

    _, db = resolve_config(config_file, db_path)
    try:
        con = connect(db, read_only=True)
    except DatabaseLocked as exc:
        raise UserError(_locked(db, "list routes", exc)) from None
    with closing(con):
        frame = read_route_map(con)
    if as_json:
        click.echo(json.dumps(output.records(frame)))
        return
    output.print_table(
        frame,
        (
            ("route", "route", output.text),
            ("mapped", "template", output.text),
            ("origin", "origin", output.text),
            ("updated_at", "updated", output.when),
        ),
        empty="no route map yet (conflictlens routes learn, or routes import openapi.yaml)",
    )


def _read(document: str) -> str:
    path = Path(document)
    if not path.exists():
        raise UserError(f"{document}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{document}: not a text file (UTF-8 expected)") from None
    except OSError as exc:
        raise UserError(f"{document}: cannot read it: {exc.strerror}") from None


@contextmanager
def _writable(db: Path, doing: str) -> Iterator[Any]:
    """The store opened for writing, closed afterwards; a clear line when serve owns it."""
    from conflictlens.store import DatabaseLocked, connect

    try:
        con = connect(db)
    except DatabaseLocked as exc:
        raise UserError(_locked(db, doing, exc)) from None
    with closing(con):
        yield con


def _locked(db: Path, doing: str, exc: Exception) -> str:
    """One line for a store another process holds: serve, or whoever it is."""
    from conflictlens.client import find_server

    url = find_server(db)
    if url is None:
        return str(exc)
    return f"serve owns {db} (at {url}): stop it to {doing} (serve cannot do it for you yet)"


def _report(summary: dict[str, Any], as_json: bool, line: str) -> None:
    click.echo(json.dumps(summary) if as_json else line)
