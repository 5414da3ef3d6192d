"""Live tailing: follow the files matching globs and commit their lines as they are written.

One concern, one small unit each (read them in this order):

- ``spec``: what to follow (``SourceSpec``: a glob, its format, where a first start begins);
- ``scan``: the files matching the globs, by device and inode (a pure function);
- ``handle``: opening a matched file safely; its identity from the open handle;
- ``identify``: which stored source a newly matched file is (rename, copy, compressed
  sibling), and from which offset it is read;
- ``rotation``: what happened to a followed file (renamed away, truncated, rewritten,
  deleted) since it was last looked at;
- ``reader``: byte ranges of one open file into complete lines, the partial last line held
  back; ``followed``: one followed file's reader and state;
- ``format_choice`` and ``commit``: parsing and committing the lines, rows and the source's
  offset in one transaction (exactly once), every N lines or T ms and at stop;
- ``watcher`` (the thread: an exit event and callbacks) and ``events`` (watchdog nudges,
  the poll finds everything without them);
- ``follower``: ``Follower`` ties them together; ``status``: what it reports;
- ``cli``: ``python -m conflictlens.ingest.tail``.

``conflictlens serve`` runs the followers of its config (conflictlens/serve_sources.py).
"""

from conflictlens.ingest.tail.follower import Follower
from conflictlens.ingest.tail.spec import START_BEGINNING, START_END, SourceSpec
from conflictlens.ingest.tail.status import SourceStatus, StatusCallback

__all__ = [
    "START_BEGINNING",
    "START_END",
    "Follower",
    "SourceSpec",
    "SourceStatus",
    "StatusCallback",
]
