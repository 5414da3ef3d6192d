"""File-system events (watchdog, inotify on Linux) on the folders of the globs.

They only make the follower look sooner: the periodic poll alone finds every line too, so
a folder that cannot be watched (no inotify, limits, not there yet) is simply polled.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Collection, Sequence
from fnmatch import fnmatch
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("conflictlens.tail")


class FolderEvents(FileSystemEventHandler):
    """Calls ``nudge(rescan)`` for events on files matching ``patterns`` (never for
    ``ignore``, the store's own files): ``rescan`` unless only followed files were written."""

    def __init__(
        self,
        patterns: Sequence[str],
        ignore: Collection[str],
        nudge: Callable[[bool], None],
        followed: Callable[[], Collection[str]],
    ) -> None:
        self._patterns = patterns
        self._ignore = ignore
        self._nudge = nudge
        self._followed = followed
        self._observer: Any = None
        self._watched: dict[str, Any] = {}  # folder → its watchdog watch (None: polled only)

    def start(self) -> bool:
        """Start watching; False (and polling only) when events are unavailable."""
        try:
            _quiet_watchdog_stop()
            self._observer = Observer()
            self._observer.start()
        except Exception as exc:  # no inotify (limits, platform): the poll still finds all
            log.warning("file-system events unavailable, polling only: %s", exc)
            self._observer = None
            return False
        self.watch_new_folders()
        return True

    def stop(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                log.exception("stopping the file watcher failed")

    def watch_new_folders(self) -> None:
        """Watch the folder of every pattern that exists (again); the poll covers the rest."""
        if self._observer is None:
            return
        for folder in [f for f in self._watched if not os.path.isdir(f)]:
            watch = self._watched.pop(folder)
            if watch is not None:
                try:
                    self._observer.unschedule(watch)
                except Exception:
                    log.debug("unscheduling %s failed", folder, exc_info=True)
        for pattern in self._patterns:
            folder, recursive = watch_root(pattern)
            if folder in self._watched or not os.path.isdir(folder):
                continue
            try:
                self._watched[folder] = self._observer.schedule(self, folder, recursive=recursive)
            except Exception as exc:
                log.warning("cannot watch %s (polling it instead): %s", folder, exc)
                self._watched[folder] = None

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Runs on the watchdog thread: only decides whether to nudge."""
        kind = event.event_type
        if kind in ("opened", "closed_no_write") or (event.is_directory and kind == "modified"):
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        if all(p in self._ignore for p in paths) or not any(
            fnmatch(p, pattern) for p in paths for pattern in self._patterns
        ):
            return
        followed = self._followed()
        self._nudge(kind not in ("modified", "closed") or not all(p in followed for p in paths))


def watch_root(pattern: str) -> tuple[str, bool]:
    """The folder to watch for a glob, and whether its sub-folders too."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if glob.has_magic(part):
            folder = os.sep.join(parts[:index]) or os.sep
            return folder, index < len(parts) - 1
    return os.path.dirname(pattern) or os.sep, False


class _DropStopRace(logging.Filter):
    """watchdog logs an error when its inotify thread is stopped while waiting for events;
    that is how every stop goes, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in str(record.msg)


def _quiet_watchdog_stop() -> None:
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _DropStopRace) for f in logger.filters):
        logger.addFilter(_DropStopRace())
