"""Shared fixtures: a clean environment for every test, a store path, the CLI, generated logs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conflictlens.cli import cli
from conflictlens.sample_logs.generator import write_log
from tests.needs import check_needs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(present, reason): a program or fixture the test needs (tests/needs.py): "
        "a skip when missing, a failure in CI",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_needs(item)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray $CONFLICTLENS_DB/$CONFLICTLENS_CONFIG, ./conflictlens.toml or ./conflictlens.duckdb."""
    for name in ("CONFLICTLENS_DB", "CONFLICTLENS_CONFIG", "CONFLICTLENS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "t.duckdb"


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli() -> RunCli:
    """Invoke ``conflictlens`` in-process; stdout and stderr are separate (click >= 8.2)."""
    runner = CliRunner()

    def run(*args: Any, input: bytes | str | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], input=input)

    return run


GeneratedLog = tuple[Path, dict[str, Any]]


def _generated(
    tmp_path_factory: pytest.TempPathFactory, style: str, lines: int, seed: int
) -> GeneratedLog:
    """Write a log; its ground truth is read back from the JSON file written beside it."""
    folder = tmp_path_factory.mktemp(style)
    path = folder / "access.log"
    returned = write_log(path, lines, style=style, seed=seed)
    truth = json.loads(Path(f"{path}.truth.json").read_text(encoding="utf-8"))
    assert truth["lines"] == returned["lines"] == lines
    assert truth["conflicts"] == returned["conflicts"] > 0
    assert truth["conflicts_by_cluster"] == returned["conflicts_by_cluster"]
    assert truth["requests_by_route"] == returned["requests_by_route"]
    return path, truth


@pytest.fixture(scope="session")
def extended_log(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLog:
    """20,000 nginx-extended lines (with error codes) and their ground truth. Read-only: copy
    it before changing it."""
    return _generated(tmp_path_factory, "nginx-extended", 20_000, 3)


@pytest.fixture(scope="session")
def combined_log(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLog:
    """20,000 nginx-combined lines and their ground truth. Read-only: copy it before changing it."""
    return _generated(tmp_path_factory, "nginx-combined", 20_000, 5)


def hot_document_store(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The dashboard tests' store: 20,000 lines over 6 hours with a planted hot document,
    imported; and the generator's ground truth."""
    log = folder / "access.log"
    write_log(log, 20_000, style="nginx-extended", seed=5, hours=6, scenario="hot-document")
    db = folder / "t.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(log)])
    assert result.exit_code == 0, result.output
    truth: dict[str, Any] = json.loads(Path(f"{log}.truth.json").read_text(encoding="utf-8"))
    return db, truth
