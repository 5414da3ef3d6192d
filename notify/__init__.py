"""Notifications: the outbox and the channels that deliver alerts (webhook, Alertmanager,
Slack, e-mail, a local command)."""
