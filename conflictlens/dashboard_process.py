"""Starting the Streamlit dashboard as a child process (``conflictlens dashboard`` and serve).

The dashboard finds its data through the environment: the database path (and so serve, by
its discovery file beside it) and serve's token. Streamlit gets a fixed address, no browser of
its own, no usage statistics and no file watcher. Two runner defaults are turned off for
speed, each measured on a page load:

- ``postScriptGC``: a full garbage collection after every script run (about 0.1 s here) holds
  the GIL while the page's last messages wait to be sent;
- ``magicEnabled``: the pages write everything explicitly, and magic rewrites their syntax
  tree again whenever the last browser tab closes (Streamlit then drops its compiled scripts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conflictlens import dashboard

# The server module: Streamlit with the base-URL script (see dashboard/server.py); the pages
# are in dashboard/app.py.
SERVER = Path(dashboard.__file__).parent / "server.py"
DEFAULT_PORT = 8501


def streamlit_command(host: str, port: int, script: Path = SERVER) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.enableXsrfProtection",
        "true",
        "--server.enableCORS",
        "true",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--runner.postScriptGC",
        "false",
        "--runner.magicEnabled",
        "false",
    ]


def dashboard_env(
    db: Path, token: str | None, password_hash: str | None, config: Path | None = None
) -> dict[str, str]:
    """The child's environment: the store, serve's token, the login's hash, and the config
    file (the Alerts page edits its rules, the Reports page reads its [reports] table)."""
    env = {**os.environ, "CONFLICTLENS_DB": str(db.resolve())}
    if config is not None:
        env["CONFLICTLENS_CONFIG"] = str(config.resolve())
    if token:
        env["CONFLICTLENS_TOKEN"] = token
    if password_hash:
        env["CONFLICTLENS_DASHBOARD_PASSWORD_HASH"] = password_hash
    return env


def missing_dashboard_packages() -> list[str]:
    """The packages of the [dashboard] extra this installation lacks (a core install has
    neither: it ingests, tails and serves the API)."""
    import importlib.util

    return [name for name in ("streamlit", "plotly") if importlib.util.find_spec(name) is None]


def start_dashboard(
    db: Path,
    host: str,
    port: int,
    *,
    token: str | None,
    password_hash: str | None,
    config: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The dashboard running in the background; stop it with stop_dashboard."""
    return subprocess.Popen(
        streamlit_command(host, port),
        env=dashboard_env(db, token, password_hash, config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_dashboard(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
