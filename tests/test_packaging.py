"""The wheel as a gateway node gets it: a core install (no Streamlit, no Plotly) in a fresh
virtual environment ingests a log, answers `clusters`, and serves the API with
`--no-dashboard`; it installs the package conflictlens and nothing generic beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conflictlens.sample_logs.generator import write_log
from tests.test_serve import free_port

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed without extras; its bin folder."""
    folder = tmp_path_factory.mktemp("core")
    wheels = folder / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = wheels.glob("conflictlens-*.whl")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True
    )
    yield venv / "bin"


def test_the_wheel_installs_conflictlens_alone(core: Path) -> None:
    shown = subprocess.run(
        [str(core / "pip"), "show", "-f", "conflictlens"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = shown.split("Files:", 1)[1].split()
    tops = {f.split("/")[0] for f in files if not f.startswith("..")}
    assert tops == {"conflictlens", next(t for t in tops if t.endswith(".dist-info"))}
    assert any(f.startswith("conflictlens/store/") for f in files)
    assert any(f.startswith("conflictlens/analysis/reports/templates/") for f in files)
    installed = subprocess.run(
        [str(core / "pip"), "list", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    # the dashboard and the ClickHouse store are extras: a core install has neither
    assert not names & {"streamlit", "plotly", "clickhouse-connect", "chdb", "chdb-core", "sqlglot"}


def test_a_core_install_ingests_answers_and_serves(core: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    truth = write_log(log, 5_000, style="nginx-combined", seed=3)
    db = tmp_path / "c.duckdb"
    exe = str(core / "conflictlens")
    ingested = subprocess.run(
        [exe, "ingest", "--db", str(db), "--json", str(log)], capture_output=True, text=True
    )
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["conflicts"] == truth["conflicts"]
    clusters = subprocess.run(
        [exe, "clusters", "--db", str(db), "--json"], capture_output=True, text=True, check=True
    )
    assert sum(r["conflicts"] for r in json.loads(clusters.stdout)) == truth["conflicts"]
    refused = subprocess.run([exe, "serve", "--db", str(db)], capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("or pass --no-dashboard")
    # the agent is in the core install; the ClickHouse client it ships with is the extra
    agent = subprocess.run(
        [exe, "agent", "--source", str(log), "--url", "http://127.0.0.1:9", "--state",
         str(tmp_path / "state.duckdb")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert agent.returncode == 1
    assert agent.stderr.strip().splitlines()[-1] == (
        "Error: the ClickHouse store needs clickhouse-connect: "
        "pip install 'conflictlens[clickhouse]'"
    ), agent.stderr
    port = free_port()
    serve = subprocess.Popen(
        [exe, "serve", "--db", str(db), "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/queries/totals"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    totals = json.loads(answer.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        assert totals[0]["conflicts"] == truth["conflicts"]
    finally:
        serve.terminate()
        serve.wait(timeout=20)
