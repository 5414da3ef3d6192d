"""The Alerts page: a rule made in the page lands in the config file (its comments and order
kept), serve picks it up, and the page's backtest is the one `conflictlens alerts backtest`
gives; invalid rules are refused with the key named and the file untouched; silences.

The page runs under Streamlit's AppTest on a real store; the end-to-end case drives the
page's data layer against a real `conflictlens serve`."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from conflictlens.config import ConfigError, load_config
from conflictlens.config_edit import delete_rule, save_rule
from conflictlens.sample_logs.generator import write_log
from tests.conftest import RunCli, hot_document_store

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
CONFIG = """\
# conflictlens config for the Alerts page tests
db = "t.duckdb"  # beside this file

[alerts]
evaluation_interval = "1m"  # every minute

# paging goes here
[alerts.channels.ops]
type = "webhook"
url = "http://127.0.0.1:9/ops"
"""
# The hot-document scenario plants 47 conflicts on one document in 12 minutes (up to 23 in
# 5 minutes): a count rule per route fires on it once.
RULE = {
    "name": "hot-route",
    "group_by": ["method", "route"],
    "metric": "count",
    "window": "5m",
    "above": 10,
    "for": "2m",
    "channels": ["ops"],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return hot_document_store(tmp_path_factory.mktemp("alerts-page"))


@pytest.fixture
def config(tmp_path: Path, store: tuple[Path, dict[str, Any]]) -> Path:
    path = tmp_path / "conflictlens.toml"
    path.write_text(CONFIG.replace("t.duckdb", str(store[0])), encoding="utf-8")
    return path


@pytest.fixture
def app(
    store: tuple[Path, dict[str, Any]], config: Path, monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    monkeypatch.setenv("CONFLICTLENS_DB", str(store[0]))
    monkeypatch.setenv("CONFLICTLENS_CONFIG", str(config))
    test = AppTest.from_file(APP, default_timeout=60)
    test.query_params["range"] = "all"
    return test


def _fill(app: AppTest, rule: dict[str, Any], key: str = "New rule") -> None:
    app.text_input(key=f"name-{key}").set_value(rule["name"])
    app.selectbox(key=f"metric-{key}").set_value(rule["metric"])
    app.text_input(key=f"window-{key}").set_value(rule["window"])
    app.radio(key=f"cond-{key}").set_value("above" if "above" in rule else "anomaly")
    app.number_input(key=f"level-{key}").set_value(float(rule.get("above", rule.get("anomaly"))))
    app.text_input(key=f"for-{key}").set_value(rule.get("for", "0s"))
    app.multiselect(key=f"group-{key}").set_value(rule.get("group_by", []))
    app.multiselect(key=f"channels-{key}").set_value(rule.get("channels", []))


def _open(app: AppTest, section: str) -> None:
    """Open the page's tab ``section`` (only the open tab is drawn), as a click on it does."""
    app.session_state["section"] = section
    app.run()
    assert app.session_state["section"] == section


def _press(app: AppTest, label: str) -> None:
    next(b for b in app.button if b.label == label).click().run()


def _cli_episodes(run_cli: RunCli, config: Path, name: str) -> list[dict[str, Any]]:
    result = run_cli("alerts", "backtest", "--config", config, "--rule", name, "--json")
    assert result.exit_code == 0, result.output
    episodes: list[dict[str, Any]] = json.loads(result.output)
    return episodes


def _frame(app: AppTest, column: str) -> Any:
    """The page's table that has ``column`` (AppTest does not keep a dataframe's key)."""
    return next(d for d in app.dataframe if column in d.value.columns).value


def _page_episodes(app: AppTest) -> list[tuple[str, str | None]]:
    table = _frame(app, "peak_value")
    ends = [None if e is None or e != e else e for e in table["end"]]  # NaN: still firing
    return list(zip(table["start"], ends, strict=True))


def test_a_rule_made_in_the_page_lands_in_the_config_and_backtests_as_the_cli(
    app: AppTest, config: Path, run_cli: RunCli
) -> None:
    app.switch_page("app_pages/alerts.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("No alert rules yet" in i.value for i in app.info)
    _open(app, "Create or edit")
    _fill(app, RULE)
    _press(app, "Save")
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("saved in" in s.value for s in app.success)
    text = config.read_text(encoding="utf-8")
    assert text.startswith(CONFIG.splitlines()[0])  # comments kept, in their places
    assert "# paging goes here" in text and 'evaluation_interval = "1m"  # every minute' in text
    saved = tomllib.loads(text)["alerts"]["rules"]
    assert saved == [{**RULE, "above": 10.0}]
    assert load_config(str(config)).alerts.rule("hot-route").above == 10
    page = _page_episodes(app)
    cli = _cli_episodes(run_cli, config, "hot-route")
    assert len(page) == 1 and page == [(e["start"], e["end"]) for e in cli]


@pytest.mark.parametrize(
    ("section", "forms", "tables"),
    [("Rules", 0, 1), ("Create or edit", 1, 0), ("Silences", 1, 0), ("Notifications", 0, 0)],
)
def test_alerts_draws_only_the_open_tab(
    app: AppTest, config: Path, section: str, forms: int, tables: int
) -> None:
    save_rule(config, RULE)
    app.query_params["section"] = section  # as in a shared link
    app.switch_page("app_pages/alerts.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert (len(app.get("form")), len(app.dataframe)) == (forms, tables)


def test_an_invalid_rule_is_refused_with_its_key_and_the_file_is_untouched(
    app: AppTest, config: Path
) -> None:
    before = config.read_bytes()
    app.switch_page("app_pages/alerts.py").run()
    _open(app, "Create or edit")
    _fill(app, {**RULE, "window": "5x"})
    _press(app, "Save")
    assert not app.exception
    assert any("window" in e.value and "5x" in e.value for e in app.error)
    assert config.read_bytes() == before


def test_an_existing_rule_is_edited_in_place_and_deleted(
    app: AppTest, config: Path, run_cli: RunCli
) -> None:
    save_rule(config, {**RULE, "name": "first", "above": 10})
    save_rule(config, RULE)
    app.switch_page("app_pages/alerts.py").run()
    assert list(_frame(app, "condition")["rule"]) == ["first", "hot-route"]  # the Rules tab
    _open(app, "Create or edit")
    app.selectbox(key="edit").set_value("first").run()
    assert app.text_input(key="name-first").value == "first"
    app.number_input(key="level-first").set_value(60.0)
    _press(app, "Save")
    assert not app.error, [e.value for e in app.error]
    rules = tomllib.loads(config.read_text(encoding="utf-8"))["alerts"]["rules"]
    assert [(r["name"], r["above"]) for r in rules] == [("first", 60.0), ("hot-route", 10)]
    app.selectbox(key="edit").set_value("first").run()
    _press(app, "Delete")
    assert [r.name for r in load_config(str(config)).alerts.rules] == ["hot-route"]


def test_silences_are_added_and_expired_from_the_page(app: AppTest, config: Path) -> None:
    save_rule(config, RULE)
    app.switch_page("app_pages/alerts.py").run()
    _open(app, "Silences")
    next(t for t in app.text_input if t.label == "Comment").set_value("deploy")
    _press(app, "Silence")
    assert not app.error, [e.value for e in app.error]
    table = _frame(app, "matchers")
    assert list(table["comment"]) == ["deploy"] and list(table["active"]) == [True]
    app.button(key="expire").click().run()
    assert not app.error
    assert list(_frame(app, "matchers")["active"]) == [False]


def test_config_edits_keep_comments_order_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "conflictlens.toml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o600)
    save_rule(path, {**RULE, "match": {"route": "/api/*"}})
    save_rule(path, {**RULE, "name": "second"})
    save_rule(path, {**RULE, "name": "renamed", "above": 5}, replaces="hot-route")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(CONFIG.split("\n\n")[0])  # the head with its comments
    assert "# paging goes here\n[alerts.channels.ops]" in text
    assert 'match = {route = "/api/*"}' not in text  # the replacement has no match any more
    assert [r["name"] for r in tomllib.loads(text)["alerts"]["rules"]] == ["renamed", "second"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match=r"alerts\.rules\[1\]\.name: \"renamed\" is used"):
        save_rule(path, {**RULE, "name": "renamed"}, replaces="second")
    with pytest.raises(ConfigError, match="no alert rule named 'gone'"):
        delete_rule(path, "gone")
    assert path.read_text(encoding="utf-8") == text  # refusals leave the file as it was
    delete_rule(path, "second")
    assert [r.name for r in load_config(str(path)).alerts.rules] == ["renamed"]
    fresh = tmp_path / "new.toml"  # a file that does not exist yet is created
    save_rule(fresh, {k: v for k, v in RULE.items() if k != "channels"})
    assert load_config(str(fresh)).alerts.rule("hot-route").above == 10


@pytest.mark.slow
def test_a_rule_saved_through_serve_is_reloaded_and_backtests_as_the_cli(
    store: tuple[Path, dict[str, Any]],
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    from conflictlens.dashboard import alerts_data
    from tests.test_serve import Serve
    from tests.test_tail import wait_for

    db = store[0]
    server = Serve(db, "--config", str(config))
    monkeypatch.setenv("CONFLICTLENS_DB", str(db))
    try:
        message = alerts_data.save_rule(RULE, None)
        assert "serve reloads it" in message and str(config) in message
        assert "# paging goes here" in config.read_text(encoding="utf-8")

        def listed() -> bool:
            status, body = server.get("/api/alerts")
            return status == 200 and [r["name"] for r in json.loads(body)["rules"]] == ["hot-route"]

        wait_for(listed, 20, "serve to reload the saved rule")
        page = alerts_data.preview_rule(RULE, None, None).episodes
        cli = _cli_episodes(run_cli, config, "hot-route")  # through serve too
        assert page.height > 0
        assert list(zip(page["start"], page["end"], strict=True)) == [
            (e["start"], e["end"]) for e in cli
        ]
        number = alerts_data.add_silence({"rule": "hot-route"}, "1h", "maintenance")
        alerts_data.expire_silence(number)
        with pytest.raises(alerts_data.DataError, match="window"):
            alerts_data.save_rule({**RULE, "window": "5x"}, "hot-route")
    finally:
        server.stop()


def test_the_demo_config_loads_and_its_rule_catches_the_planted_spike(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """`make demo` starts serve with sample_logs/demo.toml: its rule must load and fire on
    the deploy-spike sample's planted routes (and nowhere else)."""
    config = tmp_path / "conflictlens.toml"
    config.write_bytes((Path(__file__).parents[1] / "sample_logs" / "demo.toml").read_bytes())
    truth = write_log(
        tmp_path / "access.log", 100_000, style="nginx-extended", seed=3, scenario="deploy-spike"
    )
    assert run_cli("ingest", "--config", config, tmp_path / "access.log").exit_code == 0
    result = run_cli("alerts", "backtest", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    fired = {(e["labels"]["method"], e["labels"]["route"]) for e in json.loads(result.output)}
    planted = {(r["method"], r["route"]) for r in truth["planted"]["routes"]}
    assert fired == planted
