"""Finding a running ``conflictlens serve`` and asking it, instead of opening its database.

serve writes ``<db>.serve`` beside the database (its pid and address) and removes it on exit;
a stale file (dead pid, no answer) is ignored, and so is one that is not trustworthy: a link,
another user's, writable by others, or naming a process that is not a conflictlens serve.
"""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from conflictlens._errors import ServerError as ServerError

TIMEOUT_SECONDS = 30.0


def discovery_file(db: Path) -> Path:
    return db.with_name(db.name + ".serve")


def write_discovery(db: Path, url: str) -> Path:
    path = discovery_file(db)
    path.write_text(json.dumps({"pid": os.getpid(), "url": url}) + "\n")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _trusted(path: Path) -> bool:
    """A discovery file another user could have written, or one behind a link, may point the
    CLI (and its token) at any port: only our own plain file, writable by us alone, counts."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _is_serve(pid: int) -> bool:
    """The pid is a running ``conflictlens serve`` (where /proc tells; elsewhere: alive), or
    this very process (an embedded server)."""
    if pid == os.getpid():
        return True
    if not _alive(pid):
        return False
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc on this system: trust the pid
    except OSError:
        return False
    return b"serve" in words and any(b"conflictlens" in word for word in words)


def find_server(db: Path) -> str | None:
    """The URL of the serve that owns ``db``, or None when there is none."""
    path = discovery_file(db)
    if not _trusted(path):
        return None
    try:
        info = json.loads(path.read_text())
        url, pid = str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _is_serve(pid):
        return None
    try:
        get_json(url, "/api/health", token=None, timeout=2.0)
    except (ServerError, OSError):
        return None
    return url


def token_from_env() -> str | None:
    return os.environ.get("CONFLICTLENS_TOKEN") or None


def get_json(
    url: str,
    path: str,
    *,
    token: str | None,
    params: dict[str, Any] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> Any:
    return json.loads(get_bytes(url, path, token=token, params=params, timeout=timeout))


def get_bytes(
    url: str,
    path: str,
    *,
    token: str | None,
    params: dict[str, Any] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> bytes:
    """GET ``path`` from serve; an error answer becomes a ServerError with its reason."""
    query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
    request = urllib.request.Request(url.rstrip("/") + path + (f"?{query}" if query else ""))
    return _exchange(url, request, token, timeout)


def send_json(
    url: str,
    path: str,
    body: Any = None,
    *,
    token: str | None,
    method: str = "POST",
    timeout: float = TIMEOUT_SECONDS,
) -> Any:
    """POST (or PUT, DELETE) ``body`` as JSON to serve; its JSON answer."""
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body if body is not None else {}).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    return json.loads(_exchange(url, request, token, timeout))


def _exchange(
    url: str, request: urllib.request.Request, token: str | None, timeout: float
) -> bytes:
    """Send; an error answer becomes a ServerError with serve's one-line reason."""
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        with exc:  # closes the error's response
            try:
                detail = json.loads(exc.read()).get("detail", exc.reason)
            except ValueError:
                detail = exc.reason
        raise ServerError(f"serve at {url} answered {exc.code}: {detail}") from None
