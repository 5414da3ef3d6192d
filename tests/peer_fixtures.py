"""The peer fixtures in ../shared/fixtures (real lines from Filebeat, Logstash and Datadog test
suites with the values those projects expect), shared by the format tests."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conflictlens.ingest.formats import FormatError, detect_format
from conflictlens.ingest.formats.fields import NO_RESPONSE
from conflictlens.ingest.lines import Chunk, split_lines
from tests.needs import needs, require

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
MISSING = (
    f"peer fixtures not found at {FIXTURES} (expected beside the project as ../shared/fixtures)"
)
# A mark for the tests that read the fixtures: a skip without them, a failure in CI.
needs_fixtures = needs(FIXTURES.is_dir(), MISSING)


def require_fixtures() -> None:
    require(FIXTURES.is_dir(), MISSING)


def fixture_names(folders: Iterable[str]) -> list[str]:
    return [
        f"{folder}/{log.stem}"
        for folder in folders
        for log in sorted((FIXTURES / folder).glob("*.log"))
    ]


# Lines a peer stores but this project rejects by design, with the reason it must give: a
# status of "-" means no response was sent, so there is no status to count or classify.
POLICY_REJECTS: dict[tuple[str, int], str] = {("apache/logstash_httpd_spec", 3): NO_RESPONSE}


def as_address(client: str | None) -> str | None:
    """What this project stores for a peer's client value: an IP address, normalised, or
    nothing (peers keep host names and "unix:"; this project stores addresses only)."""
    try:
        return str(ipaddress.ip_address(client)) if client is not None else None
    except ValueError:
        return None


@functools.cache
def expectations(name: str) -> tuple[dict[str, Any], ...]:
    text = (FIXTURES / f"{name}.expected.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines())


def line_cases(folders: Iterable[str], known_failures: dict[tuple[str, int], str]) -> list[Any]:
    """One case per fixture line; a known failure is a strict xfail with its reason."""
    if not FIXTURES.is_dir():
        return [pytest.param("", 0, marks=needs_fixtures, id="fixtures-missing")]
    cases = []
    for name in fixture_names(folders):
        for expected in expectations(name):
            reason = known_failures.get((name, expected["line"]))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(
                pytest.param(name, expected["line"], marks=marks, id=f"{name}:{expected['line']}")
            )
    return cases


def file_cases(folders: Iterable[str]) -> list[Any]:
    if not FIXTURES.is_dir():
        return [pytest.param("", marks=needs_fixtures, id="fixtures-missing")]
    return [pytest.param(name, id=name) for name in fixture_names(folders)]


@functools.cache
def fixture_frame(name: str) -> pl.DataFrame:
    """The fixture's lines as the pipeline frames them."""
    data = (FIXTURES / f"{name}.log").read_bytes()
    return split_lines(Chunk(data, 0, len(data), 0)).lines


@functools.cache
def parsed_fixture(name: str) -> tuple[pl.DataFrame | None, str, str]:
    """The fixture parsed with the format detected for the whole file: (frame, format, error)."""
    lines = fixture_frame(name)
    try:
        fmt = detect_format(lines)
    except FormatError as exc:
        return None, "", str(exc)
    return fmt.parse(lines), fmt.name, ""


def instant(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC)


def check_line(name: str, number: int, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """Assert one fixture line parses as its source expects (every non-null expected field of
    ``fields``, and the timestamp as an instant); returns the parsed row, None for a reject."""
    expected = expectations(name)[number - 1]
    assert expected["line"] == number
    parsed, fmt, error = parsed_fixture(name)
    assert parsed is not None, f"format detection failed for {name}: {error}"
    row: dict[str, Any] = parsed.row(number - 1, named=True)
    if (name, number) in POLICY_REJECTS:
        assert row["reject"] == POLICY_REJECTS[name, number]
        return None
    if expected["expect"] == "reject":
        assert row["reject"] is not None, f"{name}:{number} should be rejected ({expected['why']})"
        return None
    assert row["reject"] is None, f"{name}:{number} rejected by {fmt}: {row['reject']}"
    for field in fields:  # null = no expectation (see the fixtures' README)
        if field == "client" and expected[field] is not None:
            assert row[field] == as_address(expected[field]), field
        elif expected[field] is not None:
            assert row[field] == expected[field], field
    if expected["ts"] is not None:
        assert row["ts"] is not None
        assert row["ts"].replace(tzinfo=dt.UTC) == instant(expected["ts"])
    return row
