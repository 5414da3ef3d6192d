"""Text formats of the API gateways (Traefik CLF, Envoy, HAProxy, AWS load balancers).

GATEWAY_FORMATS is in detection order: more specific formats first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.formats import LogFormat

GATEWAY_FORMATS: dict[str, LogFormat] = {}
