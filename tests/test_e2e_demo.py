"""End to end: `make demo` in a fresh clone of this repository, until the dashboard shows
the deploy spike that the bad-day sample planted.

The clone reuses this checkout's .venv through a symlink (no pip install) and its compiled
extension; its own code comes first on PYTHONPATH. The commands are the Makefile's own, as
`make -n demo` prints them at full size, with one change: serve and its dashboard get free
ports instead of 8409 and 8501, which the Makefile does not let a variable set."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import ROOT, ServeProcess, chromium, grid_rows, open_page, wait_for

pytestmark = pytest.mark.slow

VENV_TARGET = ".venv/bin/conflictlens"  # the Makefile's install step, reused here
SERVE = f"{VENV_TARGET} serve "
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


def fresh_clone(folder: Path) -> Path:
    """A clone of this checkout's HEAD, with its .venv and its built extensions."""
    clone = folder / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout
    cloned = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout
    assert cloned == head
    (clone / ".venv").symlink_to(ROOT / ".venv")
    for built in _built_extensions():
        shutil.copy2(built, clone / built.relative_to(ROOT))
    return clone


def _built_extensions() -> list[Path]:
    """The C extensions `pip install -e` built beside their sources (git ignores them)."""
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-d", "--name-only", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    found = [p for top in tracked for p in (ROOT / top).rglob("*.so")]
    assert found, "no built extension beside the sources: is the checkout installed?"
    return found


def demo_recipe(clone: Path, env: dict[str, str]) -> tuple[str, str]:
    """The demo target's commands as make would run them, without the install step: all
    but serve, and serve's command."""
    printed = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", VENV_TARGET, "demo"],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    *before, last = printed.rstrip("\n").split("\n")
    assert last.startswith(SERVE), f"the demo no longer ends with serve: {last!r}"
    return "\n".join(before) + "\n", last


def demo_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return env | {"PYTHONPATH": str(clone)}  # the clone's code, not this checkout's


def imported_from(clone: Path, env: dict[str, str]) -> Path:
    """Where the demo's Python finds conflictlens."""
    found = subprocess.run(
        [
            str(clone / ".venv" / "bin" / "python"),
            "-c",
            "import conflictlens; print(conflictlens.__file__)",
        ],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return Path(found)


def spike_incident(incidents: list[dict[str, Any]], spike: dict[str, Any]) -> dict[str, Any]:
    """The incident that holds both spiked routes, with their error codes."""
    wanted = {(r["method"], r["route"], r["error_code"]) for r in spike["routes"]}
    for incident in incidents:
        clusters = {(c["method"], c["route"], c["error_code"]) for c in incident["clusters"]}
        if wanted <= clusters:
            return incident
    raise AssertionError(f"no incident holds {sorted(wanted)}: {incidents}")


def near(shown: str, planted: str, minutes: int) -> bool:
    """Whether two times are at most ``minutes`` apart (incidents are 5-minute buckets)."""
    first, second = (dt.datetime.fromisoformat(t).replace(tzinfo=None) for t in (shown, planted))
    return abs(first - second) <= dt.timedelta(minutes=minutes)


def test_make_demo_in_a_fresh_clone_shows_the_planted_deploy_spike(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path)
    env = demo_env(clone)
    assert imported_from(clone, env).is_relative_to(clone)
    setup, serve_command = demo_recipe(clone, env)
    made = subprocess.run(
        ["sh", "-e", "-c", setup], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert made.returncode == 0, made.stderr
    demo = clone / "demo"
    truth = json.loads((demo / "access.log.truth.json").read_text(encoding="utf-8"))
    spike = truth["planted"].get("deploy_spike")
    assert spike, f"the demo's sample planted no deploy spike: {truth['planted']}"
    for route in spike["routes"]:  # the incidents `make demo` prints
        assert route["route"] in made.stdout
    serve = ServeProcess(
        demo / "conflictlens.duckdb",
        demo / "conflictlens.toml",
        command=["sh", "-c", f'exec {serve_command} "$@"', "make-demo"],
        cwd=clone,
        env=env,
    )
    try:
        status, incidents = serve.get("/api/queries/incidents")
        with chromium() as driver:
            page = f"{serve.dashboard_url}/hotspots?section=Incidents"
            open_page(driver, page, "Hot spots", ARTIFACTS / "demo-incidents.png")
            columns = ("start", "end", "conflicts", "clusters")
            wait_for(lambda: grid_rows(driver, *columns) is not None, 30, "the incidents table")
            shown = grid_rows(driver, *columns) or []
    finally:
        serve.stop()
    assert status == 200, incidents
    incident = spike_incident(incidents, spike)
    assert near(incident["start"], spike["start"], 5) and near(incident["end"], spike["end"], 10)
    on_page = [
        row
        for row in shown
        if all(
            f"{r['method']} {r['route']} {r['error_code']}" in row["clusters"]
            for r in spike["routes"]
        )
    ]
    assert len(on_page) == 1, shown
    assert near(on_page[0]["start"], spike["start"], 5)
    assert near(on_page[0]["end"], spike["end"], 10)
    assert int(on_page[0]["conflicts"]) == incident["conflicts"]
    shutil.rmtree(clone)  # 300 MB of log and its store; kept when the test fails
