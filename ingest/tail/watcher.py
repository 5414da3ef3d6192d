"""The follower's thread: a loop with an exit event, woken early by ``wake()``.

Each turn calls ``cycle(now)``; then, unless ``deadline()`` says there is more to do at once
(None), it sleeps until that deadline (the next poll, flush or status) or until woken, and
never turns more often than MIN_CYCLE_GAP. A failing cycle is logged and reported through
``failed`` and the loop goes on a second later; ``finish`` runs on the thread when it ends
(the last flush), however it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("conflictlens.tail")

MIN_CYCLE_GAP = 0.02  # seconds: file-system events never wake the thread more often
RETRY_AFTER_FAILURE = 1.0  # seconds


class Watcher:
    def __init__(
        self,
        *,
        cycle: Callable[[float], None],
        deadline: Callable[[], float | None],
        failed: Callable[[Exception], None],
        finish: Callable[[], None],
        name: str = "conflictlens-follow",
    ) -> None:
        self._cycle, self._deadline, self._failed, self._finish = cycle, deadline, failed, finish
        self.exit = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Set the exit event and wait for the thread (and ``finish``) to end."""
        self.exit.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Run the next cycle now (thread-safe: the file-system watcher calls it)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self.exit.is_set():
                self._wake.clear()
                started = time.monotonic()
                try:
                    self._cycle(started)
                except Exception as exc:  # a bug or a broken store: report, wait, go on
                    log.exception("follow cycle failed")
                    self._failed(exc)
                    self.exit.wait(RETRY_AFTER_FAILURE)
                if self.exit.is_set():
                    break
                deadline = self._deadline()
                if deadline is not None:
                    timeout = deadline - time.monotonic()
                    if timeout > 0:
                        self._wake.wait(timeout)
                gap = MIN_CYCLE_GAP - (time.monotonic() - started)
                if gap > 0:
                    self.exit.wait(gap)
        finally:
            self._finish()
