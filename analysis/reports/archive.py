"""The reports directory: report files, ``index.json``, one lock, and retention.

The index is the archive's memory and status page: per report its period, when it was made,
its files and sizes, and every delivery with its status (pending, sent, retrying, failed),
attempts and last error. The period is the key: the scheduler looks it up before building,
under the directory's lock (``fcntl.flock`` on ``.lock``), so no two processes (serve's
scheduler and a cron job, say) ever make two reports for one period.

Every file is written to a temporary name in the directory and renamed into place; the index
last. A crash leaves either the old state or the new one, plus at worst report files that no
index entry names, which the next run writes again under the same names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from conflictlens._errors import StoreError
from conflictlens.analysis.reports.build import Report
from conflictlens.analysis.reports.periods import Period
from conflictlens.analysis.reports.render import EXTENSIONS

INDEX = "index.json"
LOCK = ".lock"
INDEX_VERSION = 1
PREFIX = "conflictlens-"
_TEMP = ".tmp-"

Entry = dict[str, Any]
Index = dict[str, Any]


class ArchiveError(StoreError):
    """The reports directory cannot be used as it is; the message is one line."""

    status_code = 500  # serve's problem, not the request's


@dataclass(frozen=True)
class ArchivedReport:
    """A report as stored: what a delivery needs (the data, the files, a link)."""

    report: Report
    entry: Mapping[str, Any]
    directory: Path
    base_url: str | None = None

    @property
    def files(self) -> dict[str, Path]:
        return {f["format"]: self.directory / f["name"] for f in self.entry["files"]}

    @property
    def link(self) -> str:
        """Where a reader opens the report: base_url + the HTML (or first) file's name, else
        its file:// URI."""
        files = self.entry["files"]
        name = str(next((f for f in files if f["format"] == "html"), files[0])["name"])
        if self.base_url:
            return f"{self.base_url}{quote(name)}"
        return (self.directory / name).resolve().as_uri()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    handle, temp = tempfile.mkstemp(prefix=_TEMP, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class Archive:
    """One reports directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's lock (blocking): one writer at a time, across processes."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(self.directory / LOCK, "a+b")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise ArchiveError(
                f"reports directory {self.directory}: {exc.strerror or exc}"
            ) from None
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @property
    def index_path(self) -> Path:
        return self.directory / INDEX

    def load(self) -> Index:
        """The index; an empty one when there is none yet. An unreadable index is an error,
        never silently replaced: that would build every report again."""
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": INDEX_VERSION, "reports": []}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ArchiveError(f"{self.index_path}: unreadable ({exc}); fix or remove it") from None
        if not isinstance(data, dict) or not isinstance(data.get("reports"), list):
            raise ArchiveError(f"{self.index_path}: not a conflictlens reports index")
        return data

    def save(self, index: Index) -> None:
        index["version"] = INDEX_VERSION
        write_atomic(self.index_path, (json.dumps(index, indent=1) + "\n").encode("utf-8"))

    @staticmethod
    def find(index: Index, period: Period) -> Entry | None:
        for entry in index["reports"]:
            if entry.get("key") == period.key:
                found: Entry = entry
                return found
        return None

    def store(
        self,
        index: Index,
        period: Period,
        rendered: Mapping[str, bytes],
        *,
        created: dt.datetime,
        schedule: str | None,
        channels: Sequence[str],
        summary: str,
    ) -> Entry:
        """Write the rendered files and add their entry (with a pending delivery per
        channel) to ``index``; the caller saves the index."""
        stem = self._stem(index, period)
        files = []
        for fmt, data in rendered.items():
            name = f"{stem}{EXTENSIONS[fmt]}"
            write_atomic(self.directory / name, data)
            files.append(
                {
                    "format": fmt,
                    "name": name,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
        entry: Entry = {
            "id": stem.removeprefix(PREFIX),
            "key": period.key,
            "period": period.to_json(),
            "schedule": schedule,
            "created": _iso(created),
            "summary": summary,
            "size": sum(f["size"] for f in files),
            "files": files,
            "deliveries": [
                {
                    "channel": name,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt": _iso(created),
                    "last_attempt": None,
                    "delivered": None,
                    "error": None,
                }
                for name in channels
            ],
        }
        index["reports"].append(entry)
        index["reports"].sort(key=lambda e: (e["period"]["from"], e["period"]["to"]))
        return entry

    def _stem(self, index: Index, period: Period) -> str:
        """``conflictlens-2026-11-19``; when another period already has that name (the same
        day in another zone), the zone is added."""
        stem = f"{PREFIX}{period.slug}"
        taken = {
            f["name"].rsplit(".", 1)[0]
            for e in index["reports"]
            if e.get("key") != period.key
            for f in e.get("files", [])
        }
        if stem in taken:
            stem = f"{stem}-{period.tz.replace('/', '_')}"
        return stem

    def listed_file(self, name: str) -> tuple[Path, str] | None:
        """The path and format of report file ``name``, or None unless the index lists it.
        Only index names are served, never a path a client makes up; a listed name that is
        not a plain file name (a hand-edited index) is refused too, and so is a listed name
        that is a link (to the config and its token, say) or anything but a regular file."""
        if not name or name != Path(name).name or name.startswith("."):
            return None
        for entry in self.load()["reports"]:
            for f in entry.get("files", []):
                if f.get("name") == name:
                    path = self.directory / name
                    return (path, str(f.get("format"))) if _plain_file(path) else None
        return None

    def load_report(self, entry: Mapping[str, Any]) -> Report:
        """The report's data, from its JSON file (always written)."""
        name = next((f["name"] for f in entry["files"] if f["format"] == "json"), None)
        if name is None:
            raise ArchiveError(f"report {entry.get('id')}: no JSON file in the index")
        try:
            data: Report = json.loads((self.directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArchiveError(f"{self.directory / name}: unreadable ({exc})") from None
        return data

    def prune(self, index: Index, now: dt.datetime, retention_days: int) -> list[str]:
        """Delete reports whose period ended more than ``retention_days`` ago (files and
        entries), except the newest of each schedule: that one tells the scheduler its last
        period is done. Also stray temporary files over an hour old. Returns the ids."""
        cutoff = now.astimezone(dt.UTC) - dt.timedelta(days=retention_days)
        newest: dict[Any, str] = {}
        for entry in index["reports"]:
            if entry.get("schedule") is not None:
                newest[entry["schedule"]] = max(newest.get(entry["schedule"], ""), entry["key"])
        keep, removed = [], []
        for entry in index["reports"]:
            ended = dt.datetime.fromisoformat(entry["period"]["to"])
            protected = newest.get(entry.get("schedule")) == entry["key"]
            if ended < cutoff and not protected:
                for f in entry.get("files", []):
                    with contextlib.suppress(FileNotFoundError):
                        (self.directory / f["name"]).unlink()
                removed.append(entry["id"])
            else:
                keep.append(entry)
        index["reports"] = keep
        self._sweep_temporaries(now)
        return removed

    def _sweep_temporaries(self, now: dt.datetime) -> None:
        stale = now.timestamp() - 3600
        for path in self.directory.glob(f"{_TEMP}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < stale:
                    path.unlink()


def _plain_file(path: Path) -> bool:
    """A regular file, not reached through a link."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False
