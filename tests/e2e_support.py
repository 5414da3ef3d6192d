"""Helpers of the end-to-end tests (tests/test_e2e_*.py): `conflictlens serve` with its
dashboard as a real process, a real SMTP server, headless Chromium and its reading of
Streamlit's tables, and log writers that count what they wrote.

Everything runs on loopback ports picked free; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.helpers import clf_line, clf_ts
from tests.test_dashboard_browser import _settled, _wait_for
from tests.test_notify import Receiver
from tests.test_notify_email import Inbox
from tests.test_serve import CLI, free_port
from tests.test_tail import seq_lines, wait_for

ROOT = Path(__file__).resolve().parents[1]

__all__ = [  # the helpers of other test modules that the e2e tests use too
    "CLI",
    "Receiver",
    "free_port",
    "wait_for",
]


# -- serve with its dashboard --------------------------------------------------------------


class ServeProcess:
    """`conflictlens serve` (with its dashboard unless ``dashboard=False``) on free loopback
    ports. Its output goes to a file, not a pipe: a pipe nobody reads would stop serve once
    its buffer is full. ``log()`` gives that output for a failure message."""

    def __init__(
        self,
        db: Path,
        config: Path,
        *,
        dashboard: bool = True,
        command: list[str] | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        dashboard_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.dashboard_port = dashboard_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"
        self.output = config.parent / f"serve-{self.port}.log"
        where = ["--port", str(self.port)]
        where += ["--dashboard-port", str(self.dashboard_port)] if dashboard else ["--no-dashboard"]
        base = command or [*CLI, "serve", "--config", str(config), "--db", str(db)]
        with self.output.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*base, *where], stdout=sink, stderr=subprocess.STDOUT, cwd=cwd, env=env
            )
        try:
            self._wait_until_up(dashboard)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, dashboard: bool) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, f"serve exited:\n{self.log()}"
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=2).close()
                return True
            except OSError:
                return False

        wait_for(answers, 60, f"serve at {self.url}")
        if dashboard:
            _wait_for(self.dashboard_url + "/_stcore/health", 60)

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """The status and the JSON body of ``GET path``."""
        return self._ask(urllib.request.Request(self.url + path), token)

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._ask(request, token)

    @staticmethod
    def _ask(request: urllib.request.Request, token: str | None) -> tuple[int, Any]:
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")

    def stored_lines(self) -> int:
        """Lines serve has stored from its sources, by its own status."""
        status, info = self.get("/api/status")
        assert status == 200, info
        return sum(int(s["lines"]) for s in info["sources"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a serve that ignores SIGTERM is a failure
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log()}") from None


# -- SMTP -------------------------------------------------------------------------------------


class SmtpServer:
    """aiosmtpd on a free loopback port, plain SMTP without login (the channel's
    ``security = "none"``); every message lands in ``inbox``."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()

    def channel(self) -> str:
        """The TOML of an ``[alerts.channels.NAME]`` table's keys for this server."""
        return (
            'type = "email"\nhost = "127.0.0.1"\n'
            f'port = {self.port}\nsecurity = "none"\n'
            'from = "conflictlens <alerts@example.org>"\nto = ["ops@example.org"]\n'
        )


def hook_and_mail(receiver: Receiver, smtp: SmtpServer) -> str:
    """The config's two channels the e2e tests deliver to: a webhook ``hook`` and mail
    ``mail``."""
    return (
        f'[alerts.channels.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
        f"[alerts.channels.mail]\n{smtp.channel()}"
    )


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


# -- headless Chromium --------------------------------------------------------------------


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through its chromedriver. A missing browser is a failure,
    not a skip: `make test` installs it (scripts/install-system-deps.sh)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "chromium and chromium-driver are needed (make system-deps)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def open_page(driver: Any, url: str, title: str, artifact: Path | None = None) -> None:
    """Open ``url`` and wait until Streamlit has drawn the page titled ``title`` and stopped
    running its script; no exception or error box may be on it."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    _settled(driver, title, 60)
    if artifact is not None:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(artifact))
    for box in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        shown = driver.find_elements(By.CSS_SELECTOR, box)
        assert not shown, f"{url}: {shown[0].text}"


# Streamlit draws a table on a canvas (glide-data-grid) and keeps an accessible copy of the
# visible rows in a <table role="grid"> inside it: the text a screen reader gets. Tables carry
# no key in the page, so a table is known by its columns.
_GRID_TABLES = """
return [...document.querySelectorAll('[data-testid="stDataFrame"] table[role="grid"]')].map(grid => {
    const heads = [...grid.querySelectorAll('thead th')].map(th => th.textContent);
    const rows = [...grid.querySelectorAll('tbody tr')].map(tr =>
        Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [heads[i], td.textContent])));
    return {heads: heads, rows: rows};
});
"""


def grid_rows(driver: Any, *columns: str) -> list[dict[str, str]] | None:
    """The rows of the first table drawn with all of ``columns`` (None while none is)."""
    for table in driver.execute_script(_GRID_TABLES):
        if set(columns) <= set(table["heads"]):
            rows: list[dict[str, str]] = table["rows"]
            return rows
    return None


def metric_value(driver: Any, label: str) -> str:
    """The value shown by the ``st.metric`` labelled ``label``."""
    from selenium.webdriver.common.by import By

    for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        shown = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
        if shown.strip() == label:
            value: str = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
            return value
    raise AssertionError(f"no metric labelled {label!r} on the page")


# -- log lines ------------------------------------------------------------------------------


def minute_lines(
    path: str, status: int, count: int, minutes_ago: range, now: dt.datetime | None = None
) -> list[bytes]:
    """``count`` PUT lines on ``path`` with ``status`` in each of the whole minutes
    ``minutes_ago`` before the current one (5 s into the minute): the alert engine counts
    whole minutes only."""
    start = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    lines = []
    for back in minutes_ago:
        moment = start - dt.timedelta(minutes=back) + dt.timedelta(seconds=5)
        lines += [clf_line(path, status=status, ts=clf_ts(moment)) for _ in range(count)]
    return lines


def append_lines(log: Path, lines: list[bytes]) -> None:
    with log.open("ab") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))


class NumberedWriter(threading.Thread):
    """Appends numbered lines (tests.test_tail's ``seq_line``: tag and number in the path) to
    one log at ``rate`` lines a second, and opens the path again when it names another file,
    as a web server does after rotation. ``paused()`` holds the writer between two bursts."""

    def __init__(self, path: Path, tag: str, *, rate: int = 1000, burst: int = 20) -> None:
        super().__init__(daemon=True, name=f"writer-{tag}")
        self.path, self.tag, self.rate, self.burst = path, tag, rate, burst
        self.written = 0
        self.reopened = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _write(self) -> None:
        handle = self.path.open("ab", buffering=0)
        started = time.monotonic()
        try:
            while not self._halt.is_set():
                with self._lock:
                    # Looked at before each burst: after a paused rotation the old file may
                    # be compressed and gone already.
                    handle = self._reopened(handle)
                    handle.write(
                        seq_lines(self.tag, range(self.written, self.written + self.burst))
                    )
                    self.written += self.burst
                ahead = self.written / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            handle.close()

    def _reopened(self, handle: Any) -> Any:
        try:
            if os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            return handle  # renamed, not created again yet: keep writing to the old file
        handle.close()
        self.reopened += 1
        return self.path.open("ab", buffering=0)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            yield

    def finish(self) -> int:
        self._halt.set()
        self.join(10)
        assert self.error is None, self.error
        return self.written
