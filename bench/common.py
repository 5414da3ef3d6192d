"""What the benchmarks share: the error they stop on, how they run conflictlens, the rows of
`make bench`'s closing table, their argument checks, what they say about the machine, and the
small tools of measuring (a free port, a percentile, a verdict, the JSON they write)."""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import socket
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

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


# --- arguments -------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}\n")


def script_parser(doc: str | None) -> ArgumentParser:
    """A benchmark script's parser, described by the first line of its docstring."""
    return ArgumentParser(description=doc.splitlines()[0] if doc else None)


def integer(text: str, minimum: int) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}: {value}")
    return value


def positive_int(text: str) -> int:
    return integer(text, 1)


def non_negative_int(text: str) -> int:
    return integer(text, 0)


# --- the machine -----------------------------------------------------------------------


def machine(**extra: str) -> dict[str, Any]:
    """What the figures were measured on (each benchmark's JSON names it)."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **extra,
    }


CpuSample = tuple[float, float, float]


def cpu_sample(children: bool = False) -> CpuSample | None:
    """(machine busy seconds, machine total seconds, this process's CPU seconds, with its
    finished children's when ``children``); Linux only."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    own = os.times()
    mine = own.user + own.system
    if children:
        mine += own.children_user + own.children_system
    return (total - idle) / hz, total / hz, mine


def other_cpu_share(before: CpuSample | None, after: CpuSample | None) -> float | None:
    """The share of the machine's CPU time that other processes used between two samples."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    busy, total, own = (a - b for a, b in zip(after, before, strict=True))
    return max(0.0, busy - own) / total


# --- shared by the benchmarks that start servers and time things -----------------------


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Iterable[float], pct: float) -> float:
    """Nearest rank (the p95 of 5 visits is the slowest); NaN when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def verdict(ok: bool) -> str:
    """A bar's verdict, as the benchmarks' own tables print it."""
    return "met" if ok else "MISSED"


def write_json(out: Path, results: dict[str, Any]) -> Path:
    """The figures as JSON (what str() makes of a value JSON has no type for)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return out


OUT = PROJECT / "bench" / "out"  # what the benchmarks write, and the stores they reuse
