"""JSON-lines formats (nginx JSON, Traefik, Envoy, Kong, Caddy, APIPark, generic mapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.formats import LogFormat

JSON_FORMATS: dict[str, LogFormat] = {}
