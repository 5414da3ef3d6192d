"""What the generated API serves: endpoints with their conflicts (and the kind of each), the
services behind them, and the client populations. Pure data, no randomness.

The conflict kind of every error code is declared here by hand, next to the code, so that tests
of conflictlens's classifier compare against an independent answer (nothing is imported from
ingest/ to compute it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("version", "uniqueness", "state", "dependency", "lock", "precondition", "unknown")
CONFLICT_STATUSES = (409, 412, 423, 428)
# The kind a conflict has when the log line cannot carry an error code: the status alone.
STATUS_KINDS = {409: "unknown", 412: "precondition", 423: "lock", 428: "precondition"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # the template conflictlens should produce
    weight: float  # share of all traffic
    conflict_rate: float  # share of this endpoint's requests answered with a conflict
    # (status, error code, weight among this endpoint's conflicts, kind of the code)
    conflicts: tuple[tuple[int, str, float, str], ...] = ()
    hot_ids: bool = False  # ids drawn from a few hot resources (contention)


# One endpoint a line: method, route, weight, conflict rate, conflicts (status, code, weight, kind).
# fmt: off
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/users/{id}", 0.16, 0.0),
    Endpoint("PUT", "/api/v1/users/{id}", 0.05, 0.08, ((409, "VERSION_MISMATCH", 0.9, "version"), (428, "PRECONDITION_REQUIRED", 0.1, "precondition"))),
    Endpoint("POST", "/api/v1/users", 0.04, 0.12, ((409, "EMAIL_TAKEN", 0.8, "uniqueness"), (409, "USERNAME_ALREADY_EXISTS", 0.2, "uniqueness"))),
    Endpoint("GET", "/api/v1/orders/{uuid}", 0.12, 0.0),
    Endpoint("POST", "/api/v1/orders/{uuid}/cancel", 0.03, 0.25, ((409, "ORDER_ALREADY_SHIPPED", 0.7, "state"), (409, "INVALID_STATE_TRANSITION", 0.3, "state"))),
    Endpoint("PATCH", "/api/v2/documents/{hex}", 0.05, 0.15, ((409, "VERSION_MISMATCH", 0.7, "version"), (412, "ETAG_MISMATCH", 0.3, "version")), hot_ids=True),
    Endpoint("PUT", "/api/v2/carts/{id}/items/{id}", 0.06, 0.05, ((409, "CART_VERSION_CONFLICT", 1.0, "version"),)),
    Endpoint("DELETE", "/api/v1/projects/{id}", 0.01, 0.2, ((409, "PROJECT_HAS_CHILDREN", 0.6, "dependency"), (409, "RESOURCE_IN_USE", 0.4, "dependency"))),
    Endpoint("POST", "/api/v1/locks/{ulid}", 0.01, 0.2, ((423, "RESOURCE_LOCKED", 1.0, "lock"),)),
    Endpoint("GET", "/api/v1/accounts/{email}/settings", 0.03, 0.0),
    Endpoint("POST", "/api/v1/payments/{id}/capture", 0.02, 0.06, ((409, "PAYMENT_ALREADY_CAPTURED", 1.0, "state"),)),
    # An idempotency-key clash: a real code that names no kind, so it stays "unknown".
    Endpoint("POST", "/api/v1/payments", 0.01, 0.04, ((409, "IDEMPOTENCY_CONFLICT", 1.0, "unknown"),)),
    Endpoint("GET", "/api/v1/reports/{date}", 0.02, 0.0),
    Endpoint("GET", "/api/v1/search", 0.1, 0.0),
    Endpoint("GET", "/static/app.js", 0.08, 0.0),
    Endpoint("GET", "/health", 0.12, 0.0),
    Endpoint("GET", "/favicon.ico", 0.1, 0.0),
)
# fmt: on

# Human text of each code, for the JSON error documents some formats log as the body.
ERROR_MESSAGES = {
    "VERSION_MISMATCH": "The resource was modified since you read it; reload it and try again.",
    "PRECONDITION_REQUIRED": "Updates must be conditional: send If-Match with the current ETag.",
    "EMAIL_TAKEN": "An account with this e-mail address already exists.",
    "USERNAME_ALREADY_EXISTS": "This username is already in use.",
    "ORDER_ALREADY_SHIPPED": "The order has already been shipped and can no longer be cancelled.",
    "INVALID_STATE_TRANSITION": "The order cannot be cancelled in its current state.",
    "ETAG_MISMATCH": "If-Match does not match the current ETag of the document.",
    "CART_VERSION_CONFLICT": "The cart was changed by another request.",
    "PROJECT_HAS_CHILDREN": "The project still has sub-projects; delete them first.",
    "RESOURCE_IN_USE": "The project is in use by a running pipeline.",
    "RESOURCE_LOCKED": "The resource is locked by another operation.",
    "PAYMENT_ALREADY_CAPTURED": "The payment has already been captured.",
    "IDEMPOTENCY_CONFLICT": "A request with this Idempotency-Key is still being processed.",
}


@dataclass(frozen=True)
class Service:
    """An upstream service: what a gateway routes a path prefix to."""

    name: str
    prefixes: tuple[str, ...]
    host: str = "api.example.com"  # the Host / :authority clients use
    port: int = 8080
    instances: int = 3


SERVICES: tuple[Service, ...] = (
    Service("users", ("/api/v1/users",)),
    Service("orders", ("/api/v1/orders",)),
    Service("documents", ("/api/v2/documents",)),
    Service("carts", ("/api/v2/carts",)),
    Service("projects", ("/api/v1/projects",)),
    Service("locks", ("/api/v1/locks",), instances=2),
    Service("accounts", ("/api/v1/accounts",)),
    Service("payments", ("/api/v1/payments",), port=8443),
    Service("reports", ("/api/v1/reports",), instances=1),
    Service("search", ("/api/v1/search",), port=9200),
    Service("static", ("/static", "/favicon.ico"), host="shop.example.com", port=80, instances=2),
    Service("health", ("/health",), port=8081, instances=1),
)

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "curl/8.5.0",
    "axios/1.7.7",
    "Apache-HttpClient/5.3.1 (Java/21.0.5)",
    "PostmanRuntime/7.42.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)",
    "MyShopApp/5.12.1 (iOS 17.6; iPhone15,2)",
)
BROWSER_AGENTS = USER_AGENTS[:6]
MOBILE_AGENTS = (USER_AGENTS[3], USER_AGENTS[4], USER_AGENTS[14], USER_AGENTS[15], USER_AGENTS[6])
REFERERS = (
    "-",
    "-",
    "-",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://app.example.com/projects",
)
OK_STATUSES = {
    "GET": (200, 304, 404),
    "POST": (201, 200, 400),
    "PUT": (200, 204, 404),
    "PATCH": (200, 204, 404),
    "DELETE": (204, 404, 403),
}
OK_WEIGHTS = (0.93, 0.04, 0.03)
CONSUMERS = ("shop-web", "shop-ios", "shop-android", "partner-acme", "backoffice")
# The client population: 6,000 addresses in 10.0.0.0/8.
CLIENTS = tuple(f"10.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 250 + 1}" for i in range(6000))


def endpoint(method: str, route: str) -> Endpoint:
    for candidate in ENDPOINTS:
        if (candidate.method, candidate.route) == (method, route):
            return candidate
    raise KeyError((method, route))


def declared_conflict(method: str, route: str, code: str) -> tuple[int, str]:
    """(status, kind) of an error code as ENDPOINTS declares it for that endpoint."""
    for status, name, _, kind in endpoint(method, route).conflicts:
        if name == code:
            return status, kind
    raise KeyError((method, route, code))


def code_kinds() -> dict[str, str]:
    """Error code → declared kind (one kind per code across all endpoints)."""
    kinds: dict[str, str] = {}
    for ep in ENDPOINTS:
        for _, code, _, kind in ep.conflicts:
            if kinds.setdefault(code, kind) != kind:
                raise ValueError(f"{code} is declared with two kinds")
            if kind not in KINDS:
                raise ValueError(f"{code}: unknown kind {kind!r}")
    return kinds


def service_index(route: str) -> int:
    for index, service in enumerate(SERVICES):
        if any(route == p or route.startswith(p + "/") for p in service.prefixes):
            return index
    raise KeyError(route)


def upstream(service: int, instance: int) -> str:
    """The address of one instance of a service: 10.1.<service>.<11+instance>:<port>."""
    return f"10.1.{service + 1}.{11 + instance}:{SERVICES[service].port}"


def problem_type(code: str) -> str:
    """The RFC 9457 ``type`` URI of a code: VERSION_MISMATCH → …/version-mismatch."""
    return "https://errors.example.com/" + re.sub(r"_+", "-", code.lower())
