"""Declared routes: stored routes mapped onto the paths an OpenAPI document declares.

An OpenAPI 3.x or Swagger 2.0 document (YAML or JSON) names each path with its parameters:
``/users/{userId}/orders/{orderId}``. Each stored route whose segments fit a declared path
(a literal or one of our placeholders where the document has a parameter, the same text where
it has text) is mapped onto it, so clusters read ``/api/v1/users/{userId}`` instead of
``/api/v1/users/{id}``. Where several declared paths fit, literal segments beat parameters
(``/users/me`` before ``/users/{userId}``). The server URLs' paths (``servers[].url``, or
Swagger's ``basePath``) are put in front, as the gateway sees the requests.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import duckdb
import polars as pl
import yaml

from conflictlens._errors import first_line
from conflictlens.analysis.params import AnalysisError
from conflictlens.store.route_map import (
    apply_route_map,
    match_templates,
    replace_route_map,
    stored_routes,
)

_SERVER_VARIABLE = re.compile(r"\{([^{}/]+)\}")
_BRACES = re.compile(r"^(?:[^{}]|\{[^{}/]+\})*$")


class OpenAPIError(AnalysisError):
    """A document that cannot be used; the message is one line naming the document."""


def import_openapi(
    con: duckdb.DuckDBPyConnection, text: str, *, source: str = "document"
) -> dict[str, Any]:
    """Map the stored routes onto the document's paths, store the map and apply it."""
    return map_declared_routes(con, declared_routes(text, source=source))


def declared_routes(text: str, *, source: str = "document") -> list[str]:
    """The route templates a document declares, server base paths included, sorted."""
    document = _load(text, source)
    paths = document.get("paths")
    if paths is None:
        raise OpenAPIError(f"{source}: not an OpenAPI document: no 'paths'")
    if not isinstance(paths, dict):
        raise OpenAPIError(f"{source}: 'paths' is not a mapping")
    declared: set[str] = set()
    for path, item in paths.items():
        if str(path).startswith("x-"):  # an extension, not a path
            continue
        _check_path(path, source)
        servers = item.get("servers") if isinstance(item, dict) else None
        bases = _server_paths(servers, source) if servers else _base_paths(document, source)
        declared.update(base + path for base in bases)
    return sorted(declared)


def map_declared_routes(con: duckdb.DuckDBPyConnection, declared: list[str]) -> dict[str, Any]:
    """Store route → declared path for every stored route that fits one, then apply the map.

    The declared paths themselves are stored too (each mapped to itself), so that new lines
    fit them even where no stored route did yet.
    """
    templates = pl.DataFrame(
        {"template": declared, "priority": [1] * len(declared)},
        schema={"template": pl.String, "priority": pl.Int8},
    )
    routes = stored_routes(con)["route"]
    matched = match_templates(routes, templates)
    itself = pl.DataFrame({"route": declared, "mapped": declared}, schema=matched.schema)
    replace_route_map(con, pl.concat([matched, itself]), "openapi")
    changed = matched.filter(pl.col("route") != pl.col("mapped"))
    return {
        "declared": len(declared),
        "routes": routes.len(),
        "routes_mapped": changed.height,
        "unmatched": routes.len() - matched.height,
        "rows_changed": apply_route_map(con),
    }


def _load(text: str, source: str) -> dict[str, Any]:
    """The document as a mapping, from JSON or YAML."""
    document = _parsed(text, source)
    if not isinstance(document, dict):
        raise OpenAPIError(f"{source}: not an OpenAPI document: not a mapping at the top")
    version = str(document.get("openapi") or document.get("swagger") or "")
    if not version:
        raise OpenAPIError(f"{source}: not an OpenAPI document: no 'openapi' or 'swagger' version")
    if not version.startswith(("2", "3")):
        raise OpenAPIError(f"{source}: unsupported OpenAPI version {version!r} (2.0 and 3.x are)")
    return document


def _parsed(text: str, source: str) -> object:
    """JSON when it looks like JSON (YAML flow style may too: then YAML), else YAML."""
    json_error = None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            json_error = f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}"
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if json_error:
            raise OpenAPIError(json_error) from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise OpenAPIError(f"{source}: not valid YAML: {problem}{where}") from None


def _check_path(path: object, source: str) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise OpenAPIError(f"{source}: path {path!r} does not start with '/'")
    if not _BRACES.match(path):
        raise OpenAPIError(f"{source}: path {path!r} has unbalanced braces")


def _base_paths(document: dict[str, Any], source: str) -> list[str]:
    """The base paths of the document's servers (3.x) or its basePath (2.0)."""
    if "swagger" in document:
        base = document.get("basePath") or "/"
        if not isinstance(base, str):
            raise OpenAPIError(f"{source}: 'basePath' is not a string")
        return [_trimmed(base)]
    return _server_paths(document.get("servers") or [{"url": "/"}], source)


def _server_paths(servers: object, source: str) -> list[str]:
    """The distinct paths of server URLs, their variables replaced by their defaults."""
    if not isinstance(servers, list):
        raise OpenAPIError(f"{source}: 'servers' is not a list")
    bases: list[str] = []
    for server in servers:
        url = server.get("url") if isinstance(server, dict) else None
        if not isinstance(url, str):
            raise OpenAPIError(f"{source}: a server has no 'url'")
        url = _with_defaults(url, server.get("variables") or {})
        base = _trimmed(urlsplit(url).path if "://" in url else url.split("?")[0])
        if base not in bases:
            bases.append(base)
    return bases


def _with_defaults(url: str, variables: object) -> str:
    """A server URL with its {variables} replaced by their defaults (kept when none)."""

    def default(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1)) if isinstance(variables, dict) else None
        value = variable.get("default") if isinstance(variable, dict) else None
        return str(value) if value is not None else match.group(0)

    return _SERVER_VARIABLE.sub(default, url)


def _trimmed(base: str) -> str:
    """A base path as a prefix: a leading slash, no trailing one ('/' becomes '')."""
    return ("/" + base.strip("/")) if base.strip("/") else ""
