"""The reports API (/api/reports) of `conflictlens serve` replicas on a ClickHouse store
(chDB behind tests/chdb_http.py): a report made on demand on one replica is built by
ClickHouse, archived once in ``report_archive`` and listed and served by every replica, its
files rendered from the archived JSON; the counts are the generated log's truth.

Scheduled reports (built and delivered by conflictlens.replicated_reports) are listed with
their files and each channel's delivery, as the DuckDB archive's index shows them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conflictlens.analysis.reports.archive import ArchivedReport
from conflictlens.analysis.reports.config import ReportsConfig, ScheduleConfig
from conflictlens.analysis.reports.render import render
from conflictlens.cli import cli
from conflictlens.replicated_report_index import ReportIndex
from conflictlens.replicated_reports import ReplicatedReports, file_name
from conflictlens.store.clickhouse.engine import ClickHouseEngine
from conflictlens.store.clickhouse.state import Claims
from tests.chdb_http import StoreServer
from tests.test_serve_replicas import (
    DB,
    _copy,
    _planted,
    config_text,
    planted_today,
    replicas_running,
)
from tests.test_serve_replicas import store as store

pytestmark = pytest.mark.slow


def _call(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes, Any]:
    """(status, body, headers) of a GET, or a POST of ``body`` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=180) as answer:
            return answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers


def _rows(client: Any, report_id: str) -> int:
    """Rows stored under the id, before any merge (no FINAL): what deduplication left."""
    found = client.query(
        "SELECT count() FROM report_archive WHERE id = {id:String}", parameters={"id": report_id}
    ).result_rows
    return int(found[0][0])


def test_replicas_make_list_and_serve_a_report_on_demand_once(
    tmp_path: Path, store: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    until = dt.datetime.now(dt.UTC).replace(tzinfo=None, second=0, microsecond=0)
    truth = _planted(tmp_path, until)
    config = tmp_path / "conflictlens.toml"
    config.write_text(config_text(store.url, "http://127.0.0.1:9/none", 10**9))
    assert CliRunner().invoke(cli, ["clickhouse", "init", "--config", str(config)]).exit_code == 0
    client = store.client(DB)
    _copy(truth["db"], client)
    with replicas_running(config, tmp_path) as ports:
        a, b = ports["a"], ports["b"]
        assert json.loads(_call(b, "/api/reports")[1])["reports"] == []
        since = until - dt.timedelta(minutes=1)
        asked = {"period": f"{since.isoformat()}..{until.isoformat()}", "tz": "UTC"}
        asked["formats"] = ["html", "csv"]
        # The same request on both replicas at once: both build, one row is stored.
        answers: dict[int, tuple[int, bytes, Any]] = {}
        start = threading.Barrier(2)

        def post(port: int) -> None:
            start.wait()
            answers[port] = _call(port, "/api/reports", asked)

        threads = [threading.Thread(target=post, args=(p,)) for p in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        assert [answers[p][0] for p in (a, b)] == [201, 201], answers
        entry = json.loads(answers[a][1])
        assert json.loads(answers[b][1]) == entry  # both answer the stored row
        assert _rows(client, entry["id"]) == 1
        assert entry["schedule"] is None and entry["deliveries"] == []
        assert [f["format"] for f in entry["files"]] == ["html", "csv", "json"]
        # Replica B lists it; its files are the archived report rendered, on either replica.
        index = json.loads(_call(b, "/api/reports")[1])
        assert index["reports"] == [entry]
        names = {f["format"]: f["name"] for f in entry["files"]}
        status, data, headers = _call(b, f"/api/reports/files/{names['json']}")
        assert status == 200 and headers["Content-Type"] == "application/json"
        report = json.loads(data)
        assert (report["conflicts"], report["requests"]) == (truth["conflicts"], truth["lines"])
        media = {"html": "text/html", "csv": "text/csv", "json": "application/json"}
        for fmt, name in names.items():
            status, data, headers = _call(a, f"/api/reports/files/{name}")
            assert status == 200 and data == render(report, fmt), fmt
            assert headers["Content-Type"].split(";")[0] == media[fmt]
            assert headers["X-Content-Type-Options"] == "nosniff"
            listed = next(f for f in entry["files"] if f["format"] == fmt)
            assert listed["size"] == len(data)
        # Asked again (a retry, another replica): the archived entry; still one row.
        status, again, _ = _call(b, "/api/reports", asked)
        assert status == 201 and json.loads(again) == entry
        assert _rows(client, entry["id"]) == 1
        # Refusals: a name the index does not list, a bad period (one line, as on DuckDB).
        for name in ("conflictlens-none.html", names["html"] + "x", "..%2Findex.json"):
            assert _call(a, f"/api/reports/files/{name}")[0] == 404, name
        status, body, _ = _call(a, "/api/reports", {"period": "last-year"})
        detail = json.loads(body)["detail"]
        assert status == 400 and "invalid period 'last-year'" in detail and "\n" not in detail
        status, body, _ = _call(a, "/api/reports", {"period": "yesterday", "formats": ["pdf"]})
        assert status == 400 and "unknown report format" in json.loads(body)["detail"]
        # The dashboard's Reports page, started by replica A, lists and opens it through A.
        monkeypatch.setenv("CONFLICTLENS_DB", str(tmp_path / "a.duckdb"))
        monkeypatch.setenv("CONFLICTLENS_CONFIG", str(config))
        from conflictlens.dashboard.reports_data import (
            archived_reports,
            generate_report,
            report_file,
        )

        assert generate_report(asked["period"], "UTC", ["html"]) == entry  # "Generate now"

        (shown,) = archived_reports()
        assert (shown["id"], shown["summary"], shown["size"]) == (
            entry["id"],
            entry["summary"],
            entry["size"],
        )
        assert report_file(names["html"]) == render(report, "html")


def test_the_index_shows_a_scheduled_report_and_its_deliveries(
    tmp_path: Path, store: StoreServer
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    truth, _ = planted_today(tmp_path, store)
    schedule = ScheduleConfig(schedule="* * * * *", formats=("html",), channels=("mail", "hook"))
    settings = ReportsConfig(directory=tmp_path / "sent", nightly=schedule)
    written: dict[str, ArchivedReport] = {}

    def deliver(channel: str, archived: ArchivedReport) -> None:
        written[channel] = archived
        if channel == "hook":
            raise OSError("hook refused: HTTP 500")

    replica = ReplicatedReports(
        ClickHouseEngine(store.client(DB), DB),
        store.client(DB),
        Claims(store.client(DB), "a"),
        lambda: settings,
        deliver,
    )
    (report_id,) = replica.run_due(now)
    (entry,) = ReportIndex(store.client(DB), lambda: settings).load()["reports"]
    assert (entry["id"], entry["schedule"]) == (report_id, "nightly")
    assert entry["summary"].startswith(f"{entry['period']['label']}: {truth['conflicts']:,}")
    names = [f["name"] for f in entry["files"]]
    assert names == [file_name(report_id, "html"), file_name(report_id, "json")]
    # The file a delivery attached (and its link names) is the one the index lists.
    sent = written["mail"].files["html"]
    assert sent.name == names[0] and sent.stat().st_size == entry["files"][0]["size"]
    mail, hook = entry["deliveries"]
    assert (mail["channel"], mail["status"], mail["attempts"]) == ("mail", "sent", 1)
    assert mail["delivered"] is not None and mail["error"] is None
    assert (hook["channel"], hook["status"], hook["attempts"]) == ("hook", "retrying", 1)
    assert hook["error"] == "hook refused: HTTP 500" and hook["delivered"] is None
    retry = dt.datetime.fromisoformat(hook["next_attempt"])
    assert retry == now + dt.timedelta(seconds=15)  # replicated_alerts.backoff(1)
