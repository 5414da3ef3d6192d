"""Notifications: the outbox and the channels that deliver alerts (webhook, Alertmanager,
Slack, e-mail, a local command).

``parse_channels`` reads ``[alerts.channels.NAME]``; ``deliver_due`` sends the due rows of
``alert_outbox``; ``Deliverer`` runs it on a thread for serve. Secrets stay in ``Secret``
values, shown redacted everywhere (``describe_channel`` is the view for an API).
"""

from conflictlens.notify.alert import RenderError
from conflictlens.notify.channels import (
    ChannelConfig,
    CommandChannel,
    EmailChannel,
    HttpChannel,
    describe_channel,
)
from conflictlens.notify.config import CHANNEL_TYPES, CHANNELS, ChannelConfigError, parse_channels
from conflictlens.notify.outbox import (
    NOT_CONFIGURED,
    ChannelRound,
    Deliverer,
    DeliverySummary,
    backlog,
    backoff,
    deliver_due,
)
from conflictlens.notify.secret import Secret, redact_url
from conflictlens.notify.send import DeliveryError, Outgoing, deliver, idempotency_key

__all__ = [
    "CHANNELS",
    "CHANNEL_TYPES",
    "NOT_CONFIGURED",
    "ChannelConfig",
    "ChannelConfigError",
    "ChannelRound",
    "CommandChannel",
    "Deliverer",
    "DeliveryError",
    "DeliverySummary",
    "EmailChannel",
    "HttpChannel",
    "Outgoing",
    "RenderError",
    "Secret",
    "backlog",
    "backoff",
    "deliver",
    "deliver_due",
    "describe_channel",
    "idempotency_key",
    "parse_channels",
    "redact_url",
]
