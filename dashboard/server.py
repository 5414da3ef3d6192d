"""The dashboard's web server: Streamlit's own (``st.App``) with one change to the page it serves.

Opened at a page's own address (``/hotspots``, as a shared link or an alert's link is),
Streamlit's page first looks for its server under that address: it asks
``/hotspots/_stcore/health``, gets a 404, waits 100 ms and asks again at ``/``. Measured on
the demo data that retry costs 0.07-0.19 s of every such page load. The page skips it when it
is told where its server is (``window.__streamlit.BACKEND_BASE_URL``, the setting Streamlit
reads for hosting), so every HTML page served here carries one small script that works the
address out from its own: the page's address without the page's name, which also holds behind
a proxy that serves the dashboard under a prefix.

``conflictlens dashboard`` and ``conflictlens serve`` run this file with ``streamlit run``,
which finds the ``app`` below; the pages themselves stay in app.py and app_pages/.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HERE = Path(__file__).parent
PAGE_NAMES = sorted(page.stem for page in (HERE / "app_pages").glob("*.py"))
BASE_URL_SCRIPT = (
    "<script>(() => {"
    f"const pages = {json.dumps(PAGE_NAMES)};"
    'const path = window.location.pathname.replace(/\\/+$/, "");'
    'const last = path.slice(path.lastIndexOf("/") + 1);'
    'const base = pages.includes(last) ? path.slice(0, path.length - last.length) : path + "/";'
    "window.__streamlit = {...window.__streamlit, BACKEND_BASE_URL: window.location.origin + base};"
    "})();</script>"
)
# Dropped from the changed page: a cache must not pair the changed page with the file's tags.
VALIDATORS = {b"content-length", b"etag", b"last-modified"}


def with_base_url(html: bytes) -> bytes:
    """The page with the base-URL script first in its head, before Streamlit's own script."""
    head = html.find(b"<head>")
    if head < 0:
        return html
    at = head + len(b"<head>")
    return html[:at] + BASE_URL_SCRIPT.encode() + html[at:]


class BaseUrlScript:
    """ASGI middleware: adds the base-URL script to every full HTML page it passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_full_html(message):
                start = message
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = _changed(b"".join(body), dict(start["headers"]).get(b"content-encoding"))
            headers = [(k, v) for k, v in start["headers"] if k.lower() not in VALIDATORS]
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, rewrite)


def _changed(page: bytes, encoding: bytes | None) -> bytes:
    # Streamlit compresses the page when it is served at a page's address, not at "/".
    if encoding == b"gzip":
        return gzip.compress(with_base_url(gzip.decompress(page)), mtime=0)
    return page if encoding else with_base_url(page)


def _is_full_html(start: Message) -> bool:
    content_type: bytes = dict(start["headers"]).get(b"content-type", b"")
    return start["status"] == 200 and content_type.startswith(b"text/html")


# The pages' own modules (not the entry points): imported while the server starts, so that
# no visit pays for them (about 0.5 s: Polars, the catalog, the figures). They ask nothing of
# the store when imported.
PAGE_CODE = sorted(
    f"conflictlens.dashboard.{module.stem}"
    for module in HERE.glob("*.py")
    if module.stem not in {"__init__", "app", "server"}
)


def _import_page_code() -> None:
    for name in PAGE_CODE:
        importlib.import_module(name)


@contextlib.asynccontextmanager
async def _page_code_loaded(_: st.App) -> AsyncIterator[None]:
    await asyncio.to_thread(_import_page_code)
    yield


app = st.App(HERE / "app.py", lifespan=_page_code_loaded, middleware=[Middleware(BaseUrlScript)])
