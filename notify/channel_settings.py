"""The keys of each ``[alerts.channels.NAME]`` table, declared once per channel type: what
notify.config reads (it refuses any other key by these), and what the config reference
documents. The values are checked where they are read (notify.config), with the messages that
keep a secret out of them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conflictlens._settings import Section
from conflictlens.notify.channels import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_RESEND_SECONDS,
    DEFAULT_SMTP_TIMEOUT,
    WEBHOOK_FORMATS,
)


class _Http(Section):
    url: str | None = Field(
        None,
        description="Where to POST; the URL may be the secret itself (Slack's is). "
        "Or give `url_env` or `url_file`.",
    )
    url_env: str | None = Field(None, description="The environment variable that holds the URL.")
    url_file: str | None = Field(
        None, description="The file that holds the URL (relative to the config file)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='Extra request headers (`"Authorization" = "Bearer ..."`); never shown.',
    )
    timeout: float = Field(DEFAULT_HTTP_TIMEOUT, description="Seconds to wait for an answer.")


class WebhookChannelSettings(_Http):
    """``type = "webhook"``: a JSON POST of each notification."""

    type: Literal["webhook"] = Field(description="The channel type.")
    format: str = Field(
        "conflictlens",
        description=f"The body: {', '.join(WEBHOOK_FORMATS)} (what Alertmanager's webhook sends).",
    )


class SlackChannelSettings(_Http):
    """``type = "slack"``: a Slack incoming webhook (its URL is the credential)."""

    type: Literal["slack"] = Field(description="The channel type.")


class AlertmanagerChannelSettings(_Http):
    """``type = "alertmanager"``: alerts pushed to Alertmanager's API (`/api/v2/alerts`)."""

    type: Literal["alertmanager"] = Field(description="The channel type.")
    urls: list[str] | None = Field(
        None, description="Every member of an HA group (instead of `url`): each gets every alert."
    )
    resend_interval: str | float = Field(
        f"{DEFAULT_RESEND_SECONDS:g}s",
        description="How often firing alerts are pushed again (1s to 1h).",
    )


class EmailChannelSettings(Section):
    """``type = "email"``: a message through an SMTP relay."""

    type: Literal["email"] = Field(description="The channel type.")
    host: str = Field(description="The SMTP relay.")
    port: int | None = Field(None, description="Default: 587 (starttls), 465 (tls), 25 (none).")
    security: str = Field("starttls", description="`starttls`, `tls` or `none`.")
    sender: str = Field(alias="from", description="The From address.")
    to: list[str] | str = Field(description="The recipients.")
    username: str | None = Field(None, description="A login (needs starttls or tls).")
    password_env: str | None = Field(
        None, description="The environment variable that holds the password."
    )
    password_file: str | None = Field(
        None, description="The file that holds the password (relative to the config file)."
    )
    ca_file: str | None = Field(
        None, description="Trust this CA (a private relay) instead of the system's."
    )
    timeout: float = Field(DEFAULT_SMTP_TIMEOUT, description="Seconds to wait for the relay.")


class CommandChannelSettings(Section):
    """``type = "command"``: a local program; the notification's JSON on its stdin."""

    type: Literal["command"] = Field(description="The channel type.")
    argv: list[str] = Field(description='The program and its arguments: `["program", "arg"]`.')
    timeout: float = Field(DEFAULT_COMMAND_TIMEOUT, description="Seconds before it is stopped.")
