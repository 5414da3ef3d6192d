"""Generated requests written as each gateway writes its access log (one line per request).

Every renderer takes the typed frame of sample_logs.columns and a time zone, and returns the
lines without newlines. Layouts follow the gateways' own formats as described in
shared/reference/gateway-log-formats.md, section 1; where a format can carry the service's error
code (a logged response header, or a logged body), every conflict response carries it.

FORMATS is built from sample_logs.names.SAMPLE_FORMATS (each format declared once, there);
the renderers live in one module per gateway family beside this one, sharing layout.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import cast

from conflictlens.sample_logs.formats.layout import Formatter
from conflictlens.sample_logs.names import SAMPLE_FORMATS, SampleFormat


@dataclass(frozen=True)
class Format:
    name: str
    carries_code: bool  # can a line hold the service's error code?
    body_codes: bool  # are some codes written in a logged body instead of a header?
    render: Formatter
    summary: str


def _format(declared: SampleFormat) -> Format:
    """The declared format with its renderer, found by name in its family's module."""
    module = importlib.import_module(f"{__name__}.{declared.family}")
    render = cast(Formatter, getattr(module, declared.name.replace("-", "_")))
    return Format(
        declared.name, declared.carries_code, declared.body_codes, render, declared.summary
    )


FORMATS: dict[str, Format] = {f.name: _format(f) for f in SAMPLE_FORMATS}
