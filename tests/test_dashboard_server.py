"""The dashboard's server (dashboard/server.py): Streamlit's page, told where its server is.

The page is changed only where it is a whole HTML page (plain or gzipped); scripts, health
checks and the rest pass unchanged. Tested on the real server on loopback; that the browser
then asks its server once, at the right address, is in test_dashboard_browser.py.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit

from conflictlens.dashboard.server import BASE_URL_SCRIPT, with_base_url
from conflictlens.sample_logs.generator import write_log
from tests.test_dashboard_browser import _wait_for, running_dashboard
from tests.test_serve import CLI, free_port, run

STREAMLIT_PAGE = Path(streamlit.__file__).parent / "static" / "index.html"
SCRIPT = BASE_URL_SCRIPT.encode()

pytestmark = pytest.mark.slow


def test_the_script_comes_first_in_the_head_before_streamlits_own() -> None:
    page = with_base_url(STREAMLIT_PAGE.read_bytes())
    assert page.count(SCRIPT) == 1
    assert page.index(b"<head>") < page.index(SCRIPT) < page.index(b'<script type="module"')
    assert page.replace(SCRIPT, b"") == STREAMLIT_PAGE.read_bytes()


def test_a_page_without_a_head_is_left_alone() -> None:
    assert with_base_url(b"<p>no head</p>") == b"<p>no head</p>"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def test_stopping_the_dashboard_command_stops_streamlit(tmp_path: Path) -> None:
    """`conflictlens dashboard` becomes Streamlit: a stop signal leaves nothing on the port."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "dashboard", "--db", str(tmp_path / "none.duckdb"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    health = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        _wait_for(health)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert not _answers(health)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dashboard-server")
    log = folder / "access.log"
    write_log(log, 500, style="nginx-extended", seed=3)
    db = folder / "t.duckdb"
    assert run("ingest", "--db", str(db), str(log)).returncode == 0
    with running_dashboard(db) as url:
        yield url


def _get(url: str, gzipped: bool = False) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzipped else {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return {k.lower(): v for k, v in answer.headers.items()}, answer.read()


@pytest.mark.parametrize("path", ["/", "/hotspots", "/alerts?range=6h"])
def test_every_page_address_serves_the_page_with_the_script(dashboard: str, path: str) -> None:
    headers, page = _get(dashboard + path)
    assert page.count(SCRIPT) == 1
    assert int(headers["content-length"]) == len(page)
    assert "etag" not in headers  # a cache must not pair this page with the file's tag


def test_a_gzipped_page_carries_the_script_too(dashboard: str) -> None:
    headers, body = _get(dashboard + "/hotspots", gzipped=True)
    assert headers.get("content-encoding") == "gzip"  # Streamlit compresses a page's address
    assert int(headers["content-length"]) == len(body)
    assert gzip.decompress(body).count(SCRIPT) == 1


def test_everything_else_passes_unchanged(dashboard: str) -> None:
    _, health = _get(dashboard + "/_stcore/health")
    assert health == b"ok"
    _, page = _get(dashboard + "/")
    script = page.split(b'<script type="module" crossorigin src="./')[1].split(b'"')[0]
    _, bundle = _get(f"{dashboard}/{script.decode()}", gzipped=True)
    on_disk = STREAMLIT_PAGE.parent / script.decode()
    assert bundle == on_disk.read_bytes()


def test_the_pages_code_is_imported_while_the_server_starts() -> None:
    """The server's start (its lifespan) imports every module the pages draw with, so that
    no first visit pays for them; the entry points are not among them. In a fresh
    interpreter: nothing imported them before."""
    code = """
import asyncio, sys
from conflictlens.dashboard import server
before = {m for m in server.PAGE_CODE if m in sys.modules}

async def start():
    async with server._page_code_loaded(server.app):
        pass

asyncio.run(start())
print(sorted(before), all(m in sys.modules for m in server.PAGE_CODE), len(server.PAGE_CODE))
"""
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split("\n")[0]
    assert answer == "[] True 16", answer  # dashboard/*.py but __init__, app, server
