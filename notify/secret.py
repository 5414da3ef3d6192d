"""Secrets held so they cannot leak: :class:`Secret`, whose ``repr``/``str`` never show the
value, and the redacted form of a URL (Slack and many other webhooks carry their credential in
the path, some in the query or user info)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


class Secret:
    """A value that must not be printed: ``str``/``repr`` give ``shown`` (``***`` or a
    redacted URL), ``reveal()`` gives the value to the code that sends it."""

    __slots__ = ("_shown", "_value")

    def __init__(self, value: str, shown: str = "***") -> None:
        self._value = value
        self._shown = shown

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return self._shown

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` and ``/…`` when the URL has a path or query: Slack and many
    other webhooks carry their credential in the path, some in the query or user info."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}{f':{port}' if port else ''}"
    return origin + ("/…" if parts.path not in ("", "/") or parts.query or parts.fragment else "")


def url_secrets(url: str) -> list[str]:
    """What of ``url`` may be echoed back by a receiver and must be scrubbed from a reason."""
    parts = urlsplit(url)
    found = [url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.query]
    if parts.path not in ("", "/"):
        found.append(parts.path)
    if parts.password:
        found.append(parts.password)
    # Token-like segments: long, and not a plain lower-case word such as "services" or "hooks".
    pieces = [*parts.path.split("/"), *re.split(r"[&=]", parts.query)]
    found += [p for p in pieces if len(p) >= 8 and not re.fullmatch(r"[a-z_-]+", p)]
    return [f for f in found if f]
