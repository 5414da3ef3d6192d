"""Data flows one way: ingest -> store -> analysis -> API/CLI. No module imports upstream."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level packages it must never import
FORBIDDEN = {
    "store": {"ingest", "analysis", "dashboard", "conflictlens", "streamlit"},
    "ingest": {"analysis", "dashboard", "conflictlens", "streamlit"},
    "analysis": {"ingest", "dashboard", "conflictlens", "notify", "streamlit"},
    "notify": {"ingest", "dashboard", "conflictlens", "streamlit"},
    # The dashboard reads through the catalog and serve's API; it never parses logs.
    "dashboard": {"ingest", "duckdb"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_upstream(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_dashboard_pages_only_lay_out():
    """No SQL, no connection and no store access in a page: they ask dashboard.data."""
    for path in (ROOT / "dashboard" / "pages").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SELECT " not in text.upper().replace("SELECTBOX", ""), path.name
        assert not imported_packages(path) & {"store", "analysis", "duckdb"}, path.name
        assert len(text.splitlines()) < 300, f"{path.name} is growing past a page"
