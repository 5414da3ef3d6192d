"""What the benchmarks share: the error they stop on, how they run conflictlens, and the
rows of `make bench`'s closing table."""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
PACKAGES = ("conflictlens", "ingest", "store", "analysis", "dashboard")


class BenchError(Exception):
    """Something the benchmark depends on failed; the message is one line."""


def conflictlens_exe() -> Path:
    """The conflictlens installed beside this Python (the project's venv)."""
    exe = Path(sys.executable).parent / "conflictlens"
    if not exe.exists():
        raise BenchError(f"conflictlens not found at {exe}; run `make` (pip install -e .) first")
    return exe


def child_env() -> dict[str, str]:
    """The environment without CONFLICTLENS_* settings, so only the benchmark's own count."""
    return {key: value for key, value in os.environ.items() if not key.startswith("CONFLICTLENS_")}


def compile_bytecode() -> None:
    """Write the project's bytecode, as installing a wheel does: an editable install run
    with PYTHONDONTWRITEBYTECODE set (as in our sandboxes) otherwise compiles every module from
    source at each start, about 0.1 s of each timed run."""
    for package in PACKAGES:
        compileall.compile_dir(PROJECT / package, quiet=1)


def summary_row(
    metric: str,
    ours: str,
    bar: str,
    passed: bool | None,
    *,
    peer: str = "",
    ratio: str = "",
) -> dict[str, Any]:
    """One line of ``make bench``'s closing table (bench/summary.py), as the script that
    measured it words it; ``passed`` is None for a figure that has no bar."""
    return {
        "metric": metric,
        "ours": ours,
        "peer": peer,
        "ratio": ratio,
        "bar": bar,
        "pass": passed,
    }
