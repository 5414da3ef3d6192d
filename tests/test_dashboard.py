"""Every dashboard page under Streamlit's AppTest, on a real store imported from a planted
scenario: no exception, the key elements there, a filter change changes the data, the view
lives in the URL, and log strings never reach a figure unescaped."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from conflictlens.dashboard.data import DataError
from conflictlens.dashboard.figures import (
    CHAR_PX,
    SPARKLINE_POINTS,
    hot_spot_bars,
    safe,
    sparklines,
)
from conflictlens.dashboard.figures_time import (
    HEATMAP_LABEL_CHARS,
    conflicts_over_time,
    route_heatmap,
)
from conflictlens.dashboard.passwords import hash_password, is_password_hash, verify_password
from conflictlens.dashboard.reports_data import report_file
from conflictlens.sample_logs.generator import write_log
from tests.conftest import RunCli, hot_document_store
from tests.helpers import conflicts_by_cluster, truth_requests

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = {
    "app_pages/overview.py": {"plotly_chart": 2, "metric": 3},
    "app_pages/hotspots.py": {"plotly_chart": 1, "dataframe": 1, "tabs": 3},  # the ranking
    "app_pages/resources.py": {"plotly_chart": 1, "dataframe": 1, "tabs": 2},
    "app_pages/explore.py": {"dataframe": 1},
    "app_pages/alerts.py": {"tabs": 4},  # the Rules tab: an empty config, so no rules yet
    "app_pages/ingest.py": {"dataframe": 1},
    "app_pages/reports.py": {"info": 1},  # an empty archive: how to get reports
}
REPORTS_PAGE = "app_pages/reports.py"


Store = tuple[Path, dict[str, Any]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The store and the generator's ground truth (6 hours: all inside the 24 h range)."""
    return hot_document_store(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def app(store: Store, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CONFLICTLENS_DB", str(store[0]))
    return AppTest.from_file(APP, default_timeout=60)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_renders_its_parts(app: AppTest, page: str) -> None:
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    for element, at_least in PAGES[page].items():
        assert len(app.get(element)) >= at_least, (page, element)


# --- the numbers shown are the generator's ----------------------------------------------------


def test_overview_shows_the_planted_totals(app: AppTest, store: Store) -> None:
    truth = store[1]
    app.query_params["range"] = "24h"  # the 6 hours of the log, all of it
    app.switch_page("app_pages/overview.py").run()
    assert not app.exception, [e.value for e in app.exception]
    shown = {m.label: m.value for m in app.metric}
    assert shown == {
        "Conflicts": f"{truth['conflicts']:,}",
        "Requests": f"{truth['lines']:,}",
        "Conflict ratio": f"{truth['conflicts'] / truth['lines']:.2%}",
    }


def test_hot_spots_ranks_the_planted_clusters_with_their_counts(app: AppTest, store: Store) -> None:
    truth = store[1]
    conflicts: dict[tuple[str, str, str | None], int] = {}
    for (method, route, _status, code), n in conflicts_by_cluster(
        truth["conflicts_by_cluster"]
    ).items():  # the page's clusters are (method, route, error code): statuses summed
        conflicts[(method, route, code)] = conflicts.get((method, route, code), 0) + n
    requests = truth_requests(truth)
    app.switch_page("app_pages/hotspots.py").run()
    table = app.dataframe[0].value
    shown = {
        (row["method"], row["route"], row["error_code"]): (row["conflicts"], row["requests"])
        for row in table.to_dict("records")
    }
    assert shown == {key: (n, requests[key[:2]]) for key, n in conflicts.items()}


def test_explore_counts_the_planted_events_and_a_filter_narrows_them(
    app: AppTest, store: Store
) -> None:
    truth = store[1]
    patch = sum(c["conflicts"] for c in truth["conflicts_by_cluster"] if c["method"] == "PATCH")
    app.switch_page("app_pages/explore.py").run()
    assert f"; {truth['conflicts']:,} events)" in app.number_input[0].label
    app.selectbox(key="method").set_value("PATCH").run()
    assert 0 < patch < truth["conflicts"]
    assert f"; {patch:,} events)" in app.number_input[0].label


def test_ingest_shows_the_lines_and_conflicts_of_the_source(app: AppTest, store: Store) -> None:
    truth = store[1]
    app.switch_page("app_pages/ingest.py").run()
    [source] = app.dataframe[0].value.to_dict("records")
    assert (source["lines"], source["conflicts"], source["rejects"]) == (
        truth["lines"],
        truth["conflicts"],
        0,
    )


def test_a_filter_narrows_the_events(app: AppTest) -> None:
    app.switch_page("app_pages/explore.py").run()
    before = app.dataframe[0].value
    assert set(before["method"]) > {"PATCH"}
    app.selectbox(key="method").set_value("PATCH").run()
    after = app.dataframe[0].value
    assert not app.exception
    assert set(after["method"]) == {"PATCH"}
    assert app.query_params["method"] in ("PATCH", ["PATCH"])  # the view is in the URL, to share


def test_the_view_comes_from_the_url(app: AppTest) -> None:
    app.query_params["method"] = "PUT"
    app.query_params["range"] = "1h"
    app.switch_page("app_pages/explore.py").run()
    assert app.selectbox(key="method").value == "PUT"
    assert app.selectbox(key="range").value == "1h"
    assert set(app.dataframe[0].value["method"]) <= {"PUT"}


def test_hot_spots_page_shows_the_planted_document(app: AppTest, store: Store) -> None:
    planted = store[1]["planted"]
    app.switch_page("app_pages/resources.py").run()
    table = app.dataframe[0].value
    top = table[table["route"] == planted["route"]].iloc[0]
    assert top["resource"] == planted["resource"]


def test_rank_by_reorders_the_ranked_clusters(app: AppTest) -> None:
    app.switch_page("app_pages/hotspots.py").run()
    app.selectbox(key="sort").set_value("volume").run()
    assert not app.exception
    by_volume = app.dataframe[0].value["conflicts"].tolist()  # the ranking
    assert by_volume == sorted(by_volume, reverse=True) and len(by_volume) > 1
    app.selectbox(key="sort").set_value("ratio").run()
    ratios = app.dataframe[0].value["ratio"].tolist()
    assert ratios == sorted(ratios, reverse=True)


@pytest.mark.parametrize(
    ("section", "charts", "tables"),
    [("Heatmap and ranking", ["heatmap"], 1), ("Treemap", ["treemap"], 0), ("Incidents", [], 1)],
)
def test_hot_spots_draws_only_the_open_tab(
    app: AppTest, section: str, charts: list[str], tables: int
) -> None:
    """Only the open tab's parts; the tab comes from the URL, as in a shared link."""
    app.query_params["section"] = section
    app.switch_page("app_pages/hotspots.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert (_trace_types(app), len(app.dataframe)) == (charts, tables)


def _trace_types(app: AppTest) -> list[str]:
    """The type of each chart drawn, by its first trace."""
    return [json.loads(c.proto.spec)["data"][0]["type"] for c in app.get("plotly_chart")]


def test_resources_draws_retry_storms_in_their_tab(app: AppTest) -> None:
    app.query_params["section"] = "Retry storms"
    app.switch_page("app_pages/resources.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.get("plotly_chart") and not app.dataframe  # no hot resources drawn
    assert [i.value for i in app.info] == ["No retry storms in this range."]


def test_a_filter_change_keeps_the_open_tab_in_the_url(app: AppTest) -> None:
    app.query_params["section"] = "Treemap"
    app.switch_page("app_pages/hotspots.py").run()
    app.selectbox(key="method").set_value("PATCH").run()
    assert not app.exception
    assert app.query_params["section"] in ("Treemap", ["Treemap"])
    assert app.query_params["method"] in ("PATCH", ["PATCH"])
    assert _trace_types(app) == ["treemap"]


def test_login_is_required_when_a_password_is_set(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CONFLICTLENS_DASHBOARD_PASSWORD_HASH", hash_password("s3cret", iterations=1000)
    )
    app.run()
    assert not app.exception
    assert not app.get("plotly_chart") and not app.get("metric")
    app.text_input[0].set_value("wrong")
    app.button[0].click().run()
    assert app.error and not app.get("metric")
    app.text_input[0].set_value("s3cret")
    app.button[0].click().run()
    assert len(app.get("metric")) == 3


def test_password_hashes() -> None:
    stored = hash_password("pw", iterations=1000)
    assert verify_password("pw", stored) and not verify_password("pW", stored)
    assert not verify_password("pw", "garbage") and not verify_password("pw", "md5$1$00$00")
    assert is_password_hash(stored) and is_password_hash(hash_password("pw"))
    for text in ("pw", "garbage", "md5$1$00$00", stored.replace("$1000$", "$0$"), stored[:-2]):
        assert not is_password_hash(text), text


@pytest.fixture
def archive(app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reports directory the page uses: the config file's, as serve hands it over."""
    config = tmp_path / "conflictlens.toml"
    config.write_text('[reports]\ndirectory = "archive"\n', encoding="utf-8")
    monkeypatch.setenv("CONFLICTLENS_CONFIG", str(config))
    return tmp_path / "archive"


def test_the_reports_page_without_reports_says_how_to_get_them(app: AppTest, archive: Path) -> None:
    app.switch_page(REPORTS_PAGE).run()
    assert not app.exception and not app.error
    [info] = app.info
    assert str(archive) in info.value
    assert "[reports.nightly]" in info.value and "Generate now" in info.value
    assert not app.get("download_button")


def generate(app: AppTest, period: str, *, day: dt.date | None = None, tz: str = "UTC") -> None:
    app.selectbox(key="gen_period").set_value(period)
    if day is not None:
        app.date_input(key="gen_day").set_value(day)
    app.text_input(key="gen_tz").set_value(tz)
    next(b for b in app.button if b.label == "Generate now").click().run()


def test_generate_now_archives_a_report_the_page_lists_and_offers(
    app: AppTest, archive: Path
) -> None:
    app.switch_page(REPORTS_PAGE).run()
    assert app.multiselect(key="gen_formats").value == ["html", "md"]  # no nightly: the default
    generate(app, "A date", day=dt.date(2026, 11, 19))
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "2026-11-19 (UTC)" in app.success[0].value
    table = app.dataframe[0].value
    assert list(table["period"]) == ["2026-11-19 (UTC)"]
    assert table["formats"][0] == "html, md, json" and table["deliveries"][0] == "-"
    [entry] = json.loads((archive / "index.json").read_text(encoding="utf-8"))["reports"]
    names = {f["format"]: f["name"] for f in entry["files"]}
    # the scheduler's names and entry: a report by hand is one of the archive's like any other
    assert names == {fmt: f"conflictlens-2026-11-19.{fmt}" for fmt in ("html", "md", "json")}
    assert entry["schedule"] is None and entry["deliveries"] == []
    assert [b.label for b in app.get("download_button")] == [
        "Download html",
        "Download md",
        "Download json",
    ]
    [viewer] = app.get("iframe")  # the HTML report, opened as it is stored
    assert viewer.proto.srcdoc == (archive / names["html"]).read_text(encoding="utf-8")
    assert report_file(names["md"]) == (archive / names["md"]).read_bytes()
    for outside in ("index.json", ".lock", "../t.duckdb", "/etc/passwd"):
        with pytest.raises(DataError, match="in the reports index"):
            report_file(outside)


def test_a_second_report_is_listed_first_and_a_bad_zone_is_one_line(
    app: AppTest, archive: Path
) -> None:
    app.switch_page(REPORTS_PAGE).run()
    generate(app, "A date", day=dt.date(2026, 11, 19))
    generate(app, "A date", day=dt.date(2026, 11, 19), tz="America/New_York")
    assert not app.error, [e.value for e in app.error]
    periods = list(app.dataframe[0].value["period"])
    assert len(periods) == 2 and periods[1] == "2026-11-19 (UTC)"  # latest period first
    generate(app, "Yesterday", tz="Mars/Olympus")
    assert [e.value for e in app.error] == [
        "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Berlin)"
    ]
    assert app.dataframe[0].value.shape[0] == 2  # the list is still there


def test_an_empty_period_is_refused_and_the_report_made_is_the_one_opened(
    app: AppTest, archive: Path, store: Store
) -> None:
    """The form starts at the last day with data; a period without any (the day before the
    log's six hours) is a warning, not an empty report in the archive; after "Generate now"
    the viewer shows the report just made, not the one it showed before."""
    app.switch_page(REPORTS_PAGE).run()
    last = dt.datetime.fromisoformat(store[1]["to"]).astimezone(dt.UTC) - dt.timedelta(seconds=1)
    assert app.date_input(key="gen_day").value == last.date()
    generate(app, "A date", day=last.date() - dt.timedelta(days=1))
    assert not app.error and next(w.value for w in app.warning).startswith("No data from")
    assert not (archive / "index.json").exists()  # nothing archived
    generate(app, "The last day with data")
    assert not app.error, [e.value for e in app.error]
    generate(app, "A date", day=last.date(), tz="America/New_York")
    index = json.loads((archive / "index.json").read_text(encoding="utf-8"))["reports"]
    assert len(index) == 2
    made = next(e for e in index if "America/New_York" in e["period"]["label"])
    html = next(f["name"] for f in made["files"] if f["format"] == "html")
    [viewer] = app.get("iframe")
    assert viewer.proto.srcdoc == (archive / html).read_text(encoding="utf-8")
    generate(app, "The last day with data")  # made again: listed second, and opened
    [viewer] = app.get("iframe")
    assert "America/New_York" not in viewer.proto.srcdoc


def test_an_unreadable_archive_is_one_line(app: AppTest, archive: Path) -> None:
    archive.mkdir()
    (archive / "index.json").write_text("{not json", encoding="utf-8")
    app.switch_page(REPORTS_PAGE).run()
    assert not app.exception
    [error] = app.error
    assert "index.json: unreadable" in error.value and "\n" not in error.value


def test_log_strings_are_escaped_in_figures() -> None:
    evil = '<img src=x onerror="alert(1)">'
    frame = pl.DataFrame({"text": [evil, None]})
    assert frame.select(safe("text"))["text"].to_list() == [
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;",
        "-",
    ]
    timeline = pl.DataFrame(
        {
            "bucket": [dt.datetime(2026, 11, 19)],
            "method": ["GET"],
            "route": [f"/api/{evil}"],
            "conflicts": [3],
        }
    )
    figure = route_heatmap(timeline)
    assert all("<img" not in label for label in figure.data[0].y)


def test_dashboard_command_has_help(run_cli: RunCli) -> None:
    result = run_cli("dashboard", "--help")
    assert result.exit_code == 0 and "Example:" in result.output


def test_answers_are_kept_until_the_store_changes(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard caches answers per store version: the same question asks the store once
    until a commit (here a second import) changes the version."""
    from conflictlens.dashboard.data import ask, store_version

    db = tmp_path / "t.duckdb"
    for seed in (1, 2):
        write_log(tmp_path / f"{seed}.log", 2000, style="nginx-combined", seed=seed)
    assert run_cli("ingest", "--db", db, tmp_path / "1.log").exit_code == 0
    monkeypatch.setenv("CONFLICTLENS_DB", str(db))
    before = store_version(db)
    first = ask("totals", None, None)["conflicts"][0]
    assert store_version(db) == before  # asking (read-only) changes nothing
    assert ask("totals", None, None)["conflicts"][0] == first
    assert run_cli("ingest", "--db", db, tmp_path / "2.log").exit_code == 0
    assert store_version(db) != before
    assert ask("totals", None, None)["conflicts"][0] > first


def test_a_run_answers_for_the_version_pinned_at_its_start(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's run (or a live part's refresh) pins the store's version once: a commit while
    it draws does not make it ask again for what it has (serve commits every half second
    while it follows a log), and the next run sees the commit."""
    db = tmp_path / "t.duckdb"
    for seed in (1, 2):
        write_log(tmp_path / f"{seed}.log", 2000, style="nginx-combined", seed=seed)
    assert run_cli("ingest", "--db", db, tmp_path / "1.log").exit_code == 0
    monkeypatch.setenv("CONFLICTLENS_DB", str(db))
    script = tmp_path / "page.py"
    script.write_text(
        "import streamlit as st\n"
        "from conflictlens.dashboard.data import ask, pin_version\n"
        "import subprocess, sys, os\n"
        "pin_version()\n"
        "first = ask('totals', None, None)['conflicts'][0]\n"
        "if st.session_state.get('commit_between'):\n"
        "    st.session_state['commit_between'] = False\n"
        "    subprocess.run([sys.executable, '-m', 'conflictlens', 'ingest', '--db',\n"
        "                    os.environ['CONFLICTLENS_DB'], os.environ['SECOND_LOG']], check=True)\n"
        "second = ask('totals', None, None)['conflicts'][0]\n"
        "st.write(f'{first} {second}')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SECOND_LOG", str(tmp_path / "2.log"))
    test = AppTest.from_file(str(script), default_timeout=60)
    test.session_state["commit_between"] = True
    test.run()
    assert not test.exception
    first, second = map(int, test.markdown[0].value.split())
    assert second == first  # the commit came while the run drew: same version, same answer
    test.run()
    again, after = map(int, test.markdown[0].value.split())
    assert again == after > first  # the next run pinned the store as it is now


def test_figures_are_built_once_per_answer(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``drawn`` builds a figure once per answer (and arguments), again when the store changes."""
    from conflictlens.dashboard.data import drawn

    built: list[tuple[int, str]] = []

    def count(totals: pl.DataFrame, label: str) -> dict[str, object]:
        built.append((int(totals["conflicts"][0]), label))
        return {"label": label}

    db = tmp_path / "t.duckdb"
    for seed in (1, 2):
        write_log(tmp_path / f"{seed}.log", 2000, style="nginx-combined", seed=seed)
    assert run_cli("ingest", "--db", db, tmp_path / "1.log").exit_code == 0
    monkeypatch.setenv("CONFLICTLENS_DB", str(db))
    first = drawn(count, "totals", None, None, "a")
    assert drawn(count, "totals", None, None, "a") is first  # built once, then shared
    assert drawn(count, "totals", None, None, "b") == {"label": "b"}
    assert [label for _, label in built] == ["a", "b"]
    assert run_cli("ingest", "--db", db, tmp_path / "2.log").exit_code == 0
    assert drawn(count, "totals", None, None, "a") is not first
    assert len(built) == 3 and built[2][0] > built[0][0]  # from the new answer


def test_a_heatmap_never_has_more_columns_than_it_can_show() -> None:
    """A day of 5-minute buckets (288) is drawn in 15-minute columns (96), summed."""
    start = dt.datetime(2026, 11, 19)
    timeline = pl.DataFrame(
        {
            "bucket": [start + dt.timedelta(minutes=5 * i) for i in range(288)],
            "method": ["PUT"] * 288,
            "route": ["/api/orders/{id}"] * 288,
            "conflicts": [1] * 288,
            "bucket_seconds": [300] * 288,
        }
    )
    heat = route_heatmap(timeline).data[0]
    assert len(heat.x) == 96 and heat.z.sum() == 288 and set(heat.z.ravel()) == {3}


def test_a_sparkline_never_has_more_points_than_its_cell_can_show() -> None:
    """The grid formats every point of a sparkline on each draw: a day of 5-minute buckets
    (288) becomes at most SPARKLINE_POINTS wider buckets, with the same total."""
    start = dt.datetime(2026, 11, 19)
    timeline = pl.DataFrame(
        {
            "bucket": [start + dt.timedelta(minutes=5 * i) for i in range(288)],
            "route": ["/api/orders/{id}"] * 288,
            "conflicts": [1] * 288,
            "bucket_seconds": [300] * 288,
        }
    )
    [trend] = sparklines(timeline, ["route"])["trend"].to_list()
    assert 0 < len(trend) <= SPARKLINE_POINTS and sum(trend) == 288


def test_a_heatmap_has_margins_fitting_its_labels_and_cuts_long_ones() -> None:
    """Margins are set from the labels (so the browser lays the figure out once); a route
    longer than HEATMAP_LABEL_CHARS is cut on the axis (its method and its end kept) and kept
    whole for the hover."""
    long_route = "/api/v1/" + "very-long-segment/" * 5 + "{id}"
    timeline = pl.DataFrame(
        {
            "bucket": [dt.datetime(2026, 11, 19)] * 2,
            "method": ["PUT", "GET"],
            "route": [long_route, "/a&b"],
            "conflicts": [3, 1],
        }
    )
    figure = route_heatmap(timeline)
    layout = figure.layout
    assert layout.margin.autoexpand is False
    assert layout.xaxis.automargin is False and layout.yaxis.automargin is False
    full = f"PUT {long_route}"
    assert list(layout.yaxis.tickvals) == list(figure.data[0].y)
    assert full in layout.yaxis.tickvals
    cut = [t for t in layout.yaxis.ticktext if "…" in t]
    assert cut == ["PUT …" + long_route[-(HEATMAP_LABEL_CHARS - 5) :]]  # its method and end
    assert "GET /a&amp;b" in layout.yaxis.ticktext  # still escaped
    assert layout.margin.l == 12 + CHAR_PX * HEATMAP_LABEL_CHARS


def test_the_overview_chart_keeps_its_width_for_the_data() -> None:
    """The legend sits below the plot (a phone's chart is not squeezed by it), in a bottom
    margin with a row for each line the entries take at a phone's width; the ratio axis is
    a percentage not synced to the conflicts axis (round ticks), and the hover shows every
    series at that time."""
    codes = ["VERSION_MISMATCH", "PAYMENT_ALREADY_CAPTURED"]
    timeline = pl.DataFrame(
        {
            "bucket": [dt.datetime(2026, 11, 19)] * 2,
            "service": ["api"] * 2,
            "method": ["PUT"] * 2,
            "route": ["/a", "/b"],
            "error_code": codes,
            "conflicts": [3, 1],
            "requests": [10, 10],
        }
    )
    layout = conflicts_over_time(timeline, "error_code").layout
    assert layout.margin.autoexpand is False and layout.legend.orientation == "h"
    assert layout.legend.yref == "container" and layout.legend.y == 0
    assert layout.margin.r <= 80 and layout.margin.b >= 60 + 22 * 2  # two rows on a phone
    assert layout.yaxis2.tickformat == ".0%" and layout.yaxis2.tickmode == "auto"
    assert layout.hovermode == "x unified"


def test_top_hot_spots_are_bars_that_keep_clusters_apart_and_escape_labels() -> None:
    """Two clusters with the same label (they differ by service) stay two bars; labels from
    logs are escaped; the share of requests and "new" are written on the bars."""
    spots = pl.DataFrame(
        {
            "service": ["a", "b"],
            "method": ["PUT", "PUT"],
            "route": ["/x/<script>", "/x/<script>"],
            "error_code": ["CONFLICT", "CONFLICT"],
            "conflicts": [5, 3],
            "requests": [10, 10],
            "ratio": [0.5, 0.3],
            "score": [2.0, None],
            "new": [True, False],
        }
    )
    figure = hot_spot_bars(spots)
    bar = figure.data[0]
    assert list(bar.x) == [5, 3] and len(set(bar.y)) == 2
    assert bar.y[0] > bar.y[1]  # the first cluster at the top
    names = [a.text for a in figure.layout.annotations]  # each bar's name above it
    assert len(names) == 2 and all("<script>" not in t and "&lt;script&gt;" in t for t in names)
    assert list(bar.text) == ["50.0% of requests · new", "30.0% of requests"]
