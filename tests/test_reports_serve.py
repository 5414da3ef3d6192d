"""Reports made on demand while `conflictlens serve` owns the store: serve's /api/reports
builds and archives them on its own connection, lists the archive and hands out only the
files its index names; the dashboard's "Generate now" goes through it (opening the file
itself would fail), and ``conflictlens report --archive`` files a report the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conflictlens.sample_logs.generator import write_log
from tests.helpers import post_json
from tests.test_serve import Serve, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A store of 2026-11-19 (UTC) and a config whose reports go to ``archive``."""
    folder = tmp_path_factory.mktemp("reports-serve")
    log = folder / "access.log"
    write_log(log, 5000, style="nginx-extended", seed=11)
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    config = folder / "conflictlens.toml"
    config.write_text('[reports]\ndirectory = "archive"\n', encoding="utf-8")
    return db, config


def post(server: Serve, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return post_json(server.url + path, body, timeout=120)  # a report is built while it waits


def test_serve_builds_lists_and_hands_out_reports(
    served: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, config = served
    archive = config.parent / "archive"
    server = Serve(db, "--config", str(config))
    try:
        status, body = server.get("/api/reports")
        assert status == 200 and json.loads(body)["reports"] == []
        status, entry = post(
            server, "/api/reports", {"period": "2026-11-19", "tz": "UTC", "formats": ["md"]}
        )
        assert status == 201, entry
        bad_period = post(server, "/api/reports", {"period": "someday"})
        bad_format = post(server, "/api/reports", {"period": "yesterday", "formats": ["pdf"]})
        status, body = server.get("/api/reports")
        listed = json.loads(body)["reports"]
        files = {f["format"]: f["name"] for f in entry["files"]}
        got = server.get(f"/api/reports/files/{files['md']}")
        outside = [
            server.get(f"/api/reports/files/{name}")
            for name in ("index.json", ".lock", "..%2Ft.duckdb", "t.duckdb")
        ]
        # The dashboard's data layer, in this process: serve holds the file, so it must ask.
        monkeypatch.setenv("CONFLICTLENS_DB", str(db))
        monkeypatch.setenv("CONFLICTLENS_CONFIG", str(config))
        from conflictlens.dashboard.reports_data import archived_reports, generate_report

        through = generate_report("2026-11-18", "UTC", ["html"])
        shown = archived_reports()
    finally:
        server.stop()
    assert entry["period"]["label"] == "2026-11-19 (UTC)" and entry["schedule"] is None
    assert files == {"md": "conflictlens-2026-11-19.md", "json": "conflictlens-2026-11-19.json"}
    assert bad_period[0] == 400
    assert bad_period[1]["detail"].startswith("invalid period 'someday'")
    assert "\n" not in bad_period[1]["detail"]
    assert bad_format == (400, {"detail": bad_format[1]["detail"]})
    assert "unknown report format(s) 'pdf'" in bad_format[1]["detail"]
    assert [e["id"] for e in listed] == [entry["id"]]
    assert got == (200, (archive / files["md"]).read_bytes())
    assert [status for status, _ in outside] == [404, 404, 404, 404]
    assert b"in the reports index" in outside[0][1]
    assert through["period"]["label"] == "2026-11-18 (UTC)"
    assert [r["period"] for r in shown] == ["2026-11-19 (UTC)", "2026-11-18 (UTC)"]
    assert (archive / "conflictlens-2026-11-18.html").exists()


def test_report_archive_files_a_report_like_the_scheduler(served: tuple[Path, Path]) -> None:
    db, config = served
    args = ["report", "--db", str(db), "--config", str(config), "--period", "2026-11-17"]
    made = run(*args, "--archive", "--format", "csv")
    refused = run(*args, "--archive", "--out", "r.html")
    assert made.returncode == 0, made.stderr
    archive = config.parent / "archive"
    assert made.stdout.splitlines() == [
        f"wrote {archive / 'conflictlens-2026-11-17.csv'}",
        f"wrote {archive / 'conflictlens-2026-11-17.json'}",
    ]
    assert refused.returncode == 1 and "--archive keeps the report" in refused.stderr
