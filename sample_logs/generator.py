"""Realistic gateway traffic with known ground truth, written as access-log lines.

Vectorized (numpy + Polars), so that the benchmark's 8M-line logs take seconds to write. The
ground truth returned (and written beside the log as JSON) is computed from the very columns
the lines were formatted from: conflicts per (method, route, status, error code) with the kind
declared for each code in ENDPOINTS, requests per (method, route), with routes as
conflictlens should template them, and the facts of a planted scenario.

    write_log("access.log", 200_000, style="kong-json", scenario="retry-storm")

Formats: see sample_logs.formats.FORMATS; scenarios: sample_logs.scenarios.SCENARIOS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import polars as pl

from conflictlens.ingest.formats.clf import NGINX_EXTENDED as EXTENDED_LOG_FORMAT
from conflictlens.sample_logs.catalog import (
    CLIENTS,
    CONFLICT_STATUSES,
    ENDPOINTS,
    KINDS,
    OK_STATUSES,
    OK_WEIGHTS,
    REFERERS,
    STATUS_KINDS,
    USER_AGENTS,
    Endpoint,
    code_kinds,
)
from conflictlens.sample_logs.columns import (
    BASE_SCHEMA,
    CARRIERS,
    SCHEMA,
    conform,
    decorate,
    empty,
    paths,
    repeat,
)
from conflictlens.sample_logs.formats import FORMATS
from conflictlens.sample_logs.names import SampleError
from conflictlens.sample_logs.planting import Plan
from conflictlens.sample_logs.scenarios import SCENARIOS, plan

LINE_STYLES = tuple(FORMATS)

CODE_STYLES = tuple(name for name, f in FORMATS.items() if f.carries_code)
DEFAULT_END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
BATCH = 500_000

__all__ = [
    "CODE_STYLES",
    "ENDPOINTS",
    "EXTENDED_LOG_FORMAT",
    "KINDS",
    "LINE_STYLES",
    "SCENARIOS",
    "Endpoint",
    "SampleError",
    "format_lines",
    "ground_truth",
    "traffic",
    "write_log",
    "write_samples",
]


def _steady(n: int, seed: int, start_us: int, span_us: int) -> pl.DataFrame:
    """``n`` requests of everyday traffic, spread uniformly over [start, start + span)."""
    if n <= 0:
        return empty(BASE_SCHEMA)
    rng = np.random.default_rng(seed)
    weights = np.array([e.weight for e in ENDPOINTS])
    which = rng.choice(len(ENDPOINTS), size=n, p=weights / weights.sum())
    parts: list[pl.DataFrame] = []
    for index, ep in enumerate(ENDPOINTS):
        rows = np.flatnonzero(which == index)
        count = len(rows)
        if not count:
            continue
        ok = np.asarray(OK_STATUSES[ep.method])[rng.choice(3, size=count, p=OK_WEIGHTS)]
        status = ok.astype(np.int64)
        code = np.full(count, None, dtype=object)
        if ep.conflicts:
            conflict = rng.random(count) < ep.conflict_rate
            kinds = rng.choice(len(ep.conflicts), size=count, p=[c[2] for c in ep.conflicts])
            for k, (st, err, _, _) in enumerate(ep.conflicts):
                pick = conflict & (kinds == k)
                status[pick] = st
                code[pick] = err
        query = None
        route_paths = paths(rng, ep, count)
        if ep.route == "/api/v1/search":
            query = (
                "q="
                + pl.Series(rng.integers(1, 10_000, size=count)).cast(pl.String)
                + "&token=secret"
            )
        parts.append(
            pl.DataFrame(
                {
                    "row": rows,
                    "method": repeat(ep.method, count),
                    "route": repeat(ep.route, count),
                    "path": route_paths,
                    "query": query
                    if query is not None
                    else pl.Series([None] * count, dtype=pl.String),
                    "status": status,
                    "error_code": pl.Series(code.tolist(), dtype=pl.String),
                }
            )
        )
    frame = pl.concat(parts).sort("row")
    empty_body = pl.col("status").is_in([204, 304])
    offsets = np.sort(rng.integers(0, span_us, size=n))
    ips = rng.integers(0, len(CLIENTS), size=n)
    frame = frame.with_columns(
        ts=pl.Series(start_us + offsets).cast(pl.Datetime("us", "UTC")),
        client=pl.Series(CLIENTS).gather(pl.Series(ips)),
        user_agent=pl.Series(USER_AGENTS).gather(
            pl.Series(rng.integers(0, len(USER_AGENTS), size=n))
        ),
        referer=pl.Series(REFERERS).gather(pl.Series(rng.integers(0, len(REFERERS), size=n))),
        bytes=pl.Series(rng.integers(40, 20_000, size=n)),
        latency_s=pl.Series(np.round(rng.gamma(2.0, 0.03, size=n), 3)),
    ).with_columns(bytes=pl.when(empty_body).then(0).otherwise(pl.col("bytes")))
    return conform(frame, BASE_SCHEMA)


def _batches(
    lines: int, *, seed: int, end: dt.datetime, hours: float, batch: int, scheme: Plan
) -> Iterator[pl.DataFrame]:
    """The log in time order, ``batch`` lines at a time (each batch covers an equal share of
    the time span). Planted rows go to the batch whose span holds them, in place of as many
    steady rows."""
    count = max(1, -(-lines // batch))
    span = hours / count
    span_us = int(span * 3600 * 1e6)
    starts = [
        int(
            ((end - dt.timedelta(hours=span * (count - number - 1))).timestamp() - span * 3600)
            * 1e6
        )
        for number in range(count)
    ]
    planted_us = scheme.rows["ts"].dt.epoch("us")
    seq = 0
    for number in range(count):
        n = lines // count + (1 if number < lines % count else 0)
        mine = pl.Series([True] * scheme.rows.height, dtype=pl.Boolean)
        if number > 0:
            mine &= planted_us >= starts[number]
        if number < count - 1:
            mine &= planted_us < starts[number + 1]
        planted = scheme.rows.filter(mine)
        base = _steady(n - planted.height, seed + number, starts[number], span_us)
        if scheme.spike is not None:
            base = scheme.spike(base, np.random.default_rng([seed + number, 3]))
        frame = decorate(base, np.random.default_rng([seed + number, 1]))
        if planted.height:
            frame = pl.concat([frame, planted]).sort("ts", maintain_order=True)
        yield frame.with_columns(seq=pl.int_range(seq, seq + frame.height, dtype=pl.Int64))
        seq += frame.height


def _check(style: str, scenario: str, lines: int = 1, hours: float = 24.0) -> None:
    if lines < 1:
        raise SampleError("a log needs at least 1 line")
    if not hours > 0:
        raise SampleError("hours must be more than 0")
    if style not in FORMATS:
        raise SampleError(f"unknown format {style!r}; known: {', '.join(LINE_STYLES)}")
    if scenario not in SCENARIOS:
        raise SampleError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")


def traffic(
    lines: int,
    *,
    seed: int = 7,
    end: dt.datetime | None = None,
    hours: float = 24.0,
    scenario: str = "steady",
    batch: int = BATCH,
) -> pl.DataFrame:
    """The generated requests as typed columns (one row per log line, in time order): exactly
    what write_log() formats for the same arguments."""
    _check("nginx-combined", scenario, lines, hours)
    end = end or DEFAULT_END
    scheme = plan(scenario, lines, seed=seed, end=end, hours=hours)
    frames = list(_batches(lines, seed=seed, end=end, hours=hours, batch=batch, scheme=scheme))
    return pl.concat(frames) if frames else empty(SCHEMA)


def format_lines(frame: pl.DataFrame, style: str = "nginx-combined", tz: str = "UTC") -> pl.Series:
    """Format generated requests as access-log lines (without newlines)."""
    if style not in FORMATS:
        raise SampleError(f"unknown format {style!r}; known: {', '.join(LINE_STYLES)}")
    return FORMATS[style].render(frame, tz)


TRUTH_COLUMNS = ("method", "route", "status", "error_code", "ts", "carrier")


def ground_truth(frame: pl.DataFrame, style: str) -> dict[str, Any]:
    """Conflicts per (method, route, status, error code) with their kind, requests per
    (method, route), as conflictlens should count them in a log of this format."""
    spec = FORMATS[style]
    conflicts = frame.filter(pl.col("status").is_in(CONFLICT_STATUSES))
    if spec.carries_code:
        clusters = (
            conflicts.group_by("method", "route", "status", "error_code")
            .agg(pl.len().alias("conflicts"))
            .with_columns(
                kind=pl.col("error_code").replace_strict(code_kinds(), return_dtype=pl.String)
            )
        )
    else:  # the line cannot say which code: the status alone decides the kind
        clusters = (
            conflicts.group_by("method", "route", "status")
            .agg(pl.len().alias("conflicts"))
            .with_columns(
                error_code=pl.lit(None, pl.String),
                kind=pl.col("status").replace_strict(STATUS_KINDS, return_dtype=pl.String),
            )
        )
    clusters = clusters.select("method", "route", "status", "error_code", "kind", "conflicts").sort(
        "method", "route", "status", "error_code"
    )
    requests = (
        frame.group_by("method", "route").agg(pl.len().alias("requests")).sort("method", "route")
    )
    locations: dict[str, int] | None = None
    if spec.carries_code:
        carriers = (
            conflicts["carrier"] if spec.body_codes and "carrier" in conflicts.columns else None
        )
        if carriers is None:
            locations = {"header": conflicts.height}
        else:
            counts = dict(carriers.value_counts().iter_rows())
            locations = {name: int(counts.get(i, 0)) for i, name in enumerate(CARRIERS)}
    return {
        "lines": frame.height,
        "from": frame["ts"].min().isoformat() if frame.height else None,  # type: ignore[union-attr]
        "to": frame["ts"].max().isoformat() if frame.height else None,  # type: ignore[union-attr]
        "conflicts": int(clusters["conflicts"].sum()),
        "conflicts_by_cluster": clusters.to_dicts(),
        "requests_by_route": requests.to_dicts(),
        "error_code_locations": locations,
    }


def write_log(
    out: str | Path,
    lines: int,
    *,
    style: str = "nginx-combined",
    seed: int = 7,
    tz: str = "UTC",
    end: dt.datetime | None = None,
    hours: float = 24.0,
    batch: int = BATCH,
    scenario: str = "steady",
) -> dict[str, Any]:
    """Write ``lines`` lines to ``out`` (gzip'd when it ends in .gz) and the ground truth to
    ``out``.truth.json; return the ground truth."""
    _check(style, scenario, lines, hours)
    out = Path(out)
    end = end or DEFAULT_END
    scheme = plan(scenario, lines, seed=seed, end=end, hours=hours)
    truth_parts: list[pl.DataFrame] = []
    collected: list[pl.DataFrame] = []
    with contextlib.ExitStack() as stack:
        handle: IO[bytes] = stack.enter_context(out.open("wb"))
        if out.name.endswith(".gz"):  # as AWS delivers load-balancer logs; reproducible bytes
            packed = gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0)
            handle = cast(IO[bytes], stack.enter_context(packed))
        for frame in _batches(lines, seed=seed, end=end, hours=hours, batch=batch, scheme=scheme):
            # One column, never quoted: the CSV writer is the fastest way to write the lines.
            format_lines(frame, style, tz).to_frame().write_csv(
                handle, include_header=False, quote_style="never"
            )
            truth_parts.append(frame.select(TRUTH_COLUMNS))
            if scheme.collect is not None:
                collected.append(scheme.collect(frame))
    truth = ground_truth(pl.concat(truth_parts) if truth_parts else empty(SCHEMA), style)
    truth.update(
        style=style,
        format=style,
        scenario=scenario,
        seed=seed,
        tz=tz,
        hours=hours,
        planted=scheme.planted(collected),
    )
    Path(f"{out}.truth.json").write_text(json.dumps(truth, indent=1, default=str) + os.linesep)
    return truth


SCENARIO_SAMPLES = (
    ("hot-document", "nginx-extended"),
    ("retry-storm", "envoy-text"),
    ("signup-surge", "nginx-json"),
    ("order-states", "haproxy-httplog"),
)


def write_samples(folder: str | Path, lines: int = 400) -> list[Path]:
    """The small per-format samples kept in sample_logs/ (regenerate with `make samples`), and
    a few planted scenarios in sample_logs/scenarios/ (2 hours of traffic each)."""
    folder = Path(folder)
    written = []
    for number, style in enumerate(LINE_STYLES):
        name = f"{style}.log.gz" if style == "aws-alb" else f"{style}.log"
        out = folder / name
        tz = "Europe/Berlin" if style.startswith("apache") else "UTC"
        write_log(out, lines, style=style, seed=100 + number, tz=tz)
        written.append(out)
    (folder / "scenarios").mkdir(exist_ok=True)
    for number, (scenario, style) in enumerate(SCENARIO_SAMPLES):
        out = folder / "scenarios" / f"{scenario}.{style}.log"
        write_log(out, 600, style=style, seed=200 + number, hours=2.0, scenario=scenario)
        written.append(out)
    return written


if __name__ == "__main__":
    for path in write_samples(Path(__file__).parent):
        print(f"wrote {path}")
