"""The dashboard shows the bad day's events whatever preset range holds them: on a store with
three days of history, the 24 h, 7 d and 30 d presets all rank the planted clusters first on
Hot spots and Overview and list the same incidents, matched against the generator's truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from conflictlens.cli import cli
from conflictlens.sample_logs.generator import write_log

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PRESETS = ("24h", "7d", "30d")


@pytest.fixture(scope="module")
def bad_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("bad-day")
    log = folder / "access.log"
    write_log(log, 600_000, style="nginx-extended", seed=12, hours=72, scenario="bad-day")
    db = folder / "t.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    planted = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))["planted"]
    return db, planted


@pytest.fixture
def app(bad_day: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CONFLICTLENS_DB", str(bad_day[0]))
    return AppTest.from_file(APP, default_timeout=60)


def _planted_clusters(planted: dict[str, Any]) -> set[tuple[str, str, str]]:
    document, storm = planted["hot_document"], planted["retry_storm"]
    return {
        *((r["method"], r["route"], r["error_code"]) for r in planted["deploy_spike"]["routes"]),
        *((document["method"], document["route"], c) for c in document["conflicts_by_code"]),
        (storm["method"], storm["route"], storm["error_code"]),
    }


def _open(app: AppTest, page: str, preset: str, section: str | None = None) -> None:
    """Open a page at a range preset (and a tab), as a shared link does; no exception."""
    app.query_params["range"] = preset
    if section is not None:
        app.query_params["section"] = section
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]


@pytest.mark.parametrize("preset", PRESETS)
def test_hot_spots_rank_the_planted_clusters_first(
    app: AppTest, bad_day: tuple[Path, dict[str, Any]], preset: str
) -> None:
    expected = _planted_clusters(bad_day[1])
    _open(app, "app_pages/hotspots.py", preset, "Heatmap and ranking")
    ranked = app.dataframe[0].value  # the ranking, its status naming the new and growing
    top = ranked.head(len(expected))
    assert set(zip(top["method"], top["route"], top["error_code"], strict=True)) == expected
    assert top["score"].notna().all()
    assert set(top["status"]) <= {"new", "growing"} and "" not in set(top["status"])
    assert len(app.dataframe) == 1  # no second list repeating them


@pytest.mark.parametrize("preset", PRESETS)
def test_incidents_tab_lists_the_planted_incidents(
    app: AppTest, bad_day: tuple[Path, dict[str, Any]], preset: str
) -> None:
    planted = bad_day[1]
    _open(app, "app_pages/hotspots.py", preset, "Incidents")
    table = app.dataframe[0].value
    starts = [dt.datetime.fromisoformat(str(s)).replace(tzinfo=dt.UTC) for s in table["start"]]
    for event, routes in (
        ("deploy_spike", {r["route"] for r in planted["deploy_spike"]["routes"]}),
        ("hot_document", {planted["hot_document"]["route"]}),
    ):
        begin = dt.datetime.fromisoformat(planted[event]["start"])
        rows = [i for i, s in enumerate(starts) if abs(s - begin) <= dt.timedelta(minutes=5)]
        assert len(rows) == 1, (preset, event, table)
        clusters = table["clusters"].iloc[rows[0]].split("; ")  # "METHOD route CODE" each
        assert {c.split(" ")[1] for c in clusters} == routes, (preset, event, clusters)
    # nothing but the planted events (the storm's 3 minutes may or may not make an episode)
    assert len(table) <= 3


@pytest.mark.parametrize("preset", PRESETS)
def test_overview_ranks_the_planted_clusters_first(
    app: AppTest, bad_day: tuple[Path, dict[str, Any]], preset: str
) -> None:
    expected = _planted_clusters(bad_day[1])
    _open(app, "app_pages/overview.py", preset)
    bars = app.get("plotly_chart")[-1]  # the page ends with the top hot spots
    figure = json.loads(bars.proto.spec)
    labels = [data[0] for data in figure["data"][0]["customdata"]]
    wanted = {f"{method} {route} {code}" for method, route, code in expected}
    assert set(labels[: len(expected)]) == wanted, labels
