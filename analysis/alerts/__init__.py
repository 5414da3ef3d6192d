"""Spike alerts: rules (rules, config), counting a rule's match (counts), its metric and
condition per group (series), the state machine (state), live evaluation with its outbox rows
(engine), notification payloads (payload), the backtest (backtest), and reads of the alert
tables (reads)."""

from conflictlens.analysis.alerts.backtest import Episode, backtest, preview
from conflictlens.analysis.alerts.config import parse_alerts, parse_duration, parse_rule
from conflictlens.analysis.alerts.engine import Transition, evaluate_all, test_notifications_for
from conflictlens.analysis.alerts.rules import AlertRule, AlertsConfig, Silence

__all__ = [
    "AlertRule",
    "AlertsConfig",
    "Episode",
    "Silence",
    "Transition",
    "backtest",
    "evaluate_all",
    "parse_alerts",
    "parse_duration",
    "parse_rule",
    "preview",
    "test_notifications_for",
]
