"""End to end: the real /usr/sbin/logrotate rotates four logs, one per way of rotating
(create or copytruncate, each with compress, with and without delaycompress), while
`conflictlens serve` follows all of them and a writer per log appends numbered lines. In the
end every line written is stored exactly once.

The writers reopen the log after a rotation, as a web server does when logrotate's
postrotate signals it. Where logrotate itself would lose lines, the writer is held during
the logrotate run: copytruncate drops what is written between its copy and its truncation,
and compress without delaycompress gzips the renamed file while a writer may still append to
it. Those losses are logrotate's, documented in its manual; holding the writer takes them
out, so the comparison with the lines written is exact."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import NumberedWriter, ServeProcess, wait_for
from tests.test_tail import (
    assert_exactly_once,
    logrotate_config,
    run_logrotate,
    seq_lines,
    stored_in,
)

pytestmark = pytest.mark.slow

# tag: logrotate's directives for that log
WAYS = {
    "create": ("create", "compress"),
    "create-delay": ("create", "compress", "delaycompress"),
    "copytruncate": ("copytruncate", "compress"),
    "copytruncate-delay": ("copytruncate", "compress", "delaycompress"),
}
ROTATIONS = 4


def holds_the_writer(directives: tuple[str, ...]) -> bool:
    """Whether logrotate would lose lines written during its run (see the module's text)."""
    return "copytruncate" in directives or "delaycompress" not in directives


def rotate(tmp_path: Path, log: Path, tag: str, writer: NumberedWriter) -> None:
    folder = tmp_path / "logrotate" / tag  # its own config and state file
    folder.mkdir(parents=True, exist_ok=True)
    config = logrotate_config(log, *WAYS[tag])
    if holds_the_writer(WAYS[tag]):
        with writer.paused():
            run_logrotate(folder, config)
    else:
        run_logrotate(folder, config)


def stored_from(serve: ServeProcess, path: Path) -> int:
    """Lines serve has stored from the file first seen at ``path``."""
    status, info = serve.get("/api/status")
    assert status == 200, info
    return sum(int(s["lines"]) for s in info["sources"] if s["path"] == str(path))


def nothing_left_to_read(serve: ServeProcess) -> bool:
    """No file is being drained, read (a compressed one) or waited for, and every followed
    file is stored to its end."""
    following = serve.get("/api/status")[1]["following"]
    return all(f.get("state") == "following" and f.get("lag_bytes") == 0 for f in following)


def wait_for_a_scan_after_the_last_rotation(serve: ServeProcess, logs: Path) -> None:
    """A new file's one line stored, and nothing left to read: the follower has scanned the
    folder (the compressed files included) after everything was on disk."""
    sentinel = logs / "sentinel.log"
    sentinel.write_bytes(seq_lines("sentinel", range(1)))
    wait_for(
        lambda: stored_from(serve, sentinel) == 1 and nothing_left_to_read(serve),
        60,
        "serve to store the sentinel line with nothing left to read",
    )


def test_real_logrotate_while_serve_follows_stores_every_line_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    files = {tag: logs / f"{tag}.log" for tag in WAYS}
    for path in files.values():
        path.write_bytes(b"")
    db = tmp_path / "t.duckdb"
    config = tmp_path / "conflictlens.toml"
    config.write_text(f'[[sources]]\npath = "{logs}/*.log*"\n[serve]\nflush_ms = 100\n')
    serve = ServeProcess(db, config, dashboard=False)
    writers = {tag: NumberedWriter(path, tag) for tag, path in files.items()}
    try:
        for writer in writers.values():
            writer.start()
        for _ in range(ROTATIONS):
            time.sleep(1.0)
            for tag, path in files.items():
                rotate(tmp_path, path, tag, writers[tag])
        time.sleep(1.0)
        written = {tag: writer.finish() for tag, writer in writers.items()}
        total = sum(written.values())
        wait_for(lambda: serve.stored_lines() >= total, 60, f"serve to store {total} lines")
        wait_for_a_scan_after_the_last_rotation(serve, logs)
        status = serve.get("/api/status")[1]
    finally:
        for writer in writers.values():
            writer.finish()
        serve.stop()
    rotated = sorted(p.name for p in logs.iterdir() if p.name != "sentinel.log")
    assert all(w.reopened == ROTATIONS for tag, w in writers.items() if "create" in tag.split("-"))
    assert len(rotated) == len(WAYS) * (ROTATIONS + 1), rotated
    assert sum(1 for name in rotated if name.endswith(".gz")) == 2 * ROTATIONS + 2 * (ROTATIONS - 1)
    assert all(n >= 3000 for n in written.values()), written
    assert_exactly_once(stored_in(db), {**written, "sentinel": 1})
    assert _errors(status) == []


def _errors(status: dict[str, Any]) -> list[str]:
    return [
        json.dumps(f) for f in status["following"] if f.get("last_error") or "config_error" in f
    ]
