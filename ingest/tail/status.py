"""What the follower reports: one ``SourceStatus`` per followed, waiting or unreadable file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conflictlens.ingest.tail.followed import FollowedFile

RATE_EVERY = 0.5  # seconds: a line rate measured over less would jitter


@dataclass(frozen=True)
class SourceStatus:
    """One file as the follower sees it; ``as_dict()`` is what serve reports."""

    path: str
    pattern: str
    state: str  # following | draining | reading (a compressed file) | waiting | error
    source_id: int | None = None
    format: str | None = None
    offset: int = 0  # bytes committed
    size: int | None = None  # the file's size (None for a compressed file)
    lag_bytes: int | None = None  # size - offset: bytes not stored yet (an unfinished line too)
    lines: int = 0  # lines stored from this source, all time
    lines_per_second: float = 0.0
    rejects: int = 0  # rejected lines of this source, all time
    conflicts: int = 0
    last_error: str | None = None
    last_event: str | None = None  # the last rotation, rename, truncation or deletion seen

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


StatusCallback = Callable[[list[SourceStatus]], None]


@dataclass
class Totals:
    """A source's stored lines, rejects and conflicts (all time), and its recent line rate."""

    lines: int = 0
    rejects: int = 0
    conflicts: int = 0
    rate: float = 0.0
    _rate_lines: int = 0
    _rate_at: float = 0.0

    def measure(self, now: float) -> None:
        if now - self._rate_at >= RATE_EVERY:
            if self._rate_at:
                self.rate = max(0.0, (self.lines - self._rate_lines) / (now - self._rate_at))
            self._rate_lines, self._rate_at = self.lines, now


@dataclass
class Waiting:
    """A file whose source is still being read under another name."""

    path: str
    spec_index: int
    reason: str


def snapshot(
    files: Iterable[FollowedFile],
    waiting: Iterable[Waiting],
    problems: Mapping[str, tuple[int, str]],
    patterns: Sequence[str],
) -> list[SourceStatus]:
    """The status of every file, sorted by path; ``patterns`` are the specs' as given."""
    statuses = [_followed(f, patterns[f.spec_index]) for f in files]
    statuses += [
        SourceStatus(
            path=w.path, pattern=patterns[w.spec_index], state="waiting", last_event=w.reason
        )
        for w in waiting
    ]
    followed = {s.path for s in statuses}
    statuses += [
        SourceStatus(path=path, pattern=patterns[index], state="error", last_error=problem)
        for path, (index, problem) in problems.items()
        if path not in followed
    ]
    statuses.sort(key=lambda s: s.path)
    return statuses


def _followed(f: FollowedFile, pattern: str) -> SourceStatus:
    if f.gz:
        state = "reading"
    elif f.format_blocked_at is not None:
        state = "error"
    elif f.attached:
        state = "following"
    else:
        state = "draining"
    error = f.last_error
    if f.deleted and not f.attached:
        error = "deleted while being read: reading it to its end before letting it go"
    return SourceStatus(
        path=f.path,
        pattern=pattern,
        state=state,
        source_id=f.source_id,
        format=f.fmt.name if f.fmt else f.stored_format,
        offset=f.offset,
        size=None if f.gz else f.size,
        lag_bytes=None if f.gz or f.size is None else max(0, f.size - f.offset),
        lines=f.totals.lines,
        lines_per_second=round(f.totals.rate, 1),
        rejects=f.totals.rejects,
        conflicts=f.totals.conflicts,
        last_error=error,
        last_event=f.last_event,
    )
