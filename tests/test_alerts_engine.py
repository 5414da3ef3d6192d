"""The alert engine: the state machine, live evaluation on a real store with a controlled clock
(outbox rows, repeats, silences, restarts), never reading data at or after now, and the
backtest agreeing with live evaluation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from conflictlens.analysis.alerts import AlertRule, AlertsConfig, Silence, backtest, evaluate_all
from conflictlens.analysis.alerts.backtest import evaluation_times
from conflictlens.analysis.alerts.reads import read_states
from conflictlens.analysis.alerts.series import BaselineCache, floor_minute, observe
from conflictlens.analysis.alerts.state import AlertState, Observation, step
from conflictlens.store import alerts as alert_store
from conflictlens.store import connect
from tests.conftest import RunCli
from tests.helpers import clf_line, clf_ts, write_lines

MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)
DAY0 = dt.datetime(2026, 11, 20)  # naive UTC, like the store


def at(hhmm: str, seconds: int = 0) -> dt.datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return DAY0 + dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


# --- the state machine (pure) ------------------------------------------------------------------

MACHINE = AlertRule(
    name="m",
    window=5 * MINUTE,
    above=0.5,
    pending_for=2 * MINUTE,
    keep_firing_for=3 * MINUTE,
    repeat_interval=10 * MINUTE,
)
HOLDS, CLEAR = Observation(0.9, True, requests=100), Observation(0.1, False, requests=100)


def walk(
    observations: list[Observation],
    *,
    every: dt.timedelta = MINUTE,
    silenced: frozenset[int] = frozenset(),
) -> list[tuple[str, str | None]]:
    """(state, notice) after each step, one step per ``every`` from 10:00."""
    state, seen = AlertState(), []
    for i, obs in enumerate(observations):
        state, notice = step(state, obs, at("10:00") + i * every, MACHINE, silenced=i in silenced)
        seen.append((state.state, notice))
    return seen


def test_pending_for_then_firing_then_keep_firing_then_resolved() -> None:
    seen = walk([HOLDS, HOLDS, HOLDS, CLEAR, CLEAR, CLEAR, CLEAR])
    assert seen == [
        ("pending", None),
        ("pending", None),
        ("firing", "firing"),  # held for 2 minutes
        ("firing", None),  # cleared 1 minute ago: kept firing
        ("firing", None),
        ("resolved", "resolved"),  # not held for keep_firing_for (3 minutes)
        ("resolved", None),
    ]


def test_a_pending_group_that_clears_is_normal_again_and_notifies_nothing() -> None:
    assert walk([HOLDS, CLEAR, HOLDS, HOLDS]) == [
        ("pending", None),
        ("normal", None),
        ("pending", None),  # the pending period starts over
        ("pending", None),
    ]


def test_a_normal_group_remembers_its_last_episode() -> None:
    state = AlertState()
    for i, obs in enumerate([HOLDS] * 3 + [CLEAR] * 4 + [HOLDS, CLEAR]):
        state, _ = step(state, obs, at("10:00") + i * MINUTE, MACHINE, silenced=False)
    assert state.state == "normal"
    assert (state.firing_since, state.resolved_at) == (at("10:02"), at("10:05"))


def test_repeat_interval_renotifies_a_firing_group() -> None:
    notices = [n for _, n in walk([HOLDS] * 25) if n]
    assert notices == ["firing", "repeat", "repeat"]  # at 10:02, 10:12, 10:22


def test_silenced_alerts_change_state_but_notify_nothing() -> None:
    seen = walk([HOLDS] * 4 + [CLEAR] * 4, silenced=frozenset(range(8)))
    states = ["pending", "pending", "firing", "firing", "firing", "firing", "resolved", "resolved"]
    assert [s for s, _ in seen] == states
    assert all(n is None for _, n in seen)


def test_a_silence_that_ends_while_firing_lets_the_firing_notification_out() -> None:
    seen = walk([HOLDS] * 6 + [CLEAR] * 4, silenced=frozenset({0, 1, 2, 3}))
    assert [n for _, n in seen if n] == ["firing", "resolved"]
    assert seen[4] == ("firing", "firing")


def test_a_resolution_under_silence_is_not_notified() -> None:
    seen = walk([HOLDS] * 3 + [CLEAR] * 4, silenced=frozenset({5, 6}))
    assert [n for _, n in seen if n] == ["firing"]
    assert seen[5] == ("resolved", None)


def test_nodata() -> None:
    gone = Observation(None, False, nodata=True)
    assert walk([gone, HOLDS]) == [("nodata", None), ("pending", None)]
    # A firing group whose traffic stops resolves once keep_firing_for has passed.
    seen = walk([HOLDS, HOLDS, HOLDS, gone, gone, gone])
    assert seen[-1] == ("resolved", "resolved")


# --- a hand-made store -------------------------------------------------------------------------

SPIKE = (at("10:00"), at("10:20"))
QUIET_FROM = at("11:30")


def lines_between(start: dt.datetime, end: dt.datetime) -> list[bytes]:
    """Per minute: PUT /api/v1/carts/{id} 10 requests, 1 conflict (6 in the spike, all on cart
    7, from two clients); GET /api/v1/users/{id} 20 requests, no conflicts."""
    lines = []
    minute = start
    while minute < end:
        conflicts = 6 if SPIKE[0] <= minute < SPIKE[1] else 1
        for i in range(10):
            moment = (minute + i * 5 * SECOND).replace(tzinfo=dt.UTC)
            status = 409 if i < conflicts else 200
            path = "/api/v1/carts/7" if status == 409 else f"/api/v1/carts/{i + 100}"
            client = f"10.0.0.{1 + i % 2}"
            lines.append(clf_line(path, status=status, ts=clf_ts(moment), client=client))
        for i in range(20):
            moment = (minute + i * 2 * SECOND).replace(tzinfo=dt.UTC)
            lines.append(
                clf_line(f"/api/v1/users/{i}", status=200, method="GET", ts=clf_ts(moment))
            )
        minute += MINUTE
    return lines


def ingest(run_cli: RunCli, db: Path, lines: list[bytes], name: str) -> None:
    log = db.parent / name
    write_lines(log, lines)
    result = run_cli("ingest", "--db", db, "--format", "nginx-combined", log)
    assert result.exit_code == 0, result.output


@pytest.fixture
def store(tmp_path: Path, run_cli: RunCli) -> Path:
    db = tmp_path / "alerts.duckdb"
    ingest(run_cli, db, lines_between(at("08:00"), QUIET_FROM), "access.log")
    return db


RATIO = AlertRule(
    name="carts-ratio",
    window=5 * MINUTE,
    metric="ratio",
    group_by=("method", "route"),
    above=0.3,
    min_requests=20,
    pending_for=2 * MINUTE,
    keep_firing_for=3 * MINUTE,
    repeat_interval=4 * dt.timedelta(hours=1),
    labels={"team": "checkout"},
    annotations={"summary": "Cart conflicts"},
    channels=("ops", "pager"),
)
ALERTS = AlertsConfig(
    evaluation_interval=30 * SECOND,
    dashboard_url="http://127.0.0.1:8501",
    rules=(RATIO,),
    channels={"ops": {}, "pager": {}},
)
CARTS = "/api/v1/carts/{id}"


def run_engine(db: Path, alerts: AlertsConfig, start: dt.datetime, end: dt.datetime) -> list[Any]:
    """Evaluate every evaluation_interval in [start, end) with a fresh connection; return the
    transitions."""
    cache: BaselineCache = {}  # as serve keeps it: per process
    with closing(connect(db)) as con:
        return [
            t
            for now in evaluation_times(start, end, alerts.evaluation_interval)
            for t in evaluate_all(con, alerts, now.replace(tzinfo=dt.UTC), cache=cache)
        ]


def outbox(db: Path) -> list[tuple[Any, ...]]:
    with closing(connect(db)) as con:
        return con.execute(
            "SELECT created_at, channel, rule, status, fingerprint, payload FROM alert_outbox "
            "ORDER BY id"
        ).fetchall()


def test_one_firing_and_one_resolved_notification_per_channel(store: Path) -> None:
    changes = run_engine(store, ALERTS, at("09:59"), at("10:30"))
    rows = outbox(store)
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (at("10:05"), "ops", "firing"),  # condition from 10:03 (5m ratio 0.4), for 2m
        (at("10:05"), "pager", "firing"),
        (at("10:25", 30), "ops", "resolved"),  # last held 10:22:30, kept firing 3m
        (at("10:25", 30), "pager", "resolved"),
    ]
    moves = [(c.previous, c.state, c.at) for c in changes if c.labels["route"] == CARTS]
    assert moves == [
        ("normal", "pending", at("10:03")),
        ("pending", "firing", at("10:05")),
        ("firing", "resolved", at("10:25", 30)),
    ]
    assert all(c.labels["route"] == CARTS for c in changes)  # users never alert


def test_the_payload_contract(store: Path) -> None:
    run_engine(store, ALERTS, at("09:59"), at("10:30"))
    firing = json.loads(outbox(store)[0][5])
    assert set(firing) == {
        "rule", "status", "fingerprint", "group_key", "labels", "annotations", "severity",
        "starts_at", "ends_at", "metric", "window", "value", "threshold", "baseline",
        "requests", "conflicts", "top_resources", "top_clients", "dashboard_url", "summary",
    }  # fmt: skip
    assert firing["rule"] == "carts-ratio" and firing["status"] == "firing"
    assert firing["labels"] == {
        "method": "PUT",
        "route": CARTS,
        "team": "checkout",
        "alertname": "carts-ratio",
        "severity": "warning",
    }
    assert firing["fingerprint"] == RATIO.fingerprint(("PUT", CARTS))
    assert firing["group_key"] == 'carts-ratio{method="PUT",route="/api/v1/carts/{id}"}'
    assert firing["annotations"] == {"summary": "Cart conflicts"}
    assert firing["starts_at"] == "2026-11-20T10:03:00+00:00"  # when it became pending
    assert firing["ends_at"] is None
    assert (firing["metric"], firing["window"], firing["threshold"]) == ("ratio", "5m", 0.3)
    # The window at 10:05 is [10:00, 10:05): all spike minutes.
    assert (firing["conflicts"], firing["requests"], firing["value"]) == (30, 50, 0.6)
    assert firing["baseline"] is None
    assert firing["top_resources"] == [{"resource": "7", "conflicts": 30}]
    assert firing["top_clients"] == [
        {"client": "10.0.0.1", "conflicts": 15},
        {"client": "10.0.0.2", "conflicts": 15},
    ]
    assert firing["dashboard_url"] == (
        "http://127.0.0.1:8501/?method=PUT&route=%2Fapi%2Fv1%2Fcarts%2F%7Bid%7D"
        "&since=2026-11-20T10%3A00%3A00%2B00%3A00&until=2026-11-20T10%3A05%3A00%2B00%3A00"
    )
    assert "carts-ratio firing on PUT /api/v1/carts/{id}" in firing["summary"]
    assert "60.0%" in firing["summary"]
    resolved = json.loads(outbox(store)[2][5])
    assert resolved["status"] == "resolved"
    assert resolved["ends_at"] == "2026-11-20T10:25:30+00:00"
    assert resolved["starts_at"] == firing["starts_at"]


def test_repeat_interval(store: Path) -> None:
    alerts = dataclasses.replace(
        ALERTS, rules=(dataclasses.replace(RATIO, repeat_interval=8 * MINUTE, channels=("ops",)),)
    )
    run_engine(store, alerts, at("09:59"), at("10:30"))
    assert [(r[0], r[3]) for r in outbox(store)] == [
        (at("10:05"), "firing"),
        (at("10:13"), "firing"),  # repeated after 8 minutes, not before
        (at("10:21"), "firing"),
        (at("10:25", 30), "resolved"),
    ]


def test_a_restart_neither_loses_nor_repeats_a_firing_alert(store: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin.duckdb"
    shutil.copy(store, twin)
    run_engine(store, ALERTS, at("09:59"), at("10:30"))
    # The twin's engine stops while the alert fires, and a new connection (as after a restart
    # of serve) carries on from the persisted state.
    run_engine(twin, ALERTS, at("09:59"), at("10:10"))
    with closing(connect(twin)) as con:
        (row,) = [s for s in read_states(con) if s.labels["route"] == CARTS]
        assert row.state.state == "firing" and row.state.firing_since == at("10:05")
    run_engine(twin, ALERTS, at("10:10"), at("10:30"))
    assert outbox(twin) == outbox(store)
    assert len(outbox(twin)) == 4


def test_silences_hold_notifications_back(store: Path) -> None:
    with closing(connect(store)) as con:
        matchers = {"rule": "carts-ratio", "route": CARTS}
        alert_store.add_silence(con, matchers, at("09:58"), at("10:30"), "deploy", at("09:00"))
    changes = run_engine(store, ALERTS, at("09:59"), at("10:30"))
    assert outbox(store) == []
    # ... while the alert went through its states as usual.
    assert [c.state for c in changes] == ["pending", "firing", "resolved"]
    assert all(c.silenced and c.notification is None for c in changes)


def test_a_silence_ending_during_the_episode_sends_the_firing_then(store: Path) -> None:
    silence = Silence({"alertname": "carts-ratio"}, at("09:58"), at("10:10"), "from the config")
    alerts = dataclasses.replace(ALERTS, silences=(silence,))
    run_engine(store, alerts, at("09:59"), at("10:30"))
    assert [(r[0], r[1], r[3]) for r in outbox(store)] == [
        (at("10:10"), "ops", "firing"),
        (at("10:10"), "pager", "firing"),
        (at("10:25", 30), "ops", "resolved"),
        (at("10:25", 30), "pager", "resolved"),
    ]


def test_states_are_persisted_and_nodata_when_traffic_stops(store: Path) -> None:
    run_engine(store, ALERTS, at("09:59"), at("10:30"))
    with closing(connect(store)) as con:
        states = {s.labels["route"]: s for s in read_states(con)}
    assert set(states) == {CARTS}  # a normal group keeps no row
    carts = states[CARTS].state
    assert carts.state == "resolved"
    assert (carts.active_since, carts.firing_since) == (at("10:03"), at("10:05"))
    assert carts.resolved_at == at("10:25", 30)
    assert carts.last_notified_at == at("10:25", 30)
    # Traffic stopped at 11:30: at 11:36 the 5-minute window [11:31, 11:36) has no requests
    # while the window before had some; and it stays so.
    run_engine(store, ALERTS, at("11:36"), at("11:36", 1))
    run_engine(store, ALERTS, at("11:50"), at("11:50", 1))
    with closing(connect(store)) as con:
        now_states = {s.labels["route"]: s.state.state for s in read_states(con)}
    assert now_states == {CARTS: "nodata", "/api/v1/users/{id}": "nodata"}
    assert len(outbox(store)) == 4  # nodata notifies nothing


# --- never reading the future ------------------------------------------------------------------


def test_the_engine_never_reads_data_at_or_after_now(
    store: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Data at or after ``now`` (even inside now's own unfinished minute) changes nothing."""
    anomaly = dataclasses.replace(RATIO, name="carts-anomaly", above=None, anomaly=3.0)
    alerts = dataclasses.replace(ALERTS, rules=(RATIO, anomaly))
    for now in (at("10:02", 40), at("10:21", 15)):
        future = tmp_path / f"future-{now:%H%M%S}.duckdb"
        shutil.copy(store, future)
        burst = [
            clf_line("/api/v1/carts/9", ts=clf_ts((now + i * SECOND).replace(tzinfo=dt.UTC)))
            for i in range(300)
        ]
        ingest(run_cli, future, burst, f"burst-{now:%H%M%S}.log")
        for rule in alerts.rules:
            with closing(connect(store)) as a, closing(connect(future)) as b:
                past, more = (observe(c, rule, [floor_minute(now)]) for c in (a, b))
            assert past.groups == more.groups
            for field in ("conflicts", "requests", "value", "threshold", "condition", "nodata"):
                assert getattr(past, field).tolist() == getattr(more, field).tolist(), field
        seen = [
            [(c.state, c.value) for c in run_engine(db, alerts, at("10:00"), now + SECOND)]
            for db in (store, future)
        ]
        assert seen[0] == seen[1]
        for db in (store, future):  # start the next round from scratch
            with closing(connect(db)) as con:
                con.execute("DELETE FROM alert_state")


# --- the backtest agrees with live evaluation -------------------------------------------------


def live_episodes(changes: list[Any]) -> list[tuple[str, str, dt.datetime, dt.datetime | None]]:
    """(rule, fingerprint, first firing, resolution) from live transitions."""
    opened: dict[tuple[str, str], dt.datetime] = {}
    episodes = []
    for c in changes:
        key = (c.rule, c.fingerprint)
        if c.state == "firing" and c.previous != "firing":
            opened[key] = c.at
        elif c.state == "resolved" and c.previous == "firing":
            episodes.append((*key, opened.pop(key), c.at))
    episodes += [(*key, start, None) for key, start in opened.items()]
    return sorted(episodes, key=lambda e: (e[2], e[0], e[1]))


def test_backtest_lists_the_episodes_live_evaluation_produced(store: Path) -> None:
    anomaly = dataclasses.replace(
        RATIO, name="carts-anomaly", above=None, anomaly=3.0, group_by=("route",)
    )
    # A 3-minute window beside 5-minute ones: live evaluation reads minutes for both.
    rate = dataclasses.replace(
        RATIO, name="carts-rate", metric="rate", window=3 * MINUTE, above=3.0, min_requests=0
    )
    alerts = dataclasses.replace(ALERTS, rules=(RATIO, anomaly, rate))
    changes = run_engine(store, alerts, at("09:00"), at("11:00"))
    with closing(connect(store)) as con:
        replayed = backtest(con, alerts, at("09:00"), at("11:00"))
    assert [(e.rule, e.fingerprint, e.start, e.end) for e in replayed] == live_episodes(changes)
    assert sorted(e.rule for e in replayed) == ["carts-anomaly", "carts-rate", "carts-ratio"]
    peaks = {e.rule: e.peak_value for e in replayed}
    assert peaks == {"carts-ratio": 0.6, "carts-rate": 6.0, "carts-anomaly": 0.6}


def test_evaluation_times_lie_on_the_interval_grid() -> None:
    times = evaluation_times(at("10:00", 10), at("10:02"), 30 * SECOND)
    assert times == [at("10:00", 30), at("10:01"), at("10:01", 30)]
    assert evaluation_times(at("10:00"), at("10:00"), 30 * SECOND) == []


# --- the bars: planted spikes in a day of realistic traffic ------------------------------------

# The rule set the README recommends for spike alerts (see the [alerts] documentation).
SPIKE_RULES = """
[alerts]
evaluation_interval = "1m"

[[alerts.rules]]
name = "conflict-ratio-spike"
group_by = ["service", "method", "route"]
metric = "ratio"
window = "15m"
anomaly = 5.0
min_requests = 20
for = "2m"
keep_firing_for = "10m"
severity = "warning"
channels = ["ops", "pager"]

[[alerts.rules]]
name = "conflict-volume-spike"
group_by = ["service", "method", "route"]
metric = "count"
window = "5m"
anomaly = 6.0
for = "2m"
keep_firing_for = "10m"
severity = "warning"
channels = ["ops", "pager"]

[alerts.channels.ops]
type = "webhook"
url = "http://127.0.0.1:9/ops"

[alerts.channels.pager]
type = "webhook"
url = "http://127.0.0.1:9/pager"
"""

# Each scenario is one service of the store: its own day of traffic, its own planted spike.
SCENARIOS = (
    "deploy-spike",
    "signup-surge",
    "hot-document",
    "order-states",
    "retry-storm",
    "none-planted",
)
Planted = tuple[str, str, str, dt.datetime, dt.datetime]  # service, method, route, start, end


@dataclasses.dataclass(frozen=True)
class Day:
    db: Path
    config: Path
    alerts: AlertsConfig
    planted: list[Planted]
    changes: list[Any]
    outbox: list[tuple[Any, ...]]


def _planted(service: str, facts: dict[str, Any] | None) -> list[Planted]:
    if facts is None:
        return []
    start = dt.datetime.fromisoformat(facts["start"]).replace(tzinfo=None)
    end = dt.datetime.fromisoformat(facts["end"]).replace(tzinfo=None)
    routes = facts.get("routes") or [facts]  # deploy-spike raises three routes at once
    return [(service, r["method"], r["route"], start, end) for r in routes]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """Six scenarios of 200,000 lines over 24 hours, one service each, in one store; the live
    engine stepped over the whole day at the evaluation interval with a controlled clock."""
    from click.testing import CliRunner

    from conflictlens.cli import cli
    from conflictlens.config import load_config
    from conflictlens.sample_logs.generator import write_log

    folder = tmp_path_factory.mktemp("alert-bars")
    db = folder / "day.duckdb"
    planted: list[Planted] = []
    for number, scenario in enumerate(SCENARIOS):
        log = folder / f"{scenario}.log"
        truth = write_log(
            log, 200_000, style="nginx-extended", seed=40 + number, hours=24, scenario=scenario
        )
        planted += _planted(scenario, truth["planted"])
        result = CliRunner().invoke(
            cli, ["ingest", "--db", str(db), "--service", scenario, str(log)]
        )
        assert result.exit_code == 0, result.output
    config = folder / "conflictlens.toml"
    config.write_text(SPIKE_RULES, encoding="utf-8")
    alerts = load_config(str(config)).alerts
    start, end = at("00:00") - dt.timedelta(days=1), at("00:00")
    changes = run_engine(db, alerts, start, end)
    return Day(db, config, alerts, planted, changes, outbox(db))


def _episodes(day: Day) -> list[tuple[str, dict[str, str], dt.datetime, dt.datetime | None]]:
    by_key = {(c.rule, c.fingerprint): c.labels for c in day.changes}
    return [
        (rule, by_key[(rule, fp)], start, end)
        for rule, fp, start, end in live_episodes(day.changes)
    ]


def _explains(
    planted: Planted, rule: AlertRule, labels: dict[str, str], start: dt.datetime
) -> bool:
    service, method, route, begin, end = planted
    same = (labels["service"], labels["method"], labels["route"]) == (service, method, route)
    return same and begin <= start <= end + rule.window


@pytest.mark.slow
def test_every_planted_spike_fires_within_window_plus_for_plus_one_interval(day: Day) -> None:
    rules = {r.name: r for r in day.alerts.rules}
    episodes = _episodes(day)
    assert len(day.planted) == 7  # deploy-spike plants three routes
    for planted in day.planted:
        fired = [
            (start - planted[3], rules[rule])
            for rule, labels, start, _ in episodes
            if _explains(planted, rules[rule], labels, start)
        ]
        assert fired, f"no alert for {planted}"
        bars = [
            latency <= r.window + r.pending_for + day.alerts.evaluation_interval
            for latency, r in fired
        ]
        assert any(bars), (planted, fired)


@pytest.mark.slow
def test_at_most_one_false_alert_per_day_of_normal_traffic(day: Day) -> None:
    rules = {r.name: r for r in day.alerts.rules}
    false = [
        (rule, labels, start)
        for rule, labels, start, _ in _episodes(day)
        if not any(_explains(p, rules[rule], labels, start) for p in day.planted)
    ]
    per_service: dict[str, int] = {}
    for _, labels, _ in false:
        per_service[labels["service"]] = per_service.get(labels["service"], 0) + 1
    assert all(n <= 1 for n in per_service.values()), false  # each service is one day


@pytest.mark.slow
def test_one_firing_and_one_resolved_notification_per_episode_and_channel(day: Day) -> None:
    episodes = live_episodes(day.changes)
    assert episodes and all(end is not None for *_, end in episodes)
    for channel in ("ops", "pager"):
        rows = [r for r in day.outbox if r[1] == channel]
        sent = sorted((r[2], r[4], r[0], r[3]) for r in rows)  # rule, fingerprint, at, status
        expected = sorted(
            row
            for rule, fp, start, end in episodes
            for row in ((rule, fp, start, "firing"), (rule, fp, end, "resolved"))
        )
        assert sent == expected  # nothing repeated: every episode is shorter than 4 h


@pytest.mark.slow
def test_backtest_command_lists_the_live_episodes(day: Day) -> None:
    from click.testing import CliRunner

    from conflictlens.cli_alerts import alerts

    result = CliRunner().invoke(
        alerts, ["backtest", "--config", str(day.config), "--db", str(day.db), "--json"]
    )
    assert result.exit_code == 0, result.output
    replayed = [
        (e["rule"], e["labels"], dt.datetime.fromisoformat(e["start"]).replace(tzinfo=None))
        for e in json.loads(result.stdout)
    ]
    live = [(rule, labels, start) for rule, labels, start, _ in _episodes(day)]
    assert sorted(replayed, key=repr) == sorted(live, key=repr)
    ends = sorted(e["end"] for e in json.loads(result.stdout))
    assert ends == sorted(f"{end.isoformat()}+00:00" for *_, end in _episodes(day) if end)
