"""``[alerts.channels.NAME]`` tables: where alerts go, validated with the exact key at fault.

Secrets (webhook URLs, which for Slack are the credential itself, header values, SMTP
passwords) are read from the environment or a secrets file when the config is parsed, and are
held in :class:`notify.secret.Secret`, whose ``repr``/``str`` never show the value: a channel
can be logged, printed or put in an error message without leaking what it protects.

CHANNELS (at the end) is the one list of channel types and how each table is read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

from conflictlens._errors import ConfigError
from conflictlens._settings import Section
from conflictlens.notify.channel_settings import (
    AlertmanagerChannelSettings,
    CommandChannelSettings,
    EmailChannelSettings,
    SlackChannelSettings,
    WebhookChannelSettings,
)
from conflictlens.notify.channels import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_RESEND_SECONDS,
    DEFAULT_SMTP_TIMEOUT,
    SECURITIES,
    WEBHOOK_FORMATS,
    ChannelConfig,
    CommandChannel,
    EmailChannel,
    HttpChannel,
    HttpType,
    Security,
    describe_channel,
)
from conflictlens.notify.secret import Secret, redact_url

__all__ = [
    "CHANNELS",
    "CHANNEL_TYPES",
    "ChannelConfig",
    "ChannelConfigError",
    "CommandChannel",
    "EmailChannel",
    "HttpChannel",
    "Secret",
    "describe_channel",
    "parse_channels",
    "redact_url",
]

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
MAX_TIMEOUT = 300.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
# Set by the transport itself: a config that overrides them would break delivery or dedup.
_RESERVED_HEADERS = {"content-type", "content-length", "host", "idempotency-key"}


class ChannelConfigError(ConfigError):
    """An invalid channel table; the message starts with the exact key, e.g.
    ``alerts.channels.ops.type: ...``."""


def parse_channels(
    table: dict[str, Any],
    where: str = "alerts.channels",
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, ChannelConfig]:
    """Every ``[alerts.channels.NAME]`` table, or ``ChannelConfigError`` naming the key.

    ``base_dir`` resolves relative ``*_file`` paths (the config file's folder); ``environ``
    defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    if not isinstance(table, dict):
        raise ChannelConfigError(f"{where}: expected a table of [{where}.NAME] tables")
    channels: dict[str, ChannelConfig] = {}
    for name, entry in table.items():
        at = f"{where}.{name}" if _NAME.match(name) else f"{where}.{json.dumps(name)}"
        if not _NAME.match(name):
            raise ChannelConfigError(
                f"{at}: a channel name is letters, digits, - and _ (starting with a letter or digit)"
            )
        if not isinstance(entry, dict):
            raise ChannelConfigError(f"{at}: expected a table")
        channels[name] = _channel(name, entry, at, base_dir, env)
    return channels


def _channel(
    name: str, entry: dict[str, Any], at: str, base_dir: Path | None, env: Mapping[str, str]
) -> ChannelConfig:
    kind = entry.get("type")
    choices = ", ".join(CHANNEL_TYPES)
    if kind is None:
        raise ChannelConfigError(f"{at}.type: missing (one of {choices})")
    if kind not in CHANNEL_TYPES:
        raise ChannelConfigError(f"{at}.type: {json.dumps(kind)} is not one of {choices}")
    reader = _Reader(entry, at, base_dir, env, CHANNELS[kind].settings)
    channel = CHANNELS[kind].read(name, reader)
    reader.refuse_unknown()
    return channel


class _Reader:
    """Typed access to one channel table that remembers which keys were read, so that any
    other key (a typo, or a key of another channel type) is refused by name."""

    def __init__(
        self,
        entry: dict[str, Any],
        at: str,
        base_dir: Path | None,
        env: Mapping[str, str],
        settings: type[Section],
    ) -> None:
        self.entry = entry
        self.at = at
        self.base_dir = base_dir
        self.env = env
        # The keys the channel type declares (notify.channel_settings), as written in the file.
        self.known = {info.alias or key for key, info in settings.model_fields.items()}
        self.secret_env: list[str] = []

    def error(self, key: str, reason: str) -> ChannelConfigError:
        return ChannelConfigError(f"{self.at}.{key}: {reason}")

    def get(self, key: str) -> Any:
        if key not in self.known:  # the code reads a key its type does not declare
            raise AssertionError(f"{key} is not declared in notify.channel_settings")
        return self.entry.get(key)

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "expected a non-empty string")
        return value

    def timeout(self, default: float) -> float:
        value = self.get("timeout")
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error("timeout", "expected seconds (a number)")
        if not 0 < value <= MAX_TIMEOUT:
            raise self.error("timeout", f"expected seconds above 0 and at most {MAX_TIMEOUT:g}")
        return float(value)

    def secret(self, key: str, *, required: bool, inline: bool) -> tuple[str | None, str]:
        """One of ``key`` (when ``inline`` is allowed), ``key_env`` or ``key_file``; returns
        the value and the key it came from."""
        keys = [k for k in ((key,) if inline else ()) + (f"{key}_env", f"{key}_file")]
        given = [k for k in keys if self.get(k) is not None]
        if not inline and self.entry.get(key) is not None:
            raise self.error(key, f"not read from the config: use {key}_env or {key}_file")
        if len(given) > 1:
            raise self.error(given[1], f"give only one of {', '.join(keys)}")
        if not given:
            if required:
                raise self.error(key, f"missing (give one of {', '.join(keys)})")
            return None, key
        source = given[0]
        reference = self.string(source)
        assert reference is not None
        if source.endswith("_env"):
            value = self.env.get(reference)
            if not value:
                raise self.error(source, f"environment variable {reference} is not set")
            self.secret_env.append(reference)
            return value.strip() if key == "url" else value, source
        if source.endswith("_file"):
            path = Path(reference).expanduser()
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            try:
                text = path.read_text(encoding="utf-8")
                # The line break an editor adds is not part of the secret; a URL has no spaces.
                text = text.strip() if key == "url" else text.rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
                raise self.error(source, f"cannot read {path}: {reason}") from None
            if not text:
                raise self.error(source, f"{path} is empty")
            return text, source
        return reference, source

    def refuse_unknown(self) -> None:
        for key in self.entry:
            if key not in self.known:
                raise self.error(key, f"unknown key (known: {', '.join(sorted(self.known))})")


def _http(name: str, kind: HttpType, reader: _Reader) -> HttpChannel:
    if kind == "alertmanager" and reader.entry.get("urls") is not None:
        urls = _alertmanager_urls(reader)
    else:
        url, source = reader.secret("url", required=True, inline=True)
        assert url is not None
        urls = [_checked_url(reader, source, url)]
    headers = reader.get("headers") or {}
    if not isinstance(headers, dict):
        raise reader.error("headers", 'expected a table of "Header-Name" = "value"')
    pairs = []
    for header, value in headers.items():
        if not _HEADER_NAME.match(header):
            raise reader.error(f"headers.{header}", "not a valid HTTP header name")
        if header.lower() in _RESERVED_HEADERS:
            raise reader.error(f"headers.{header}", "set by conflictlens itself")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise reader.error(f"headers.{header}", "expected a one-line string")
        pairs.append((header, Secret(value)))  # Authorization and the like: never shown
    webhook_format = "conflictlens"
    if kind == "webhook":
        webhook_format = reader.get("format") or "conflictlens"
        if webhook_format not in WEBHOOK_FORMATS:
            raise reader.error(
                "format", f"{json.dumps(webhook_format)} is not one of {', '.join(WEBHOOK_FORMATS)}"
            )
    resend = DEFAULT_RESEND_SECONDS
    if kind == "alertmanager":
        resend = _seconds(reader, "resend_interval", DEFAULT_RESEND_SECONDS)
    return HttpChannel(
        name=name,
        type=kind,
        url=urls[0],
        headers=tuple(pairs),
        timeout=reader.timeout(DEFAULT_HTTP_TIMEOUT),
        secret_env=tuple(reader.secret_env),
        format=webhook_format,
        more_urls=tuple(urls[1:]),
        resend_seconds=resend,
    )


def _checked_url(reader: _Reader, source: str, url: str) -> Secret:
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        # The URL itself may be the secret: say what is wrong without repeating it.
        raise reader.error(source, "expected an http:// or https:// URL with a host")
    if any(c in url for c in "\r\n\t "):
        raise reader.error(source, "a URL cannot contain spaces or line breaks")
    return Secret(url, redact_url(url))


def _alertmanager_urls(reader: _Reader) -> list[Secret]:
    """``urls = [...]``: every member of an Alertmanager HA group (not with ``url``)."""
    for key in ("url", "url_env", "url_file"):
        if reader.entry.get(key) is not None:
            raise reader.error(key, "give url or urls, not both")
    urls = reader.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise reader.error("urls", "expected a list of Alertmanager base URLs")
    checked = [_checked_url(reader, f"urls[{i}]", u) for i, u in enumerate(urls, start=1)]
    if len({u.reveal().rstrip("/") for u in checked}) < len(checked):
        raise reader.error("urls", "the same Alertmanager is listed twice")
    return checked


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def _seconds(reader: _Reader, key: str, default: float) -> float:
    """A duration such as "30s", "1m" or a number of seconds, from 1 s to 1 h."""
    value = reader.get(key)
    if value is None:
        return default
    match = _DURATION.match(value) if isinstance(value, str) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif match is not None:
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    else:
        raise reader.error(key, "expected a duration such as 30s or 1m")
    if not 1 <= seconds <= 3600:
        raise reader.error(key, "expected a duration from 1s to 1h")
    return seconds


def _address(reader: _Reader, key: str, value: Any) -> str:
    if not isinstance(value, str) or any(c in value for c in "\r\n"):
        raise reader.error(key, "expected an e-mail address")
    _, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise reader.error(key, f"{json.dumps(value)} is not an e-mail address")
    return value


def _email(name: str, reader: _Reader) -> EmailChannel:
    host = reader.string("host", required=True)
    assert host is not None
    security = reader.get("security") or "starttls"
    if security not in SECURITIES:
        raise reader.error(
            "security", f"{json.dumps(security)} is not one of {', '.join(SECURITIES)}"
        )
    port = reader.get("port")
    if port is None:
        port = DEFAULT_PORTS[security]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise reader.error("port", "expected a port number")
    sender_value = reader.get("from")
    if sender_value is None:
        raise reader.error("from", "missing")
    sender = _address(reader, "from", sender_value)
    to = reader.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        raise reader.error("to", "expected a list of e-mail addresses")
    recipients = tuple(_address(reader, f"to[{i}]", v) for i, v in enumerate(to, start=1))
    username = reader.string("username")
    password, source = reader.secret("password", required=username is not None, inline=False)
    if password is not None and username is None:
        raise reader.error(source, "a password needs a username")
    if username is not None and security == "none":
        # The password would cross the network in clear text.
        raise reader.error("username", 'a login needs security = "starttls" or "tls"')
    ca_file = reader.string("ca_file")
    if ca_file is not None:
        path = Path(ca_file).expanduser()
        if not path.is_absolute() and reader.base_dir is not None:
            path = reader.base_dir / path
        if not path.is_file():
            raise reader.error("ca_file", f"no such file: {path}")
        ca_file = str(path)
    return EmailChannel(
        name=name,
        host=host,
        port=port,
        security=cast(Security, security),
        sender=sender,
        to=recipients,
        username=username,
        password=Secret(password) if password is not None else None,
        ca_file=ca_file,
        timeout=reader.timeout(DEFAULT_SMTP_TIMEOUT),
        secret_env=tuple(reader.secret_env),
    )


def _command(name: str, reader: _Reader) -> CommandChannel:
    argv = reader.get("argv")
    if argv is None:
        raise reader.error("argv", 'missing (a list: ["program", "argument", ...])')
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(a, str) for a in argv)
        or not argv[0]
    ):
        raise reader.error("argv", 'expected a non-empty list of strings: ["program", ...]')
    return CommandChannel(
        name=name, argv=tuple(argv), timeout=reader.timeout(DEFAULT_COMMAND_TIMEOUT)
    )


# --- the channel types -----------------------------------------------------------------------

ChannelReader = Callable[[str, _Reader], ChannelConfig]


class ChannelType(NamedTuple):
    """A channel type: how its table is read, and the model that declares its keys."""

    read: ChannelReader
    settings: type[Section]


def _http_type(kind: HttpType) -> ChannelReader:
    return lambda name, reader: _http(name, kind, reader)


# Every channel type: the one list that validation, its error messages, notify.CHANNEL_TYPES
# and the config reference read.
CHANNELS: dict[str, ChannelType] = {
    "webhook": ChannelType(_http_type("webhook"), WebhookChannelSettings),
    "alertmanager": ChannelType(_http_type("alertmanager"), AlertmanagerChannelSettings),
    "slack": ChannelType(_http_type("slack"), SlackChannelSettings),
    "email": ChannelType(_email, EmailChannelSettings),
    "command": ChannelType(_command, CommandChannelSettings),
}
CHANNEL_TYPES = tuple(CHANNELS)
