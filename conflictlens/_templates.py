"""The Jinja2 templates the report page and the notification bodies are rendered from: loaded
from their package (so they work from a wheel), autoescaped (log text is never markup there).

A leaf module: it imports nothing of conflictlens, so every layer may use it."""

from __future__ import annotations

import functools

import jinja2


@functools.cache
def package_template(package: str, name: str) -> jinja2.Template:
    """Template ``name`` from ``package``'s templates/ folder."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(name)
