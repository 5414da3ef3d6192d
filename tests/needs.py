"""What a test needs from the machine: a program (openssl, logrotate, Chromium and its driver,
setpriv), the peer fixtures in ../shared/fixtures, an unprivileged user.

Missing on a developer's machine, a need is a skip that says how to get it. In CI (``CI=true``),
where ``make test`` installs every system package first, it is a failure: a suite that shrinks
silently when an install step breaks would pass without testing anything.

Each program is looked up once, here; a test uses the path it was found at, so the condition
that decides to run the test and the program the test runs cannot disagree.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

# Debian keeps logrotate in /usr/sbin, which a non-root PATH often lacks.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", os.defpath), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)
INSTALL = "make system-deps (scripts/install-system-deps.sh) installs it"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def program(name: str) -> str | None:
    """The path of an installed program, or None."""
    return shutil.which(name, path=_SEARCH_PATH)


OPENSSL = program("openssl")
LOGROTATE = program("logrotate")
CHROMIUM = program("chromium")
CHROMEDRIVER = program("chromedriver")
SETPRIV = program("setpriv")


def missing(reason: str) -> NoReturn:
    """This test cannot run here: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure)", pytrace=False)
    pytest.skip(reason)


def require(present: object, reason: str) -> None:
    """Call ``missing(reason)`` unless ``present`` is true."""
    if not present:
        missing(reason)


def needs(present: object, reason: str) -> pytest.MarkDecorator:
    """The same as a mark on a test, a module (``pytestmark``) or a parametrize case: checked
    when the test is set up, by ``pytest_runtest_setup`` in conftest.py."""
    return pytest.mark.needs(bool(present), reason)


def check_needs(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        require(*mark.args)


needs_browser = needs(
    CHROMIUM and CHROMEDRIVER, f"needs Debian's chromium and chromium-driver ({INSTALL})"
)
needs_logrotate = needs(LOGROTATE, f"needs logrotate ({INSTALL})")


def chrome(*arguments: str, logging: bool = False) -> object:
    """Debian's headless Chromium through its chromedriver, at the paths found above."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require(CHROMIUM and CHROMEDRIVER, f"needs chromium and chromium-driver ({INSTALL})")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *arguments):
        options.add_argument(argument)
    if logging:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
