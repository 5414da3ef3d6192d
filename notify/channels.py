"""The channel types as parsed from ``[alerts.channels.NAME]`` (notify.config reads them), and
what an API may show of one (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from conflictlens.notify.secret import Secret, url_secrets

DEFAULT_HTTP_TIMEOUT = 10.0
DEFAULT_SMTP_TIMEOUT = 20.0
DEFAULT_COMMAND_TIMEOUT = 30.0
# What a webhook sends: the outbox payload itself, or the body Alertmanager's own webhook
# receivers get (version 4), for receivers built for Alertmanager.
WEBHOOK_FORMATS = ("conflictlens", "alertmanager-v4")
# How often a firing alert is pushed again to Alertmanager; it ends by itself 4 of these after
# the last push (Prometheus' rule), so a serve that stops is not firing there forever.
DEFAULT_RESEND_SECONDS = 60.0
ALERTMANAGER_API = "/api/v2/alerts"
# The channel types that are a JSON POST: declared once, as the type HttpChannel.type has.
HttpType = Literal["webhook", "alertmanager", "slack"]
HTTP_TYPES: tuple[HttpType, ...] = get_args(HttpType)
Security = Literal["starttls", "tls", "none"]
SECURITIES: tuple[Security, ...] = get_args(Security)


@dataclass(frozen=True)
class HttpChannel:
    """webhook, alertmanager or slack: a JSON POST to ``url``. An alertmanager channel's
    ``url`` is Alertmanager's base URL, and ``more_urls`` the other members of an HA group:
    each gets every alert at ``<url>/api/v2/alerts``."""

    name: str
    type: HttpType
    url: Secret
    headers: tuple[tuple[str, Secret], ...] = ()
    timeout: float = DEFAULT_HTTP_TIMEOUT
    secret_env: tuple[str, ...] = ()  # environment variables the secrets came from
    format: str = "conflictlens"  # a webhook's body (WEBHOOK_FORMATS)
    more_urls: tuple[Secret, ...] = ()
    resend_seconds: float = DEFAULT_RESEND_SECONDS  # alertmanager: push firing alerts again

    @property
    def urls(self) -> tuple[Secret, ...]:
        return (self.url, *self.more_urls)

    def secrets(self) -> list[str]:
        """Everything to scrub from a reason: a receiver may echo the path, a segment of it,
        or the query, without the rest of the URL."""
        found = [s for url in self.urls for s in url_secrets(url.reveal())]
        return [*found, *(value.reveal() for _, value in self.headers)]


@dataclass(frozen=True)
class EmailChannel:
    name: str
    host: str
    port: int
    security: Security
    sender: str  # the ``from`` key
    to: tuple[str, ...]
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None  # trust this CA (a private relay) instead of the system's
    timeout: float = DEFAULT_SMTP_TIMEOUT
    secret_env: tuple[str, ...] = ()
    type: Literal["email"] = "email"

    def secrets(self) -> list[str]:
        return [self.password.reveal()] if self.password else []


@dataclass(frozen=True)
class CommandChannel:
    """A local program: the payload JSON on stdin, ``CONFLICTLENS_ALERT_*`` in its environment."""

    name: str
    argv: tuple[str, ...]
    timeout: float = DEFAULT_COMMAND_TIMEOUT
    type: Literal["command"] = "command"
    secret_env: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        # Arguments may carry a token (a CLI's --token=...): only the program is shown.
        extra = len(self.argv) - 1
        return (
            f"CommandChannel(name={self.name!r}, argv=[{self.argv[0]!r}"
            f"{f', …{extra} argument(s)' if extra else ''}], timeout={self.timeout})"
        )

    __str__ = __repr__


ChannelConfig = HttpChannel | EmailChannel | CommandChannel


def describe_channel(channel: ChannelConfig) -> dict[str, Any]:
    """What an API or a status page may show about a channel: never a secret."""
    view: dict[str, Any] = {"name": channel.name, "type": channel.type}
    if isinstance(channel, HttpChannel):
        view |= {
            "target": str(channel.url),
            "headers": [name for name, _ in channel.headers],
            "timeout": channel.timeout,
        }
        if channel.type == "webhook":
            view["format"] = channel.format
        if channel.type == "alertmanager":
            view["targets"] = [str(url) for url in channel.urls]
            view["resend_seconds"] = channel.resend_seconds
    elif isinstance(channel, EmailChannel):
        view |= {
            "host": channel.host,
            "port": channel.port,
            "security": channel.security,
            "from": channel.sender,
            "to": list(channel.to),
            "login": channel.username is not None,
            "timeout": channel.timeout,
        }
    else:
        view |= {"program": channel.argv[0], "timeout": channel.timeout}
    return view
