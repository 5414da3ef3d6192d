"""The ingest benchmark's checks: every run counted what the ground truth says, and goaccess
parsed every line (else it did less work and the ratio flatters us)."""

from __future__ import annotations

from typing import Any

from bench.ingest_tools import Timing


def check_counts(label: str, report: dict[str, Any], truth: dict[str, Any]) -> list[dict[str, Any]]:
    """conflictlens's lines and conflicts against the ground truth; nothing rejected."""
    expected = {"lines": truth["lines"], "conflicts": truth["conflicts"], "rejected": 0}
    checks = []
    for key, want in expected.items():
        got = report.get(key)
        ok = got == want
        print(f"{'OK' if ok else 'MISMATCH':8} {label} {key}: {got} (expected {want})")
        checks.append({"run": label, "key": key, "got": got, "expected": want, "ok": ok})
    return checks


def check_line_count(counted: int | None, expected: int) -> list[dict[str, Any]]:
    ok = counted == expected
    print(f"{'OK' if ok else 'MISMATCH':8} wc -l: {counted} (expected {expected})")
    return [{"run": "wc -l", "key": "lines", "got": counted, "expected": expected, "ok": ok}]


def check_goaccess_parsed(
    peer: list[tuple[Timing, dict[str, Any]]], line_count: int | None
) -> list[dict[str, Any]]:
    """Each goaccess run parsed every line of the log: otherwise it did less work than
    conflictlens and the ratio flatters us."""
    checks = []
    for number, (_, general) in enumerate(peer, start=1):
        got = general.get("valid_requests")
        ok = line_count is not None and got == line_count
        print(
            f"{'OK' if ok else 'MISMATCH':8} goaccess run {number} parsed (valid_requests): {got} "
            f"of {general.get('total_requests')} requests (the log has {line_count} lines)"
        )
        checks.append(
            {
                "run": f"goaccess {number}",
                "key": "valid_requests",
                "got": got,
                "expected": line_count,
                "ok": ok,
            }
        )
    return checks


def parsed_counts(counts: list[int | None]) -> str:
    """'2,000,000 in each of 3 runs', or each run's count when they differ."""
    if len(set(counts)) == 1 and counts[0] is not None:
        return f"{counts[0]:,} in each of {len(counts)} runs"
    return ", ".join(f"{n:,}" if n is not None else "none" for n in counts)
