"""Terminal output: progress bars, summaries and tables. Log-derived strings are printed as
plain text (never interpreted as Rich markup)."""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from conflictlens.ingest import ImportSummary

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported where output is drawn, not with this module: `ingest --json` and the other
# machine-readable outputs never need it (it costs a tenth of a second of start-up).


@functools.cache
def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    if stderr:
        return Console(stderr=True, highlight=False)
    # Off a terminal (pipes, CI logs) keep full routes readable instead of 80-column ellipses.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _print(renderable: Any) -> None:
    _console(stderr=False).print(renderable)


def warn(message: str) -> None:
    """One line on stderr about a file that was skipped; the command goes on."""
    _console(stderr=True).print(f"skipped: {printable(message)}", markup=False)


def _input_size(paths: Sequence[str]) -> int | None:
    total = 0
    for name in paths:
        if name == "-" or not os.path.isfile(name):
            return None
        total += os.path.getsize(name)
    return total


@contextmanager
def progress(paths: Sequence[str], *, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on stderr for large inputs when it is a terminal."""
    size = _input_size(paths)
    if not enabled or not sys.stderr.isatty() or not size or size < 32 * 1024 * 1024:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task("importing", total=size)
        yield lambda done: bar.advance(task, done)


def import_totals(summaries: Sequence[ImportSummary]) -> dict[str, Any]:
    seconds = sum(s.seconds for s in summaries)
    lines = sum(s.lines for s in summaries)
    reasons: dict[str, int] = {}
    for summary in summaries:
        for reason, count in summary.reject_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    return {
        "lines": lines,
        "parsed": sum(s.parsed for s in summaries),
        "rejected": sum(s.rejected for s in summaries),
        "conflicts": sum(s.conflicts for s in summaries),
        "seconds": round(seconds, 3),
        "lines_per_second": round(lines / seconds) if seconds > 0 else 0,
        "reject_reasons": reasons,
        "files": [
            {
                "path": s.path,
                "format": s.format,
                "lines": s.lines,
                "parsed": s.parsed,
                "rejected": s.rejected,
                "conflicts": s.conflicts,
                "resumed_at": s.resumed_at,
                "seconds": round(s.seconds, 3),
                **({"detection": _detection(s)} if s.detection is not None else {}),
            }
            for s in summaries
        ],
    }


def _detection(summary: ImportSummary) -> dict[str, Any]:
    """How the format was chosen: how many of the sampled lines it recognised, and the
    formats that recognised as many (the first one named wins such a tie)."""
    found = summary.detection
    assert found is not None
    return {"matched": found.matched, "sampled": found.sampled, "ties": list(found.ties)}


def _detected_text(summary: ImportSummary) -> str:
    found = summary.detection
    if found is None:
        return ""
    if found.matched == 0:
        return f" (no known format takes any of the {found.sampled:,} sampled lines: pass --format or --log-format)"
    tie = f"; {' and '.join(found.ties)} read them alike" if found.ties else ""
    return f" (detected: {found.matched:,} of {found.sampled:,} sampled lines{tie})"


def print_import_summary(summary: ImportSummary) -> None:
    from rich.text import Text

    rate = summary.lines / summary.seconds if summary.seconds > 0 else 0
    head = Text(printable(summary.path))
    if summary.lines == 0:
        already = (
            f" (already imported up to byte {summary.resumed_at})" if summary.resumed_at else ""
        )
        _print(head + Text(f": nothing new{already}"))
        return
    resumed = f", resumed at byte {summary.resumed_at}" if summary.resumed_at else ""
    _print(
        head
        + Text(
            f": {summary.format}{_detected_text(summary)}{resumed}: {summary.lines:,} lines, {summary.parsed:,} parsed, "
            f"{summary.rejected:,} rejected, {summary.conflicts:,} conflicts captured "
            f"in {summary.seconds:.2f} s ({rate:,.0f} lines/s)"
        )
    )
    for reason, count in summary.reject_reasons.most_common(5):
        _print(Text(f"  rejected {count:,}: {reason}"))


def print_totals(total: dict[str, Any]) -> None:
    from rich.text import Text

    _print(
        Text(
            f"total: {total['lines']:,} lines, {total['parsed']:,} parsed, {total['rejected']:,} rejected, "
            f"{total['conflicts']:,} conflicts in {total['seconds']:.2f} s ({total['lines_per_second']:,} lines/s)"
        )
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dt.datetime):
        return (
            value.replace(tzinfo=dt.UTC).isoformat() if value.tzinfo is None else value.isoformat()
        )
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; timestamps as ISO-8601 with offset."""
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def print_clusters(frame: pl.DataFrame) -> None:
    from rich.table import Table
    from rich.text import Text

    if frame.height == 0:
        _print("no conflicts in this range")
        return
    table = Table(show_edge=False, header_style="bold")
    for name, justify in (
        ("method", "left"),
        ("route", "left"),
        ("status", "right"),
        ("error code", "left"),
        ("kind", "left"),
        ("conflicts", "right"),
        ("requests", "right"),
        ("ratio", "right"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in frame.iter_rows(named=True):
        ratio = row["ratio"]
        table.add_row(
            Text(text(row["method"])),
            Text(text(row["route"])),
            Text(str(row["status"])),
            Text(text(row["error_code"])),
            Text(text(row["kind"])),
            Text(f"{row['conflicts']:,}"),
            Text(f"{row['requests']:,}"),
            Text(f"{ratio:.2%}" if ratio is not None else "-"),
        )
    _print(table)


Cell = Callable[[Any], str]


def count(value: Any) -> str:
    return f"{value:,}" if value is not None else "-"


def percent(value: Any) -> str:
    return f"{value:.2%}" if value is not None else "-"


def decimal(value: Any) -> str:
    return f"{value:.1f}" if value is not None else "-"


def printable(value: str) -> str:
    """Log-derived text with its control characters escaped (analysis.reports.text, imported
    when first needed: `conflictlens ingest` starts without the analysis package)."""
    from conflictlens.analysis.reports.text import printable as escaped

    return escaped(value)


def text(value: Any) -> str:
    return "-" if value is None or value == "" else printable(str(value))


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return text(value)


def yes(value: Any) -> str:
    return "yes" if value else ""


def print_table(
    frame: pl.DataFrame, columns: Sequence[tuple[str, str, Cell]], *, empty: str
) -> None:
    """A table of ``columns`` (key, header, how to show a value); numbers right-aligned."""
    from rich.table import Table
    from rich.text import Text

    if frame.height == 0:
        _print(empty)
        return
    table = Table(show_edge=False, header_style="bold")
    for _, header, show in columns:
        right = show in (count, percent, decimal)
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*(Text(show(row.get(key))) for key, _, show in columns))
    _print(table)
