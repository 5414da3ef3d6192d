"""What the analysis benchmark's synthetic API serves: its endpoints in order of traffic, their
status mixes and conflict codes, the planted incidents, and the rows that describe them to the
store builder (bench/analysis_store.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script

from conflictlens.ingest.kinds import CODE_WORDS, STATUS_KINDS

# Placeholder -> how an id of that kind is spelled (``r`` is the resource's rank, 1 = hottest).
ID_SQL = {
    "id": "r::VARCHAR",
    "uuid": (
        "(md5('u' || r)[1:8] || '-' || md5('u' || r)[9:12] || '-4' || md5('u' || r)[14:16]"
        " || '-a' || md5('u' || r)[18:20] || '-' || md5('u' || r)[21:32])"
    ),
    "hex": "md5('h' || r)[1:16]",
    "ulid": "('01J' || upper(md5('l' || r)[1:23]))",
    "email": "('user' || r || '@example.com')",
    "date": "strftime(DATE '2025-01-01' + (r % 700)::INTEGER, '%Y-%m-%d')",
}

# Non-conflict status shares by kind of endpoint.
OK_MIX = {
    "get": ((200, 0.945), (404, 0.05), (500, 0.005)),
    "create": ((201, 0.90), (422, 0.08), (500, 0.02)),
    "action": ((200, 0.90), (404, 0.03), (422, 0.05), (500, 0.02)),
    "update": ((200, 0.85), (204, 0.08), (404, 0.02), (422, 0.045), (500, 0.005)),
    "delete": ((204, 0.92), (404, 0.07), (500, 0.01)),
}

V = ((409, "VERSION_MISMATCH", 0.75), (412, "ETAG_MISMATCH", 0.15), (428, None, 0.10))
V409 = ((409, "VERSION_MISMATCH", 0.85), (409, "STALE_WRITE", 0.15))
DEP = ((409, "HAS_CHILDREN", 0.6), (409, "RESOURCE_IN_USE", 0.4))
LOCK = ((423, "RESOURCE_LOCKED", 0.9), (409, "LOCK_HELD", 0.1))

# (service, method, route, mix, conflict rate, conflict codes (status, code, weight), hot ids),
# in order of traffic (rank 1 first).
# fmt: off
ENDPOINTS: tuple[tuple[str, str, str, str, float, tuple[tuple[int, str | None, float], ...], bool], ...] = (
    ("health", "GET", "/health", "get", 0.0, (), False),
    ("users", "GET", "/api/v1/users/{id}", "get", 0.0, (), False),
    ("orders", "GET", "/api/v1/orders/{uuid}", "get", 0.0, (), False),
    ("search", "GET", "/api/v1/search", "get", 0.0, (), False),
    ("static", "GET", "/static/app.js", "get", 0.0, (), False),
    ("carts", "PUT", "/api/v2/carts/{id}/items/{id}", "update", 0.05, ((409, "CART_VERSION_CONFLICT", 1.0),), False),
    ("documents", "PATCH", "/api/v2/documents/{hex}", "update", 0.12, V, True),
    ("users", "PUT", "/api/v1/users/{id}", "update", 0.06, (*V409, (428, "PRECONDITION_REQUIRED", 0.1)), False),
    ("static", "GET", "/favicon.ico", "get", 0.0, (), False),
    ("documents", "GET", "/api/v2/documents/{hex}", "get", 0.0, (), False),
    ("carts", "GET", "/api/v2/carts/{id}", "get", 0.0, (), False),
    ("users", "POST", "/api/v1/users", "create", 0.10, ((409, "EMAIL_TAKEN", 0.8), (409, "USERNAME_ALREADY_EXISTS", 0.2)), False),
    ("inventory", "GET", "/api/v1/inventory/items/{id}", "get", 0.0, (), False),
    ("orders", "POST", "/api/v1/orders", "create", 0.02, ((409, "IDEMPOTENCY_CONFLICT", 1.0),), False),
    ("orders", "POST", "/api/v1/orders/{uuid}/cancel", "action", 0.22, ((409, "ORDER_ALREADY_SHIPPED", 0.7), (409, "INVALID_STATE_TRANSITION", 0.3)), False),
    ("inventory", "PATCH", "/api/v1/inventory/items/{id}", "update", 0.15, V409, True),
    ("carts", "POST", "/api/v2/carts/{id}/checkout", "action", 0.08, ((409, "CART_ALREADY_CHECKED_OUT", 0.6), (409, "STOCK_VERSION_CHANGED", 0.4)), False),
    ("accounts", "GET", "/api/v1/accounts/{email}/settings", "get", 0.0, (), False),
    ("payments", "POST", "/api/v1/payments", "create", 0.03, ((409, "IDEMPOTENCY_CONFLICT", 0.7), (409, None, 0.3)), False),
    ("payments", "POST", "/api/v1/payments/{id}/capture", "action", 0.06, ((409, "PAYMENT_ALREADY_CAPTURED", 1.0),), False),
    ("shipments", "GET", "/api/v1/shipments/{uuid}", "get", 0.0, (), False),
    ("orders", "GET", "/api/v1/orders", "get", 0.0, (), False),
    ("documents", "PUT", "/api/v2/documents/{hex}", "update", 0.08, V, True),
    ("accounts", "PUT", "/api/v1/accounts/{email}/settings", "update", 0.04, V409, False),
    ("shipments", "POST", "/api/v1/shipments/{uuid}/status", "action", 0.10, ((409, "INVALID_STATUS_TRANSITION", 1.0),), False),
    ("projects", "GET", "/api/v1/projects/{id}", "get", 0.0, (), False),
    ("locks", "POST", "/api/v1/locks/{ulid}", "action", 0.20, LOCK, True),
    ("reports", "GET", "/api/v1/reports/{date}", "get", 0.0, (), False),
    ("documents", "POST", "/api/v2/documents", "create", 0.03, ((409, "DUPLICATE_DOCUMENT", 1.0),), False),
    ("projects", "PATCH", "/api/v1/projects/{id}", "update", 0.05, V, False),
    ("users", "GET", "/api/v1/users", "get", 0.0, (), False),
    ("carts", "DELETE", "/api/v2/carts/{id}/items/{id}", "delete", 0.03, ((409, "CART_LOCKED", 1.0),), False),
    ("inventory", "POST", "/api/v1/inventory/items/{id}/reserve", "action", 0.12, ((409, "INSUFFICIENT_STOCK", 0.7), (409, "RESERVATION_EXISTS", 0.3)), True),
    ("projects", "DELETE", "/api/v1/projects/{id}", "delete", 0.18, DEP, False),
    ("payments", "GET", "/api/v1/payments/{id}", "get", 0.0, (), False),
    ("shipments", "PUT", "/api/v1/shipments/{uuid}", "update", 0.04, V409, False),
    ("users", "DELETE", "/api/v1/users/{id}", "delete", 0.05, ((409, "USER_HAS_ACTIVE_ORDERS", 1.0),), False),
    ("projects", "POST", "/api/v1/projects", "create", 0.04, ((409, "PROJECT_NAME_TAKEN", 1.0),), False),
    ("locks", "DELETE", "/api/v1/locks/{ulid}", "delete", 0.05, ((423, "RESOURCE_LOCKED", 0.5), (409, "LOCK_NOT_HELD", 0.5)), True),
    ("projects", "GET", "/api/v1/projects", "get", 0.0, (), False),
    ("documents", "DELETE", "/api/v2/documents/{hex}", "delete", 0.04, DEP, False),
    ("accounts", "POST", "/api/v1/accounts", "create", 0.08, ((409, "ACCOUNT_ALREADY_REGISTERED", 1.0),), False),
    ("orders", "PATCH", "/api/v1/orders/{uuid}", "update", 0.07, V, False),
    ("payments", "POST", "/api/v1/payments/{id}/refund", "action", 0.09, ((409, "PAYMENT_ALREADY_REFUNDED", 0.8), (409, "REFUND_IN_PROGRESS", 0.2)), False),
    ("inventory", "POST", "/api/v1/inventory/items", "create", 0.03, ((409, "SKU_EXISTS", 1.0),), False),
    ("shipments", "GET", "/api/v1/shipments", "get", 0.0, (), False),
    ("projects", "PUT", "/api/v1/projects/{id}/members/{id}", "update", 0.03, ((409, "MEMBER_ALREADY_ADDED", 1.0),), False),
    ("inventory", "DELETE", "/api/v1/inventory/items/{id}", "delete", 0.06, ((409, "ITEM_IN_USE", 1.0),), False),
    ("reports", "POST", "/api/v1/reports", "create", 0.02, ((409, "REPORT_RUNNING", 1.0),), False),
    ("accounts", "DELETE", "/api/v1/accounts/{email}", "delete", 0.04, ((409, "ACCOUNT_HAS_SUBSCRIPTIONS", 1.0),), False),
    ("shipments", "POST", "/api/v1/shipments", "create", 0.02, ((409, "SHIPMENT_EXISTS", 1.0),), False),
    ("documents", "POST", "/api/v2/documents/{hex}/publish", "action", 0.10, ((409, "ALREADY_PUBLISHED", 0.6), (412, None, 0.4)), True),
    ("users", "POST", "/api/v1/users/{id}/verify", "action", 0.05, ((409, "ALREADY_VERIFIED", 1.0),), False),
    ("locks", "GET", "/api/v1/locks/{ulid}", "get", 0.0, (), False),
    ("reports", "DELETE", "/api/v1/reports/{date}", "delete", 0.02, ((409, None, 1.0),), False),
    ("carts", "POST", "/api/v2/carts", "create", 0.01, ((409, "CART_EXISTS", 1.0),), False),
    ("orders", "DELETE", "/api/v1/orders/{uuid}", "delete", 0.08, ((409, "ORDER_HAS_SHIPMENTS", 1.0),), False),
    ("search", "POST", "/api/v1/search/saved", "create", 0.02, ((409, "NAME_TAKEN", 1.0),), False),
    ("payments", "PUT", "/api/v1/payments/{id}/method", "update", 0.05, ((409, "CONCURRENT_UPDATE", 1.0),), False),
    ("accounts", "PATCH", "/api/v1/accounts/{email}", "update", 0.03, V, False),
)
# fmt: on

# Planted conflict incidents: (endpoint index, hours before the end, duration in hours, factor).
INCIDENTS = (
    (6, 7.0, 1.0, 12.0),  # PATCH documents: a version storm in the last 24 h
    (14, 29.5, 2.0, 8.0),  # cancel: a deploy made shipped orders cancellable in the UI
    (11, 100.0, 3.0, 6.0),  # POST users: a sign-up surge
    (26, 150.0, 0.75, 20.0),  # locks: a stuck lock holder
    (15, 400.0, 2.5, 10.0),  # inventory PATCH: a batch job racing the shop
)


def kind_of(status: int, code: str | None) -> tuple[str, str]:
    """The kind and kind_rule conflictlens's classifier gives (its built-in rules)."""
    if code is not None:
        padded = f"_{code}_"
        for word, kind in CODE_WORDS:
            whole = word.startswith("_") and word.endswith("_")
            if code == word[1:] if word.startswith("=") else word in (padded if whole else code):
                return kind, f"word:{word}"
    if status in STATUS_KINDS:
        return STATUS_KINDS[status], f"status:{status}"
    return "unknown", "none"


def placeholders(route: str) -> list[str]:
    return [part[1:-1] for part in route.split("/") if part.startswith("{") and part.endswith("}")]


def path_template(route: str) -> str:
    """The route with its placeholders numbered: /carts/{id}/items/{id} -> /carts/{1}/items/{2}."""
    parts, n = [], 0
    for part in route.split("/"):
        if part.startswith("{") and part.endswith("}"):
            n += 1
            part = "{%d}" % n  # noqa: UP031 - a literal brace pair around the number
        parts.append(part)
    return "/".join(parts)


def endpoint_rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(endpoints, status shares, error codes) as rows for the temp tables."""
    eps, shares, codes = [], [], []
    for ep_id, (service, method, route, mix, rate, conflicts, hot) in enumerate(ENDPOINTS):
        ids = placeholders(route)
        if len(ids) > 2:
            raise ValueError(f"at most two placeholders: {route}")
        weight = 1.0 / (ep_id + 1) ** 1.1
        avg_bytes = {"get": 2400, "create": 600, "action": 300, "update": 700, "delete": 80}[mix]
        avg_latency = 12.0 + (ep_id * 37 % 90)
        eps.append(
            (
                ep_id,
                service,
                method,
                route,
                path_template(route),
                ids[0] if ids else None,
                ids[1] if len(ids) > 1 else None,
                len(ids),
                500 if hot else 200_000,  # resource population (log-uniform draw: Zipf ~1/r)
                avg_bytes,
                avg_latency,
            )
        )
        for status, share in OK_MIX[mix]:
            shares.append((ep_id, status, False, weight * (1 - rate) * share))
        by_status: dict[int, float] = {}
        for status, _code, w in conflicts:
            by_status[status] = by_status.get(status, 0.0) + w
        total = sum(by_status.values())
        for status, w in by_status.items():
            shares.append((ep_id, status, True, weight * rate * w / total))
            lo = 0.0
            for code_status, code, cw in conflicts:
                if code_status != status:
                    continue
                hi = lo + cw / w
                kind, rule = kind_of(status, code)
                codes.append((ep_id, status, code, kind, rule, lo, hi))
                lo = hi
            # the last code of a status takes everything up to 1 (rounding)
            last = codes[-1]
            codes[-1] = (*last[:-1], 2.0)
    return eps, shares, codes
