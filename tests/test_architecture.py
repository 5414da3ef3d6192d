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


# Leaf modules every layer may import (as httpx's _exceptions): they import nothing of the
# project, so no arrow can run back up through them.
LEAVES = {"conflictlens._errors", "conflictlens._settings", "conflictlens._templates"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "conflictlens":  # from conflictlens import store
                names |= {f"conflictlens.{alias.name}" for alias in node.names}
    return names


LAYERS = {"store", "ingest", "analysis", "notify", "dashboard", "sample_logs"}


def layer_of(module: str) -> str:
    """The layer a module belongs to: conflictlens.store.db -> store; conflictlens.cli ->
    conflictlens (the composition layer); duckdb -> duckdb."""
    parts = module.split(".")
    if parts[0] == "conflictlens" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return parts[0]


def imported_packages(path: Path) -> set[str]:
    return {layer_of(name) for name in imported_modules(path) - LEAVES}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_upstream(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_of_the_project(leaf: str) -> None:
    path = ROOT / (leaf.replace(".", "/") + ".py")
    assert not imported_packages(path) & {"conflictlens", *LAYERS}


def test_dashboard_pages_only_lay_out():
    """No SQL, no connection and no store access in a page: they ask dashboard.data."""
    pages = sorted((ROOT / "dashboard" / "app_pages").glob("*.py"))
    assert len(pages) >= 7, "the page files moved: this test must follow them"
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert "SELECT " not in text.upper().replace("SELECTBOX", ""), path.name
        assert not imported_packages(path) & {"store", "analysis", "duckdb"}, path.name
        assert len(text.splitlines()) < 300, f"{path.name} is growing past a page"


def test_no_folder_beside_the_dashboard_turns_on_streamlit_legacy_pages():
    """A ``pages/`` folder beside app.py makes Streamlit run a page's file directly, without
    app.py's login, until a session reaches ``st.navigation`` (see dashboard/app.py)."""
    assert not (ROOT / "dashboard" / "pages").exists()


def test_importing_the_package_changes_nothing_in_the_process() -> None:
    """No import-time side effects: the process's settings are the entry point's to make."""
    import subprocess
    import sys

    # The libraries first: polars sets its allocator's variable when imported (not ours).
    script = (
        "import os, polars, duckdb, numpy, fastapi; before = dict(os.environ); "
        "import conflictlens, conflictlens.cli, conflictlens.api, conflictlens.jobs; "
        "print(dict(os.environ) == before)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert shown.stdout.strip() == "True"


def test_the_version_is_written_once() -> None:
    import conflictlens

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in text and '\nversion = "' not in text
    from importlib.metadata import version

    assert version("conflictlens") == conflictlens.__version__


def test_the_layers_are_imported_only_under_the_conflictlens_namespace() -> None:
    """`import store` would load a second copy of each module beside conflictlens.store (two
    StoreError classes, two schemas): every import names the one installed package."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            LAYERS & {m.split(".")[0] for m in imported_modules(path)}
        )
        for folder in ("conflictlens", *LAYERS, "tests", "bench", "docs")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_wheel_packages_hold_every_layer() -> None:
    for layer in LAYERS:
        link = ROOT / "conflictlens" / layer
        assert link.is_symlink() and link.resolve() == (ROOT / layer).resolve(), layer
