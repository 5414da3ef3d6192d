"""What to follow: a glob, how to read its files and where to start on a first start."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from conflictlens.ingest.formats import get_format
from conflictlens.ingest.options import IngestOptions

START_BEGINNING = "beginning"
START_END = "end"


@dataclass(frozen=True)
class SourceSpec:
    """Which files to follow and how to read them.

    ``start`` applies to files present when the follower starts for the first time for this
    pattern (no file matching it is in the store yet): "end" skips what they hold already.
    A file that appears later, or any file on a later start, is read from byte 0.
    """

    pattern: str  # a glob; ** matches folders recursively
    format: str = "auto"
    log_format: str | None = None  # an nginx or Apache format string
    start: str = START_BEGINNING
    service: str | None = None  # recorded on every line (overrides options.service)
    options: IngestOptions = field(default_factory=IngestOptions)

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("a source needs a file path or glob")
        if self.start not in (START_BEGINNING, START_END):
            raise ValueError(
                f"start must be {START_BEGINNING!r} or {START_END!r}, not {self.start!r}"
            )
        if self.format != "auto" or self.log_format:
            get_format(self.format, self.log_format)  # an unknown format fails here, not later

    @property
    def absolute_pattern(self) -> str:
        return os.path.abspath(os.path.expanduser(self.pattern))

    def ingest_options(self) -> IngestOptions:
        if self.service is None:
            return self.options
        return dataclasses.replace(self.options, service=self.service)
