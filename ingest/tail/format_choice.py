"""Which log format a followed file is read with, decided once from its first lines.

The spec's format (or the one the store recorded for the source) wins; else the format is
recognised from the lines. A file whose lines are not recognised is read like the other
files of its glob once one of them was; until then it waits (the follower reports it).
"""

from __future__ import annotations

from collections.abc import Sequence

from conflictlens.ingest.formats import (
    FormatError,
    LogFormat,
    UnknownFormat,
    detect_format,
    get_format,
)
from conflictlens.ingest.lines import Chunk, split_lines
from conflictlens.ingest.pipeline import choose_format
from conflictlens.ingest.tail.followed import FollowedFile
from conflictlens.ingest.tail.spec import SourceSpec
from conflictlens.store import Writer

FALLBACK_FORMAT = "nginx-combined"  # only to count overlong lines before any line was seen


class FormatChoice:
    """Chooses and records each file's format; remembers the first one of every glob."""

    def __init__(self, writer: Writer, specs: Sequence[SourceSpec]) -> None:
        self._writer = writer
        self._specs = specs
        self._by_spec: dict[int, LogFormat] = {}

    def known_for(self, spec_index: int) -> bool:
        """Some file of this glob has a format (a file not recognised may take it)."""
        return spec_index in self._by_spec

    def record(self, f: FollowedFile) -> None:
        """Tell the store the format of ``f`` (again: its source changed)."""
        if f.fmt is not None:
            self._writer.set_format(f.source_id, f.fmt.name, self._specs[f.spec_index].log_format)

    def choose(self, f: FollowedFile, chunks: list[Chunk]) -> LogFormat | None:
        """The format of ``f``, from ``chunks`` (its first lines) when not known yet; None
        when they are not recognised (``f.last_error`` says why)."""
        if f.fmt is not None:
            return f.fmt
        spec = self._specs[f.spec_index]
        sibling = self._by_spec.get(f.spec_index)
        try:
            fmt = choose_format(spec.format, spec.log_format, f.stored_format, f.stored_log_format)
        except FormatError:
            fmt = None
        if fmt is None:
            sample = next((c for c in chunks if c.data), None)
            lines = split_lines(sample).lines if sample is not None else None
            if lines is None or not lines["line"].str.strip_chars().ne("").any():
                # Only overlong or blank lines so far: count them, decide the format later.
                return sibling or get_format(FALLBACK_FORMAT)
            try:
                fmt = detect_format(lines)
            except UnknownFormat as exc:
                if sibling is None:
                    f.last_error = str(exc)
                    return None
                fmt = sibling
                f.last_error = None
                f.last_event = (
                    f"log format not recognised from its first lines; read as {sibling.name} "
                    f"like the other files of {spec.pattern}"
                )
        f.fmt = fmt
        self._writer.set_format(f.source_id, fmt.name, spec.log_format)
        self._by_spec.setdefault(f.spec_index, fmt)
        return fmt
