"""[alerts] in the config file: rules, silences and channels, each refusal naming the exact key
and the reason; labels, fingerprints and silence matching."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conflictlens.analysis.alerts.config import parse_duration
from conflictlens.analysis.alerts.rules import AlertRule, Silence, fingerprint
from conflictlens.config import ConfigError, load_config

EXAMPLE = """
[alerts]
evaluation_interval = "30s"
dashboard_url = "http://127.0.0.1:8501/"

[[alerts.rules]]
name = "checkout-conflicts"
match = { method = "post", route = "/api/v2/carts/*" }
group_by = ["route", "error_code"]
metric = "ratio"
window = "5m"
above = 0.10
min_requests = 20
for = "2m"
keep_firing_for = "5m"
repeat_interval = "4h"
severity = "warning"
labels = { team = "checkout" }
annotations = { summary = "Checkout conflicts are up" }
channels = ["ops"]

[[alerts.rules]]
name = "conflict-spike"
group_by = ["service", "method", "route"]
metric = "count"
window = "1h30m"
anomaly = 3.0

[[alerts.silences]]
matchers = { rule = "checkout-conflicts", route = "/api/v2/carts/{id}" }
starts_at = 2026-11-20T00:00:00Z
ends_at = "2026-11-21T02:00:00+02:00"
comment = "migration"

[alerts.channels.ops]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def write(text: str) -> Path:
    """The config as ./conflictlens.toml (tests run in their own temporary folder)."""
    path = Path("conflictlens.toml")
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_parses() -> None:
    write(EXAMPLE)
    alerts = load_config().alerts
    assert alerts.evaluation_interval == dt.timedelta(seconds=30)
    assert alerts.dashboard_url == "http://127.0.0.1:8501"
    checkout, spike = alerts.rules
    assert checkout.match == {"method": "POST", "route": "/api/v2/carts/*"}
    assert checkout.group_by == ("route", "error_code")
    assert (checkout.metric, checkout.above, checkout.anomaly) == ("ratio", 0.10, None)
    assert checkout.window == dt.timedelta(minutes=5)
    assert checkout.pending_for == dt.timedelta(minutes=2)
    assert checkout.keep_firing_for == dt.timedelta(minutes=5)
    assert checkout.repeat_interval == dt.timedelta(hours=4)
    assert checkout.channels == ("ops",)
    assert spike.window == dt.timedelta(minutes=90) and spike.anomaly == 3.0
    assert spike.repeat_interval == dt.timedelta(hours=4)  # Alertmanager's default
    assert spike.pending_for == dt.timedelta(0) and spike.channels == ()
    (silence,) = alerts.silences
    assert silence.starts_at == dt.datetime(2026, 11, 20)  # naive UTC, like the store
    assert silence.ends_at == dt.datetime(2026, 11, 21)
    assert silence.comment == "migration"
    assert set(alerts.channels) == {"ops"}


def test_no_alerts_table_means_no_rules() -> None:
    write('db = "x.duckdb"\n')
    alerts = load_config().alerts
    assert alerts.rules == () and alerts.silences == ()
    assert alerts.evaluation_interval == dt.timedelta(seconds=30)


def _rule(**fields: str) -> str:
    body = {"name": '"r"', "window": '"5m"', "above": "0.1", **fields}
    return "[[alerts.rules]]\n" + "".join(f"{k} = {v}\n" for k, v in body.items() if v)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _rule(window='"5x"'),
            'alerts.rules[0].window: "5x" is not a duration (e.g. 30s, 5m, 2h)',
        ),
        (_rule(window='"90s"'), "alerts.rules[0].window: must be whole minutes"),
        (_rule(window=""), "alerts.rules[0].window: required"),
        (_rule(metric='"p99"'), 'alerts.rules[0].metric: "p99" is not one of count, ratio, rate'),
        (_rule(above="1.5"), "alerts.rules[0].above: 1.5 must be between 0 and 1 for ratio"),
        (_rule(above='"high"'), 'alerts.rules[0].above: "high" is not a number'),
        (_rule(anomaly="3.0"), "alerts.rules[0]: set exactly one of above"),
        (_rule(above="", anomaly="-1"), "alerts.rules[0].anomaly: must be more than 0"),
        (_rule(group_by='["path"]'), 'alerts.rules[0].group_by: "path" is not one of'),
        (_rule(match='{ status = "409" }'), "alerts.rules[0].match.status: unknown key"),
        (_rule(channels='["pager"]'), 'alerts.rules[0].channels: no channel "pager"'),
        (_rule(severity='"loud"'), 'alerts.rules[0].severity: "loud" is not one of'),
        (_rule(**{"for": '"soon"'}), 'alerts.rules[0].for: "soon" is not a duration'),
        (_rule(min_requests="-1"), "alerts.rules[0].min_requests: expected a whole number"),
        (_rule(repeat_interval='"0s"'), "alerts.rules[0].repeat_interval: must be more than 0s"),
        (_rule(labels='{ alertname = "x" }'), "alerts.rules[0].labels.alertname: set by the rule"),
        (_rule(labels='{ "team-name" = "x" }'), "alerts.rules[0].labels.team-name: not a label"),
        (_rule(name='"has space"'), 'alerts.rules[0].name: "has space" is not a rule name'),
        (_rule(colour='"red"'), "alerts.rules[0].colour: unknown key"),
        (_rule() + _rule(), 'alerts.rules[1].name: "r" is used by another rule'),
        (
            '[alerts]\nevaluation_interval = "0s"\n',
            "alerts.evaluation_interval: must be at least 1s",
        ),
        ('[alerts]\ndashboard_url = "ftp://x"\n', 'alerts.dashboard_url: "ftp://x" is not an http'),
        ("[alerts]\nrules = 3\n", "alerts.rules: expected [[alerts.rules]] entries"),
        (
            '[[alerts.silences]]\nmatchers = { rule = "r" }\nstarts_at = 2026-11-20T00:00:00Z\n',
            "alerts.silences[0].ends_at: required",
        ),
        (
            "[[alerts.silences]]\nmatchers = {}\n",
            "alerts.silences[0].matchers: at least one matcher",
        ),
        (
            '[[alerts.silences]]\nmatchers = { rule = "r" }\nstarts_at = 2026-11-20\n'
            "ends_at = 2026-11-19\n",
            "alerts.silences[0].ends_at: must be after starts_at",
        ),
        ('[alerts.channels.ops]\nurl = "http://x"\n', "alerts.channels.ops.type: missing"),
    ],
)
def test_invalid_alerts_are_refused_with_the_exact_key(text: str, message: str) -> None:
    write(text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value).startswith(f"conflictlens.toml: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_durations() -> None:
    assert parse_duration("30s", "x") == dt.timedelta(seconds=30)
    assert parse_duration("1h30m", "x") == dt.timedelta(minutes=90)
    assert parse_duration("2w", "x") == dt.timedelta(days=14)
    for bad in ("", "5", "m5", "5 m", 5, "1.5h"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad, "x")


RULE = AlertRule(
    name="checkout",
    window=dt.timedelta(minutes=5),
    group_by=("route", "error_code"),
    above=0.1,
    severity="critical",
    labels={"team": "checkout"},
)


def test_labels_and_fingerprint_of_a_group() -> None:
    group = ("/api/v2/carts/{id}", None)
    assert RULE.labels_for(group) == {
        "route": "/api/v2/carts/{id}",
        "team": "checkout",
        "alertname": "checkout",
        "severity": "critical",
    }
    assert RULE.group_key(group) == 'checkout{route="/api/v2/carts/{id}"}'
    # Stable across processes and versions: persisted states and receivers rely on it.
    assert RULE.fingerprint(group) == fingerprint("checkout", ("route", "error_code"), group)
    assert RULE.fingerprint(group) == "dfde8b1f14b23b3f"
    assert RULE.fingerprint(group) != RULE.fingerprint(("/api/v2/carts/{id}", "X"))
    assert RULE.group_from_labels(RULE.labels_for(group)) == group


def test_silence_matches_rule_and_labels_within_its_window() -> None:
    start, end = dt.datetime(2026, 11, 20), dt.datetime(2026, 11, 21)
    silence = Silence({"rule": "checkout", "route": "/api/v2/carts/{id}"}, start, end)
    labels = RULE.labels_for(("/api/v2/carts/{id}", "CART_VERSION_CONFLICT"))
    assert silence.covers(labels, start)
    assert silence.covers(labels, end - dt.timedelta(seconds=1))
    assert not silence.covers(labels, end)  # the end is exclusive
    assert not silence.covers(labels, start - dt.timedelta(seconds=1))
    other = RULE.labels_for(("/api/v2/orders/{id}", "CART_VERSION_CONFLICT"))
    assert not silence.covers(other, start)
    by_alertname = Silence({"alertname": "checkout"}, start, end)
    assert by_alertname.covers(other, start)
    assert not Silence({"rule": "other"}, start, end).covers(labels, start)
